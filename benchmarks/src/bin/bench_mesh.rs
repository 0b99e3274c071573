//! The whole mesh, measured as studios and guests use it (issue 16, points
//! 3 and 4; docs/benchmarks.md "The whole mesh", "How soon a photo is
//! searchable", "A guest's wait"). It starts the five release-built
//! services (the test harness's `Cluster`, binaries beside this one in
//! `target/release`) with their default settings and a model pack, and
//! talks to them only through the public REST API, as a studio's browser or
//! Pixora would.
//!
//! ```text
//! facepass-bench-mesh indexing PACK PHOTO_DIR [--repeat R] [--copies C] [--idle N] [--backlog N] [--live N] [--out JSON]
//! facepass-bench-mesh guests PACK SELFIE_DIR [--faces N] [--clients 1,8,32] [--requests N] [--idle-guests N] [--formats page,jpeg,heic] [--out JSON]
//! ```
//!
//! `indexing`: photos/s from the first upload to the last `indexed` per
//! class of the benchmark photos (`tools/bench/make_photos.py`), each
//! service's peak resident memory, the upload-to-indexed latency of a 24 MP
//! photo on an idle system, and the same for photos uploaded live while a
//! bulk import of `--backlog` photos waits.
//!
//! `guests`: an event of `--faces` stored faces, indexing running beside
//! it, and selfies (12 MP JPEG and HEIC as phones write them, and the 1280 px
//! JPEG the guest page sends; `tools/bench/make_selfies.py`)
//! sent to the guest search endpoint by 1, 8 and 32 guests at once:
//! latency percentiles and every status seen, after `--idle-guests`
//! selfies of each format from one guest with nothing indexing (the floor).
//! A shed selfie (429) is sent
//! again after its Retry-After, as the guest page does; each selfie's time
//! from its first request to results is reported too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use facepass_benchmarks::stored_face;
use facepass_integration_tests::faces::FaceGen;
use facepass_integration_tests::{Cluster, ClusterOptions};
use facepass_proto::search::v1 as srch;
use futures::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

struct Photo {
    class: String,
    file: PathBuf,
    bytes: bytes::Bytes,
}

fn load_photos(dir: &Path) -> anyhow::Result<Vec<Photo>> {
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
    let mut photos = Vec::new();
    for p in manifest["photos"]
        .as_array()
        .context("manifest has no photos")?
    {
        let file = dir.join(p["file"].as_str().context("photo without file")?);
        photos.push(Photo {
            class: p["class"].as_str().unwrap_or("?").to_string(),
            bytes: std::fs::read(&file)?.into(),
            file,
        });
    }
    Ok(photos)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// p50, p90, p99 and max of `values` (seconds), as JSON and as a line.
fn latencies(values: &mut [f64]) -> (Value, String) {
    values.sort_by(|a, b| a.total_cmp(b));
    let (p50, p90, p99) = (
        percentile(values, 50.0),
        percentile(values, 90.0),
        percentile(values, 99.0),
    );
    let max = values.last().copied().unwrap_or(f64::NAN);
    (
        json!({"n": values.len(), "p50_s": p50, "p90_s": p90, "p99_s": p99, "max_s": max}),
        format!(
            "n={} p50 {:.3} s, p90 {:.3} s, p99 {:.3} s, max {:.3} s",
            values.len(),
            p50,
            p90,
            p99,
            max
        ),
    )
}

/// The studio's side of the REST API.
#[derive(Clone)]
struct Studio {
    http: reqwest::Client,
    base: String,
    key: String,
    id: String,
}

impl Studio {
    async fn create_event(&self, name: &str) -> anyhow::Result<(String, String)> {
        let response = self
            .http
            .post(format!("{}/api/v1/events", self.base))
            .bearer_auth(&self.key)
            .json(&json!({ "name": name }))
            .send()
            .await?;
        ensure!(
            response.status() == 201,
            "create event: {}",
            response.status()
        );
        let event: Value = response.json().await?;
        Ok((
            event["id"].as_str().context("event id")?.to_string(),
            event["share_token"]
                .as_str()
                .context("share token")?
                .to_string(),
        ))
    }

    /// Uploads one photo; returns its id.
    async fn upload(
        &self,
        event: &str,
        external_id: &str,
        bytes: bytes::Bytes,
        priority: &str,
    ) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!(
                "{}/api/v1/events/{event}/photos?external_id={external_id}&priority={priority}",
                self.base
            ))
            .bearer_auth(&self.key)
            .body(bytes)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        ensure!(status == 202, "upload {external_id}: {status} {body}");
        Ok(body["id"].as_str().context("photo id")?.to_string())
    }

    /// GET `path` of the REST API as JSON.
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/api/v1/{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?
            .json()
            .await?)
    }

    async fn counts(&self, event: &str) -> anyhow::Result<Value> {
        Ok(self.get(&format!("events/{event}")).await?["photos"].clone())
    }

    async fn photo_status(&self, photo: &str) -> anyhow::Result<String> {
        let photo = self.get(&format!("photos/{photo}")).await?;
        Ok(photo["status"].as_str().unwrap_or("?").to_string())
    }

    /// Waits until `photo` is indexed, polling every 20 ms; the time from
    /// `since`.
    async fn until_indexed(&self, photo: &str, since: Instant) -> anyhow::Result<f64> {
        let deadline = since + Duration::from_secs(600);
        loop {
            match self.photo_status(photo).await?.as_str() {
                "indexed" => return Ok(since.elapsed().as_secs_f64()),
                "failed" => bail!("photo {photo} failed"),
                _ if Instant::now() > deadline => bail!("photo {photo} not indexed in 600 s"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Waits until the event has `n` photos indexed (polling every 50 ms).
    async fn until_event_indexed(&self, event: &str, n: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let counts = self.counts(event).await?;
            if counts["failed"].as_u64().unwrap_or(0) > 0 {
                bail!("photos failed: {counts}");
            }
            if counts["indexed"].as_u64() == Some(n) {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "not indexed: {counts}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The peak resident memory of each service while it runs, sampled every
/// 200 ms from /proc (the sum's peak too: the stack's footprint at once).
struct MemoryWatch {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<(BTreeMap<String, f64>, f64)>>,
    task: tokio::task::JoinHandle<()>,
}

impl MemoryWatch {
    fn start(cluster: &Cluster) -> Self {
        let pids: Vec<(String, u32)> = cluster
            .services
            .iter()
            .map(|s| (s.name.to_string(), s.child.id()))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new((BTreeMap::<String, f64>::new(), 0f64)));
        let task = tokio::spawn({
            let (stop, peaks) = (stop.clone(), peaks.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    {
                        let mut sum = 0.0;
                        let mut guard = peaks.lock().unwrap();
                        for (name, pid) in &pids {
                            let rss = rss_mib(*pid).unwrap_or(0.0);
                            sum += rss;
                            let peak = guard.0.entry(name.clone()).or_insert(0.0);
                            *peak = f64::max(*peak, rss);
                        }
                        guard.1 = guard.1.max(sum);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        MemoryWatch { stop, peaks, task }
    }

    async fn finish(self) -> (BTreeMap<String, f64>, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peaks.lock().unwrap().clone()
    }
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

struct Options {
    pack: PathBuf,
    dir: PathBuf,
    repeat: usize,
    copies: usize,
    idle: usize,
    backlog: usize,
    live: usize,
    faces: usize,
    clients: Vec<usize>,
    /// Selfie formats sent, among `page` (the guest page's 1280 px JPEG), `jpeg` and `heic`.
    formats: Vec<String>,
    requests: usize,
    /// Selfies sent one at a time before indexing starts beside them (0: none).
    idle_guests: usize,
    out: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// facepass-bench-vision's and python_concurrent.py's JSON of the same
    /// photos, for the in-process and the original's figures beside the mesh.
    compare: Vec<PathBuf>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    ensure!(
        args.len() >= 2,
        "usage: facepass-bench-mesh indexing|guests PACK DIR [options] (see the source's header)"
    );
    let mut o = Options {
        pack: PathBuf::from(&args[0]),
        dir: PathBuf::from(&args[1]),
        repeat: 2,
        copies: 3,
        idle: 20,
        backlog: 500,
        live: 15,
        faces: 50_000,
        clients: vec![1, 8, 32],
        formats: vec!["page".into(), "jpeg".into(), "heic".into()],
        requests: 48,
        idle_guests: 16,
        out: None,
        env: Vec::new(),
        compare: Vec::new(),
    };
    let mut it = args[2..].iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--repeat" => o.repeat = value.parse()?,
            "--copies" => o.copies = value.parse::<usize>()?.max(1),
            "--idle" => o.idle = value.parse()?,
            "--backlog" => o.backlog = value.parse()?,
            "--live" => o.live = value.parse()?,
            "--faces" => o.faces = value.parse()?,
            "--requests" => o.requests = value.parse()?,
            "--idle-guests" => o.idle_guests = value.parse()?,
            "--clients" => {
                o.clients = value
                    .split(',')
                    .map(|c| c.parse())
                    .collect::<Result<_, _>>()?
            }
            "--formats" => {
                o.formats = value.split(',').map(str::to_string).collect();
                ensure!(
                    o.formats
                        .iter()
                        .all(|f| ["jpeg", "heic", "page"].contains(&f.as_str())),
                    "--formats takes a list of jpeg, heic and page"
                );
            }
            "--out" => o.out = Some(PathBuf::from(value)),
            "--compare" => o.compare.push(PathBuf::from(value)),
            // A setting for every service, e.g. --set FACEPASS_DETECTOR...=x.
            "--set" => {
                let (k, v) = value.split_once('=').context("--set KEY=VALUE")?;
                o.env.push((k.into(), v.into()));
            }
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

async fn start(o: &Options, extra: &[(&str, &str)]) -> anyhow::Result<(Cluster, Studio)> {
    let mut env: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.extend(o.env.iter().cloned());
    let cluster = Cluster::start_with(ClusterOptions {
        pack: Some(o.pack.clone()),
        env,
        ..ClusterOptions::default()
    })
    .await?;
    let (id, key) = cluster.create_studio("Bench")?;
    let studio = Studio {
        http: reqwest::Client::new(),
        base: cluster.gateway_http.clone(),
        key,
        id,
    };
    Ok((cluster, studio))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args
        .split_first()
        .context("usage: facepass-bench-mesh indexing|guests ...")?;
    let o = parse(rest)?;
    let doc = match command.as_str() {
        "indexing" => indexing(&o).await?,
        "guests" => guests(&o).await?,
        other => bail!("unknown command {other}: indexing or guests"),
    };
    if let Some(out) = &o.out {
        std::fs::write(out, serde_json::to_vec_pretty(&doc)?)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

// ---- indexing ----------------------------------------------------------------

async fn indexing(o: &Options) -> anyhow::Result<Value> {
    let photos = load_photos(&o.dir)?;
    let mut classes: Vec<String> = Vec::new();
    for p in &photos {
        if !classes.contains(&p.class) {
            classes.push(p.class.clone());
        }
    }
    let (cluster, studio) = start(o, &[]).await?;
    eprintln!("mesh up: five release services, pack {}", o.pack.display());
    // Warm-up: the first photo loads what loads lazily.
    let (warm, _) = studio.create_event("warm-up").await?;
    let id = studio
        .upload(&warm, "warm", photos[0].bytes.clone(), "live")
        .await?;
    studio.until_indexed(&id, Instant::now()).await?;

    // Throughput: a class's photos, `copies` times each (so the pipeline
    // runs full for most of the run, not only filling and draining),
    // uploaded 4 at a time, first upload to last `indexed`.
    let memory = MemoryWatch::start(&cluster);
    let mut throughput = Vec::new();
    for class in &classes {
        let set: Vec<&Photo> = photos
            .iter()
            .filter(|p| &p.class == class)
            .cycle()
            .take(photos.iter().filter(|p| &p.class == class).count() * o.copies)
            .collect();
        let mut rates = Vec::new();
        for run in 0..o.repeat {
            let (event, _) = studio.create_event(&format!("{class} {run}")).await?;
            let started = Instant::now();
            let uploads = futures::stream::iter(set.iter().enumerate().map(|(i, p)| {
                let (studio, event, bytes) = (studio.clone(), event.clone(), p.bytes.clone());
                async move { studio.upload(&event, &format!("p{i}"), bytes, "live").await }
            }))
            .buffer_unordered(4);
            let ids: Vec<anyhow::Result<String>> = uploads.collect().await;
            for id in ids {
                id?;
            }
            let uploaded = started.elapsed().as_secs_f64();
            studio.until_event_indexed(&event, set.len() as u64).await?;
            let wall = started.elapsed().as_secs_f64();
            let rate = set.len() as f64 / wall;
            eprintln!(
                "mesh {class:<12} run {run}: {} photos, uploaded in {uploaded:.1} s, indexed in {wall:.1} s: {rate:.3} photos/s",
                set.len()
            );
            rates.push(rate);
        }
        rates.sort_by(|a, b| a.total_cmp(b));
        let median = rates[rates.len() / 2];
        println!(
            "mesh throughput {class:<12} {median:.3} photos/s [{:.3}..{:.3}] over {} runs of {} photos",
            rates[0],
            rates[rates.len() - 1],
            rates.len(),
            set.len()
        );
        throughput.push(json!({"class": class, "photos": set.len(),
            "photos_per_s": {"median": median, "min": rates[0], "max": rates[rates.len() - 1]}}));
    }
    // Beside the in-process figure (FacePass's defaults, photos in flight)
    // and the original's (insightface, 2 processes x 1 thread), measured on
    // the same photos by tools/bench/run.sh.
    for file in &o.compare {
        let Ok(text) = std::fs::read(file) else {
            eprintln!(
                "no {} (run tools/bench/run.sh first): no comparison",
                file.display()
            );
            continue;
        };
        let doc: Value = serde_json::from_slice(&text)?;
        for row in doc["results"].as_array().into_iter().flatten() {
            let mode = row["mode"].as_str().unwrap_or("");
            let wanted = (mode.contains("in flight") && mode.contains("defaults"))
                || mode.starts_with("insightface (");
            if !wanted {
                continue;
            }
            let class = row["class"].as_str().unwrap_or("");
            let Some(mesh) = throughput.iter_mut().find(|t| t["class"] == class) else {
                continue;
            };
            let other = row["photos_per_s"]["median"].as_f64().unwrap_or(f64::NAN);
            let ours = mesh["photos_per_s"]["median"].as_f64().unwrap_or(f64::NAN);
            println!(
                "mesh {class:<12} {ours:.3} photos/s = {:.0} % of {mode} ({other:.3})",
                100.0 * ours / other
            );
            mesh["against"][mode] = json!(other);
        }
    }
    let (peaks, total) = memory.finish().await;
    for (name, mib) in &peaks {
        println!("peak resident memory while indexing 24 MP photos: {name:<9} {mib:>7.1} MiB");
    }
    println!("peak resident memory, whole stack at once: {total:.1} MiB");

    // Upload to indexed on an idle system, one photo at a time.
    let typical: Vec<&Photo> = photos.iter().filter(|p| p.class == classes[0]).collect();
    let (event, _) = studio.create_event("idle").await?;
    let mut idle = Vec::new();
    for i in 0..o.idle {
        let photo = typical[i % typical.len()];
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let id = studio
            .upload(&event, &format!("idle-{i}"), photo.bytes.clone(), "live")
            .await?;
        idle.push(studio.until_indexed(&id, started).await?);
    }
    let (idle_json, line) = latencies(&mut idle);
    println!("upload to indexed, idle system, 24 MP typical photo: {line}");

    // Behind a bulk import: `backlog` photos registered at once (objects
    // already in the store, as Pixora's import does), then photos uploaded
    // live one by one while the backlog waits.
    let (event, _) = studio.create_event("backlog").await?;
    let studio_id = studio.id.clone();
    let dir = cluster
        .storage_root
        .join(format!("studios/{studio_id}/archive"));
    std::fs::create_dir_all(&dir)?;
    let mut items = Vec::new();
    for i in 0..o.backlog {
        let photo = &photos[i % photos.len()];
        // Hard links: 500 objects of the store, no copies on disk.
        let name = format!("{i:04}.jpg");
        let _ = std::fs::remove_file(dir.join(&name));
        // A copy where the store is on another filesystem.
        if std::fs::hard_link(&photo.file, dir.join(&name)).is_err() {
            std::fs::copy(&photo.file, dir.join(&name))?;
        }
        items.push(
            json!({"object_key": format!("studios/{studio_id}/archive/{name}"),
                          "external_id": format!("bulk-{i}")}),
        );
    }
    let started = Instant::now();
    for chunk in items.chunks(1000) {
        let response = studio
            .http
            .post(format!(
                "{}/api/v1/events/{event}/photos/register",
                studio.base
            ))
            .bearer_auth(&studio.key)
            .json(&json!({ "items": chunk }))
            .send()
            .await?;
        ensure!(response.status() == 200, "register: {}", response.status());
    }
    eprintln!(
        "registered {} bulk photos in {:.1} s",
        o.backlog,
        started.elapsed().as_secs_f64()
    );
    let mut live = Vec::new();
    for i in 0..o.live {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let photo = typical[i % typical.len()];
        let started = Instant::now();
        let id = studio
            .upload(&event, &format!("live-{i}"), photo.bytes.clone(), "live")
            .await?;
        let took = studio.until_indexed(&id, started).await?;
        let counts = studio.counts(&event).await?;
        eprintln!(
            "live photo {i}: indexed {took:.2} s after upload; backlog still pending: {}",
            counts["pending"]
        );
        live.push(took);
    }
    let counts = studio.counts(&event).await?;
    let pending = counts["pending"].as_u64().unwrap_or(0);
    let (live_json, line) = latencies(&mut live);
    println!(
        "upload to indexed, live photo behind a bulk import of {} photos ({pending} still waiting at the end): {line}",
        o.backlog
    );
    let bulk_throughput = throughput
        .iter()
        .map(|t| t["photos_per_s"]["median"].as_f64().unwrap_or(0.0))
        .fold(f64::NAN, f64::min);
    if pending > 0 && bulk_throughput > 0.0 {
        println!(
            "without priorities the last live photo would have waited behind about {pending} photos: {:.0} s or more",
            pending as f64 / bulk_throughput
        );
    }
    Ok(json!({
        "pack": o.pack.display().to_string(),
        "throughput": throughput,
        "peak_rss_mib": peaks,
        "peak_rss_total_mib": total,
        "idle_upload_to_indexed": idle_json,
        "backlog": o.backlog,
        "backlog_pending_at_end": pending,
        "live_behind_backlog": live_json,
    }))
}

// ---- guests ------------------------------------------------------------------

/// A shed selfie is sent again after its Retry-After, at most this many
/// times and for waits up to this long: the guest page's rule
/// (web/src/guest/main.tsx).
const SHED_RETRIES: usize = 3;
const SHED_MAX_WAIT_S: u64 = 30;

async fn guests(o: &Options) -> anyhow::Result<Value> {
    // Guests from many addresses: the per-address limit is per guest, so
    // the benchmark gives each its own (X-Forwarded-For), and the per-link
    // limit, sized for real guests, is lifted so the pipeline is measured.
    let (cluster, studio) = start(
        o,
        &[
            ("FACEPASS_TRUST_FORWARDED_FOR", "true"),
            ("FACEPASS_RATE_LIMITS__GUEST_LINK__PER_SECOND", "0"),
        ],
    )
    .await?;
    let (event, token) = studio.create_event("Guests").await?;
    let studio_id = studio.id.clone();
    // `page`: the selfie as the guest page sends it, scaled to 1280 px in
    // the browser (web/src/lib/image.ts); `jpeg` and `heic`: a phone's
    // 12 MP file as it is, which Pixora or a page without that step sends.
    let selfies: Vec<(String, bytes::Bytes)> = [
        ("jpeg", "selfie-12mp.jpg"),
        ("heic", "selfie-12mp.heic"),
        ("page", "selfie-page.jpg"),
    ]
    .iter()
    .filter(|(kind, _)| o.formats.iter().any(|f| f == kind))
    .map(|(kind, f)| -> anyhow::Result<_> {
        Ok((kind.to_string(), std::fs::read(o.dir.join(f))?.into()))
    })
    .collect::<anyhow::Result<Vec<_>>>()?;
    ensure!(!selfies.is_empty(), "no selfie format to send");
    let portrait = std::fs::read(o.dir.join("guest-photo.jpg"))?;

    // The guest's own photo, indexed the normal way.
    let own = studio
        .upload(&event, "guest-photo", portrait.into(), "live")
        .await?;
    studio.until_indexed(&own, Instant::now()).await?;

    // The rest of the event: `faces` stored faces of other people, 4 per
    // photo, straight into the catalog and the face store.
    let model = pack_model(&o.pack)?;
    let photos = o.faces.div_ceil(4);
    let ids: Vec<Uuid> = (0..photos).map(|_| Uuid::new_v4()).collect();
    let started = Instant::now();
    for chunk in ids.chunks(1000) {
        let list = chunk
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(",");
        cluster.db.query_text(&format!(
            "INSERT INTO catalog.photos (id, event_id, studio_id, object_key, owned_object, size_bytes, status, face_count, indexed_at) \
             SELECT id, '{event}', '{studio_id}', 'studios/{studio_id}/bench/' || id, false, 0, 'indexed', 4, now() \
             FROM unnest('{{{list}}}'::uuid[]) AS id"
        ))?;
    }
    let mut search = cluster
        .search_as(&cluster.indexer_token)
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let mut gen = FaceGen::new(16);
    let mut stored = 0;
    for chunk in ids.chunks(500) {
        let photos: Vec<srch::PhotoFaces> = chunk
            .iter()
            .map(|id| srch::PhotoFaces {
                photo_id: id.to_string(),
                faces: (0..4)
                    .map(|j| {
                        let centre = gen.centre();
                        srch::Face {
                            face_index: j,
                            embedding: gen.face_of(&centre),
                            face: Some(stored_face(&gen.bbox())),
                            quality: 0.8,
                        }
                    })
                    .collect(),
            })
            .collect();
        stored += photos.len() * 4;
        search
            .bulk_upsert_photo_faces(srch::BulkUpsertPhotoFacesRequest {
                studio_id: studio_id.clone(),
                event_id: event.clone(),
                model: model.clone(),
                photos,
            })
            .await?;
    }
    eprintln!(
        "stored {stored} faces in {photos} photos in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // PostgreSQL's autovacuum would analyse the new rows in the middle of
    // the first rows measured: do it now.
    cluster.db.query_text("VACUUM ANALYZE")?;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!(
        "{}/api/v1/guest/{token}/search?consent=bench-policy",
        cluster.gateway_http
    );
    // One check that the guest finds the photo they are in.
    let response = http
        .post(&url)
        .header("x-forwarded-for", "10.9.0.1")
        .body(selfies[0].1.clone())
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(status == 200, "search: {status} {body}");
    let found = body["matches"].as_array().map(|m| m.len()).unwrap_or(0);
    ensure!(found >= 1, "the guest's own photo was not found: {body}");
    println!("a guest's selfie finds {found} photo(s) among {stored} stored faces");

    // The floor: one guest at a time with nothing indexing beside it.
    let mut rows = Vec::new();
    if o.idle_guests > 0 {
        for (kind, selfie) in &selfies {
            rows.push(
                guest_row(&cluster, &http, &url, 1, o.idle_guests, kind, selfie, false).await?,
            );
        }
    }

    // Indexing in the background: a bulk import keeps the detector and the
    // embedder busy while guests search.
    let (busy, _) = studio.create_event("Background").await?;
    let background = tokio::spawn({
        let (studio, portrait) = (
            studio.clone(),
            std::fs::read(o.dir.join("guest-photo.jpg"))?,
        );
        async move {
            let mut i = 0u64;
            loop {
                if studio
                    .upload(&busy, &format!("bg-{i}"), portrait.clone().into(), "bulk")
                    .await
                    .is_err()
                {
                    return;
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
    });

    for &clients in &o.clients {
        for (kind, selfie) in &selfies {
            rows.push(
                guest_row(
                    &cluster, &http, &url, clients, o.requests, kind, selfie, true,
                )
                .await?,
            );
        }
    }
    background.abort();
    let indexed_meanwhile = studio.counts(&event).await.ok();
    Ok(json!({
        "pack": o.pack.display().to_string(),
        "stored_faces": stored,
        "rows": rows,
        "event_counts": indexed_meanwhile,
    }))
}

/// One row of the guests benchmark: `clients` guests at once, each sending
/// its share of `requests` selfies one after the other; latency percentiles,
/// statuses and the mean of each stage over the row.
#[allow(clippy::too_many_arguments)]
async fn guest_row(
    cluster: &Cluster,
    http: &reqwest::Client,
    url: &str,
    clients: usize,
    requests: usize,
    kind: &str,
    selfie: &bytes::Bytes,
    indexing_beside: bool,
) -> anyhow::Result<Value> {
    let label = if indexing_beside { "" } else { " (idle)" };
    let per_client = (requests / clients).max(3);
    let stages_before = selfie_stages(cluster).await;
    let results = Arc::new(Mutex::new(Vec::new()));
    // Per selfie: first request to results, shed answers and the
    // waits they asked for included (as the guest page does).
    let to_result = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (http, url, selfie, results, to_result) = (
                http.clone(),
                url.to_string(),
                selfie.clone(),
                results.clone(),
                to_result.clone(),
            );
            tokio::spawn(async move {
                for r in 0..per_client {
                    let first = Instant::now();
                    for attempt in 0..=SHED_RETRIES {
                        let t = Instant::now();
                        let sent = http
                            .post(&url)
                            .header(
                                "x-forwarded-for",
                                format!("10.{}.{}.{}", c / 250, c % 250, r % 250 + 1),
                            )
                            .body(selfie.clone())
                            .send()
                            .await;
                        let (outcome, wait) = match sent {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                let wait = response
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse::<u64>().ok());
                                let _ = response.bytes().await;
                                ((status, wait.is_some()), wait)
                            }
                            Err(e) if e.is_timeout() => ((0, false), None),
                            Err(_) => ((1, false), None),
                        };
                        results
                            .lock()
                            .unwrap()
                            .push((outcome, t.elapsed().as_secs_f64()));
                        if outcome.0 == 200 {
                            to_result
                                .lock()
                                .unwrap()
                                .push(first.elapsed().as_secs_f64());
                        }
                        // Shed: wait as told (the guest page's rule),
                        // then send the selfie again.
                        match wait {
                            Some(secs)
                                if outcome.0 == 429
                                    && secs <= SHED_MAX_WAIT_S
                                    && attempt < SHED_RETRIES =>
                            {
                                tokio::time::sleep(Duration::from_secs(secs)).await
                            }
                            _ => {
                                if outcome.0 == 429 {
                                    // Given up: the guest pauses before the next selfie.
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                }
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let wall = started.elapsed().as_secs_f64();
    // Where the wait went: each stage's mean over this row, as the
    // gateway waited for it (facepass_selfie_stage_seconds).
    let stages_after = selfie_stages(cluster).await;
    let stage_means: BTreeMap<&str, f64> = stages_after
        .iter()
        .filter_map(|(stage, &(sum, count))| {
            let (sum0, count0) = stages_before.get(stage).copied().unwrap_or((0.0, 0.0));
            (count > count0).then(|| (*stage, (sum - sum0) / (count - count0)))
        })
        .collect();
    let results = results.lock().unwrap().clone();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for ((status, retry_after), _) in &results {
        let name = match status {
            0 => "timeout".to_string(),
            1 => "connection error".to_string(),
            429 if !retry_after => "429 without Retry-After".to_string(),
            s => s.to_string(),
        };
        *statuses.entry(name).or_default() += 1;
    }
    let mut ok: Vec<f64> = results
        .iter()
        .filter(|((s, _), _)| *s == 200)
        .map(|(_, t)| *t)
        .collect();
    let mut shed: Vec<f64> = results
        .iter()
        .filter(|((s, _), _)| *s == 429)
        .map(|(_, t)| *t)
        .collect();
    let (ok_json, line) = latencies(&mut ok);
    let (shed_json, shed_line) = latencies(&mut shed);
    let mut to_result = to_result.lock().unwrap().clone();
    // Selfies that never got results (shed on every try).
    let abandoned = clients * per_client - to_result.len();
    let (to_result_json, to_result_line) = latencies(&mut to_result);
    let stage_line = stage_means
        .iter()
        .map(|(stage, mean)| format!("{stage} {:.0} ms", mean * 1e3))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "guests {clients:>2} x {kind:<4}{label}: 200s {line}; {:.1} searches/s; mean stages: {stage_line}; statuses {statuses:?}{}",
        ok.len() as f64 / wall,
        if shed.is_empty() {
            String::new()
        } else {
            format!(
                "; 429 answered in {shed_line}; selfie to results, Retry-After honoured: {to_result_line}, {abandoned} given up"
            )
        }
    );
    Ok(
        json!({"clients": clients, "selfie": kind, "bytes": selfie.len(),
        "indexing_beside": indexing_beside,
        "ok": ok_json, "shed": shed_json, "statuses": statuses,
        "to_result": to_result_json, "given_up": abandoned,
        "stage_means_s": stage_means,
        "searches_per_s": ok.len() as f64 / wall}),
    )
}

/// The gateway's `facepass_selfie_stage_seconds` as (sum, count) by
/// stage; empty when the scrape fails (the row then has no breakdown).
async fn selfie_stages(cluster: &Cluster) -> BTreeMap<&'static str, (f64, f64)> {
    let Ok(text) = cluster.scrape("gateway").await else {
        return BTreeMap::new();
    };
    let mut stages = BTreeMap::new();
    for stage in ["detect", "embed", "search"] {
        let labels = [("stage", stage)];
        let sum = facepass_integration_tests::prom::sum(
            &text,
            "facepass_selfie_stage_seconds_sum",
            &labels,
        );
        let count = facepass_integration_tests::prom::sum(
            &text,
            "facepass_selfie_stage_seconds_count",
            &labels,
        );
        if let (Some(sum), Some(count)) = (sum, count) {
            stages.insert(stage, (sum, count));
        }
    }
    stages
}

/// The model id a pack's faces are stored under (`name@version`).
fn pack_model(pack: &Path) -> anyhow::Result<String> {
    let pack = facepass_inference::pack::Pack::open(pack)?;
    Ok(pack.manifest.model_id())
}
