//! Face-store benchmark (docs/benchmarks.md, "Face store"):
//!
//!   facepass-bench-store [--faces 1000000] [--runs 3] [--queries 200]
//!                        [--seconds 10] [--reuse] [--out FILE]
//!
//! Loads `--faces` synthetic faces (identity-structured, see
//! facepass_integration_tests::faces) over ~200 events of realistic sizes
//! through the search service's BulkUpsertPhotoFaces (in process, real
//! PostgreSQL), builds the HNSW indexes of the events above the exact limit,
//! then measures, side by side in one run:
//!   * per-event search latency (p50/p99, one client) for a 50,000-face
//!     event and others, in PostgreSQL and from the in-memory copy;
//!   * throughput with 8 and 32 concurrent clients;
//!   * recall against a float32 brute-force scan;
//!   * the naive design (one global HNSW index over every face, filtered
//!     by event afterwards, as the original system did): recall and latency.
//!
//! `--reuse` keeps a database loaded by an earlier run with the same
//! `--faces` (loading 1M faces takes minutes).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use facepass_benchmarks::{exact_reference, stored_face};
use facepass_integration_tests::faces::FaceGen;
use facepass_proto::search::v1 as pb;
use facepass_proto::types::v1 as types;
use facepass_search::service::{PackInfo, SearchApi};
use facepass_search::store::{FaceStore, StoreTuning, Strategy};
use facepass_search::SearchConfig;
use pb::search_service_server::SearchService;
use tonic::Request;
use uuid::Uuid;

/// A generated face box as the contract's face (landmarks are not used).
const MATCH: f32 = 0.5;
const POSSIBLE: f32 = 0.4;
const MODEL: &str = "bench@1";

struct Args {
    faces: usize,
    runs: usize,
    queries: usize,
    seconds: u64,
    reuse: bool,
    out: Option<String>,
    db: String,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        faces: 1_000_000,
        runs: 3,
        queries: 200,
        seconds: 10,
        reuse: false,
        out: None,
        db: "facepass_bench_store".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--faces" => a.faces = value()?.parse()?,
            "--runs" => a.runs = value()?.parse()?,
            "--queries" => a.queries = value()?.parse()?,
            "--seconds" => a.seconds = value()?.parse()?,
            "--out" => a.out = Some(value()?),
            "--db" => a.db = value()?,
            "--reuse" => a.reuse = true,
            other => bail!("unknown argument {other} (see the file header)"),
        }
    }
    if a.faces < 20_000 {
        bail!("--faces must be at least 20000");
    }
    Ok(a)
}

/// Event sizes: a few large ones (scaled from 200k/100k/60k and exactly
/// 50k at 1M), the rest log-uniform between 1,000 and 8,000 faces.
fn plan(total: usize) -> Vec<usize> {
    let scale = total as f64 / 1_000_000.0;
    let mut sizes: Vec<usize> = [200_000.0, 100_000.0, 60_000.0]
        .iter()
        .map(|s| (s * scale) as usize)
        .collect();
    sizes.push(50_000.min(total / 4));
    let mut gen = FaceGen::new(1);
    let mut left = total - sizes.iter().sum::<usize>();
    while left > 0 {
        let u = gen.below(1_000_000) as f64 / 1e6;
        let n = (1000.0 * 8f64.powf(u)) as usize;
        let n = if left - n.min(left) < 1000 { left } else { n };
        sizes.push(n);
        left -= n;
    }
    sizes
}

/// One event's faces, generated deterministically from its number.
struct EventData {
    id: Uuid,
    centres: Vec<Vec<f32>>,
    photos: Vec<pb::PhotoFaces>,
}

fn event_id(studio: Uuid, n: usize) -> Uuid {
    Uuid::from_u64_pair(studio.as_u64_pair().0, n as u64 + 1)
}

fn generate(studio: Uuid, n: usize, size: usize, with_faces: bool) -> EventData {
    let mut gen = FaceGen::new(1000 + n as u64);
    // Identities of 5-50 faces each.
    let mut per_identity = Vec::new();
    let mut total = 0;
    while total < size {
        let k = gen.range(5, 50).min(size - total);
        per_identity.push(k);
        total += k;
    }
    let centres: Vec<Vec<f32>> = per_identity.iter().map(|_| gen.centre()).collect();
    let mut photos = Vec::new();
    if with_faces {
        let mut owners: Vec<usize> = per_identity
            .iter()
            .enumerate()
            .flat_map(|(i, k)| std::iter::repeat_n(i, *k))
            .collect();
        for i in (1..owners.len()).rev() {
            owners.swap(i, gen.below(i + 1));
        }
        let mut at = 0;
        while at < owners.len() {
            let k = gen.range(1, 5).min(owners.len() - at);
            let faces = owners[at..at + k]
                .iter()
                .enumerate()
                .map(|(j, who)| pb::Face {
                    face_index: j as u32,
                    embedding: gen.face_of(&centres[*who]),
                    face: Some(stored_face(&gen.bbox())),
                    quality: 0.8,
                })
                .collect();
            photos.push(pb::PhotoFaces {
                photo_id: Uuid::from_u64_pair(n as u64 + 1, at as u64).to_string(),
                faces,
            });
            at += k;
        }
    }
    EventData {
        id: event_id(studio, n),
        centres,
        photos,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn spread(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.len() == 1 {
        format!("{:.2}", v[0])
    } else {
        format!(
            "{:.2} ({:.2}–{:.2})",
            percentile(&v, 0.5),
            v[0],
            v[v.len() - 1]
        )
    }
}

struct Report(String);

impl Report {
    fn line(&mut self, s: impl AsRef<str>) {
        println!("{}", s.as_ref());
        self.0.push_str(s.as_ref());
        self.0.push('\n');
    }
}

fn search_request(studio: Uuid, event: Uuid, q: &[f32]) -> pb::SearchEventRequest {
    pb::SearchEventRequest {
        studio_id: studio.to_string(),
        event_id: event.to_string(),
        model: MODEL.into(),
        people: vec![pb::Person {
            faces: vec![],
            selfies: vec![types::Embedding { values: q.to_vec() }],
        }],
        page_size: 100,
        page_token: String::new(),
        matches_only: false,
    }
}

/// `count` selfies: fresh faces of random identities of the event.
fn selfies(event: &EventData, count: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut gen = FaceGen::new(seed);
    (0..count)
        .map(|_| {
            let who = gen.below(event.centres.len());
            gen.face_of(&event.centres[who])
        })
        .collect()
}

/// One client, `queries` sequential searches: latencies in ms and the
/// strategy the service reported.
async fn latencies(
    api: &SearchApi,
    studio: Uuid,
    event: Uuid,
    qs: &[Vec<f32>],
) -> anyhow::Result<(Vec<f64>, String)> {
    let mut ms = Vec::with_capacity(qs.len());
    let mut strategy = String::new();
    for q in qs {
        let t = Instant::now();
        let r = api
            .search_event(Request::new(search_request(studio, event, q)))
            .await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        strategy = r.into_inner().strategy;
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok((ms, strategy))
}

/// `clients` concurrent clients for `seconds`: (queries/s, p50, p99).
async fn throughput(
    api: Arc<SearchApi>,
    studio: Uuid,
    event: Uuid,
    qs: Arc<Vec<Vec<f32>>>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(f64, f64, f64)> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (api, qs) = (api.clone(), qs.clone());
            tokio::spawn(async move {
                let mut ms = Vec::new();
                let mut i = c;
                while Instant::now() < until {
                    let t = Instant::now();
                    api.search_event(Request::new(search_request(
                        studio,
                        event,
                        &qs[i % qs.len()],
                    )))
                    .await?;
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                    i += clients;
                }
                anyhow::Ok(ms)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let wall = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok((
        all.len() as f64 / wall,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    ))
}

/// Face-level recall of the store's strategy against float32 brute force.
async fn recall(
    pool: &facepass_db::PgPool,
    store: &FaceStore,
    studio: Uuid,
    event: Uuid,
    qs: &[Vec<f32>],
) -> anyhow::Result<(f64, usize, usize)> {
    let info = store.event(studio, event).await?;
    let (mut found, mut expected) = (0usize, 0usize);
    for q in qs {
        let want: BTreeSet<(Uuid, i32)> = exact_reference(pool, &info, q, POSSIBLE)
            .await?
            .into_iter()
            .map(|(p, f, _)| (p, f))
            .collect();
        let (_, got) = store
            .candidates(&info, std::slice::from_ref(q), POSSIBLE)
            .await?;
        let got: BTreeSet<(Uuid, i32)> = got
            .into_iter()
            .map(|c| (c.photo_id, c.face_index))
            .collect();
        expected += want.len();
        found += want.intersection(&got).count();
    }
    Ok((found as f64 / expected.max(1) as f64, found, expected))
}

async fn sql(pool: &facepass_db::PgPool, statement: &str) -> anyhow::Result<()> {
    facepass_db::execute(pool, statement).await.map(|_| ())
}

async fn scalar_i64(pool: &facepass_db::PgPool, query: &str) -> anyhow::Result<i64> {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        v: i64,
    }
    let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(diesel::sql_query(query)
        .get_result::<Row>(&mut conn)
        .await?
        .v)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let mut report = Report(String::new());
    let base = std::env::var("FACEPASS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let admin = facepass_db::pool(&format!("{base}/postgres"), 1)?;
    let url = format!("{base}/{}", a.db);
    let studio = Uuid::from_u64_pair(0xFACE_0000, 0);
    let sizes = plan(a.faces);

    let exists = scalar_i64(
        &admin,
        &format!(
            "SELECT count(*) AS v FROM pg_database WHERE datname = '{}'",
            a.db
        ),
    )
    .await?
        > 0;
    let mut loaded = false;
    if a.reuse && exists {
        let pool = facepass_db::pool(&url, 1)?;
        let have = scalar_i64(
            &pool,
            "SELECT coalesce(sum(face_count), 0)::bigint AS v FROM faces.events",
        )
        .await
        .unwrap_or(0);
        loaded = have as usize == a.faces;
        println!(
            "reusing {}: {have} faces stored ({})",
            a.db,
            if loaded {
                "complete"
            } else {
                "incomplete, reloading"
            }
        );
    }
    if !loaded {
        sql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", a.db),
        )
        .await?;
        sql(&admin, &format!("CREATE DATABASE {}", a.db)).await?;
    }
    let config = SearchConfig {
        database_url: url.clone(),
        pool_size: 40,
        ..SearchConfig::default()
    };
    facepass_search::migrate(&config).await?;
    let pool = facepass_db::pool(&url, config.pool_size)?;
    let pack = PackInfo {
        model: MODEL.into(),
        match_similarity: MATCH,
        possible_similarity: POSSIBLE,
        dimension: facepass_integration_tests::faces::DIM,
    };
    let sql_tuning = StoreTuning {
        cache_max_bytes: 0,
        ..StoreTuning::default()
    };
    let mem_tuning = StoreTuning::default();
    let store_sql = FaceStore::new(pool.clone(), sql_tuning.clone());
    let store_mem = FaceStore::new(pool.clone(), mem_tuning.clone());
    let api_sql = Arc::new(SearchApi::new(
        store_sql.clone(),
        config.clone(),
        pack.clone(),
    ));
    let api_mem = Arc::new(SearchApi::new(
        store_mem.clone(),
        config.clone(),
        pack.clone(),
    ));

    report.line("## Face store benchmark");
    report.line("");
    let shared_buffers = {
        use diesel::sql_types::Text;
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            shared_buffers: String,
        }
        let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        diesel::sql_query("SHOW shared_buffers")
            .get_result::<Row>(&mut conn)
            .await?
            .shared_buffers
    };
    report.line(format!(
        "{} faces over {} events (largest {:?}); {} cores; PostgreSQL shared_buffers {shared_buffers}; exact limit {} faces; HNSW m={} ef_construction={} ef_search={}.",
        a.faces,
        sizes.len(),
        &sizes[..4],
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
        sql_tuning.exact_max_faces,
        sql_tuning.hnsw_m,
        sql_tuning.hnsw_ef_construction,
        sql_tuning.hnsw_ef_search
    ));
    report.line("");

    // ---- load ------------------------------------------------------------
    if !loaded {
        let started = Instant::now();
        let mut writing = 0f64;
        let mut batch_rates = Vec::new();
        let mut stored = 0usize;
        // Two writers, like two indexer consumers.
        for (n, size) in sizes.iter().enumerate() {
            let data = generate(studio, n, *size, true);
            let chunks: Vec<Vec<pb::PhotoFaces>> =
                data.photos.chunks(500).map(|c| c.to_vec()).collect();
            for pair in chunks.chunks(2) {
                let t = Instant::now();
                let mut faces = 0;
                let tasks: Vec<_> = pair
                    .iter()
                    .map(|photos| {
                        faces += photos.iter().map(|p| p.faces.len()).sum::<usize>();
                        let api = api_sql.clone();
                        let request = pb::BulkUpsertPhotoFacesRequest {
                            studio_id: studio.to_string(),
                            event_id: data.id.to_string(),
                            model: MODEL.into(),
                            photos: photos.clone(),
                        };
                        tokio::spawn(async move {
                            api.bulk_upsert_photo_faces(Request::new(request)).await
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await??;
                }
                writing += t.elapsed().as_secs_f64();
                batch_rates.push(faces as f64 / t.elapsed().as_secs_f64());
                stored += faces;
            }
            if n % 20 == 0 {
                eprintln!(
                    "loaded {stored} faces ({n}/{} events), {:.0} faces/s",
                    sizes.len(),
                    stored as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        let secs = started.elapsed().as_secs_f64();
        report.line(format!(
            "Insert (BulkUpsertPhotoFaces, 500 photos a call, 2 writers at once): {stored} faces in {writing:.0} s of writing = **{:.0} faces/s**; per pair of calls {} faces/s (median, min–max); {secs:.0} s with data generation.",
            stored as f64 / writing,
            spread(&batch_rates)
        ));
        sql(&pool, "VACUUM ANALYZE").await?;
    }
    let heap = scalar_i64(&pool, "SELECT sum(pg_table_size(c.oid))::bigint AS v FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid").await?;
    report.line(format!(
        "Stored: {:.2} GB (partitions with TOAST).",
        heap as f64 / 1e9
    ));
    report.line("");

    // ---- per-event HNSW indexes ------------------------------------------
    report.line("| event HNSW index | faces | build s | size MB |");
    report.line("|---|---:|---:|---:|");
    for (n, size) in sizes.iter().enumerate() {
        if (*size as i64) <= sql_tuning.exact_max_faces {
            continue;
        }
        let id = event_id(studio, n);
        let ready = store_sql.event(studio, id).await?.ann_index == "ready";
        let t = Instant::now();
        if !ready {
            store_sql.build_ann_index(id).await?;
        }
        let secs = t.elapsed().as_secs_f64();
        let bytes = scalar_i64(
            &pool,
            &format!(
                "SELECT pg_relation_size('faces.ev_{}_hnsw')::bigint AS v",
                id.simple()
            ),
        )
        .await?;
        report.line(format!(
            "| {} | {size} | {} | {:.0} |",
            n,
            if ready {
                "(built earlier)".to_string()
            } else {
                format!("{secs:.1}")
            },
            bytes as f64 / 1e6
        ));
    }
    report.line("");

    // ---- latency, one client ---------------------------------------------
    let picks: Vec<(usize, &str)> = {
        let mut v = vec![(3usize, "50k (target)"), (0, "largest")];
        if let Some(i) = sizes.iter().position(|s| (4000..=6000).contains(s)) {
            v.push((i, "~5k"));
        }
        if let Some(i) = sizes.iter().position(|s| *s < 1500) {
            v.push((i, "~1k"));
        }
        v
    };
    report.line(format!(
        "Latency, one client: {} searches a run, {} runs; median of the runs (min–max). ms.",
        a.queries, a.runs
    ));
    report.line("");
    report.line("| event | faces | path | strategy | p50 | p99 |");
    report.line("|---|---:|---|---|---:|---:|");
    let mut events: HashMap<usize, EventData> = HashMap::new();
    for (n, label) in &picks {
        let data = generate(studio, *n, sizes[*n], false);
        let qs = selfies(&data, a.queries, 77 + *n as u64);
        let cached = sizes[*n] as i64 >= mem_tuning.cache_min_faces;
        for (path, api) in [("PostgreSQL", &api_sql), ("memory copy", &api_mem)] {
            if path == "memory copy" && !cached {
                report.line(format!(
                    "| {label} | {} | memory copy | (below cache_min_faces: PostgreSQL only) | | |",
                    sizes[*n]
                ));
                continue;
            }
            // Warm: one search (starts the copy), then wait for the copy.
            latencies(api, studio, data.id, &qs[..1]).await?;
            if path == "memory copy" {
                let until = Instant::now() + Duration::from_secs(300);
                while store_mem.event_stats(studio, data.id).await?.strategy != Strategy::Memory
                    || latencies(api, studio, data.id, &qs[..1]).await?.1 != "memory"
                {
                    if Instant::now() > until {
                        bail!("the copy of event {n} never loaded");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            let (mut p50, mut p99, mut strategy) = (Vec::new(), Vec::new(), String::new());
            for _ in 0..a.runs {
                let (ms, s) = latencies(api, studio, data.id, &qs).await?;
                p50.push(percentile(&ms, 0.5));
                p99.push(percentile(&ms, 0.99));
                strategy = s;
            }
            report.line(format!(
                "| {label} | {} | {path} | {strategy} | {} | {} |",
                sizes[*n],
                spread(&p50),
                spread(&p99)
            ));
        }
        events.insert(*n, data);
    }
    report.line("");

    // ---- throughput --------------------------------------------------------
    report.line(format!(
        "Throughput on the 50k event, {} s per row (searches/s, and the latency the clients saw).",
        a.seconds
    ));
    report.line("");
    report.line("| path | clients | searches/s | p50 ms | p99 ms |");
    report.line("|---|---:|---:|---:|---:|");
    let target = &events[&3];
    let qs = Arc::new(selfies(target, 256, 5));
    for (path, api) in [("PostgreSQL", &api_sql), ("memory copy", &api_mem)] {
        for clients in [1usize, 8, 32] {
            let (qps, p50, p99) = throughput(
                api.clone(),
                studio,
                target.id,
                qs.clone(),
                clients,
                a.seconds,
            )
            .await?;
            report.line(format!(
                "| {path} | {clients} | {qps:.0} | {p50:.1} | {p99:.1} |"
            ));
        }
    }
    report.line("");
    // The recall rows load their copies anew, each into a store of its own.
    drop(api_mem);
    drop(store_mem);

    // ---- recall ------------------------------------------------------------
    let recall_queries = 40.min(a.queries);
    report.line(format!("Recall against a float32 brute-force scan (faces at or above {POSSIBLE}), {recall_queries} selfies an event."));
    report.line("");
    report.line("| event | faces | FacePass strategy | recall | naive, global index used: recall | p50 ms | p99 ms | naive, planner's choice: recall | p50 ms | p99 ms |");
    report.line("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    // The naive design: one HNSW index over every face, filter by event after.
    let naive_exists = scalar_i64(
        &pool,
        "SELECT count(*)::bigint AS v FROM pg_class WHERE relname = 'naive_hnsw'",
    )
    .await?
        > 0;
    let naive_build = if naive_exists {
        None
    } else {
        sql(&pool, "CREATE SCHEMA IF NOT EXISTS bench").await?;
        sql(&pool, "DROP TABLE IF EXISTS bench.naive").await?;
        sql(&pool, "CREATE TABLE bench.naive AS SELECT event_id, photo_id, face_index, embedding_half AS embedding FROM faces.event_faces").await?;
        let t = Instant::now();
        let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        use diesel_async::SimpleAsyncConnection;
        conn.batch_execute("SET maintenance_work_mem = '4GB'; CREATE INDEX naive_hnsw ON bench.naive USING hnsw (embedding halfvec_cosine_ops)").await?;
        let secs = t.elapsed().as_secs_f64();
        conn.batch_execute("ANALYZE bench.naive").await?;
        Some(secs)
    };
    let naive_size = scalar_i64(
        &pool,
        "SELECT pg_relation_size('bench.naive_hnsw')::bigint AS v",
    )
    .await?;
    for (n, label) in &picks {
        let data = &events[n];
        let qs = selfies(data, recall_queries, 991 + *n as u64);
        let (r_sql, f1, e1) = recall(&pool, &store_sql, studio, data.id, &qs).await?;
        // Copies are off in store_sql: its statistics name the SQL strategy.
        let strategy = store_sql
            .event_stats(studio, data.id)
            .await?
            .strategy
            .as_str();
        let (nr, nms) = naive(&pool, data.id, &qs, &store_sql, studio, true).await?;
        let (pr, pms) = naive(&pool, data.id, &qs, &store_sql, studio, false).await?;
        report.line(format!(
            "| {label} | {} | {strategy} | {r_sql:.4} ({f1}/{e1}) | {nr:.4} | {:.1} | {:.1} | {pr:.4} | {:.1} | {:.1} |",
            sizes[*n],
            percentile(&nms, 0.5),
            percentile(&nms, 0.99),
            percentile(&pms, 0.5),
            percentile(&pms, 0.99)
        ));
        // The memory copy is exact by construction; check it too, on a copy
        // loaded anew (a fresh store holds none).
        if (sizes[*n] as i64) < mem_tuning.cache_min_faces {
            continue;
        }
        let store_copy = FaceStore::new(pool.clone(), mem_tuning.clone());
        let api_copy = SearchApi::new(store_copy.clone(), config.clone(), pack.clone());
        latencies(&api_copy, studio, data.id, &qs[..1]).await?;
        let until = Instant::now() + Duration::from_secs(300);
        while store_copy.event_stats(studio, data.id).await?.strategy != Strategy::Memory {
            if Instant::now() > until {
                bail!("copy never loaded");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (r_mem, f2, e2) = recall(&pool, &store_copy, studio, data.id, &qs).await?;
        report.line(format!(
            "| {label} | {} | {} | {r_mem:.4} ({f2}/{e2}) | | | | | | |",
            sizes[*n],
            Strategy::Memory.as_str()
        ));
    }
    report.line("");
    report.line(format!(
        "Naive: every face in one table with one HNSW index (pgvector defaults m=16, ef_construction=64, ef_search=40), queried `WHERE event_id = $1 ORDER BY distance LIMIT 1000` and cut at the threshold. \"Global index used\": sequential scans off, so pgvector walks the global graph and filters by event afterwards. \"Planner's choice\": what PostgreSQL picks with statistics: the global index for large events (losing matches), a sequential scan of the whole table and a sort for small ones (complete, but slow, and slower as the store grows). Index {:.0} MB{}.",
        naive_size as f64 / 1e6,
        naive_build.map(|s| format!(", built in {s:.0} s")).unwrap_or_default()
    ));
    if let Some(path) = &a.out {
        std::fs::write(path, &report.0)?;
        eprintln!("report written to {path}");
    }
    Ok(())
}

/// The original system's query: the global index, then the event filter.
async fn naive(
    pool: &facepass_db::PgPool,
    event: Uuid,
    qs: &[Vec<f32>],
    store: &FaceStore,
    studio: Uuid,
    force_index: bool,
) -> anyhow::Result<(f64, Vec<f64>)> {
    use diesel::sql_types::{Float8, Int4, Int8, Uuid as SqlUuid};
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        photo_id: Uuid,
        #[diesel(sql_type = Int4)]
        face_index: i32,
        #[diesel(sql_type = Float8)]
        similarity: f64,
    }
    let info = store.event(studio, event).await?;
    let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    conn.batch_execute(if force_index {
        "SET hnsw.ef_search = 40; SET enable_seqscan = off"
    } else {
        "SET hnsw.ef_search = 40; RESET enable_seqscan"
    })
    .await?;
    let (mut found, mut expected, mut ms) = (0usize, 0usize, Vec::new());
    for q in qs {
        let t = Instant::now();
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT photo_id, face_index, 1 - (embedding <=> $1) AS similarity FROM bench.naive \
             WHERE event_id = $2 ORDER BY embedding <=> $1 LIMIT $3",
        )
        .bind::<pgvector::sql_types::HalfVector, _>(pgvector::HalfVector::from_f32_slice(q))
        .bind::<SqlUuid, _>(event)
        .bind::<Int8, _>(1000i64)
        .load(&mut conn)
        .await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        let got: BTreeSet<(Uuid, i32)> = rows
            .into_iter()
            .filter(|r| r.similarity >= POSSIBLE as f64)
            .map(|r| (r.photo_id, r.face_index))
            .collect();
        let want: BTreeSet<(Uuid, i32)> = exact_reference(pool, &info, q, POSSIBLE)
            .await?
            .into_iter()
            .map(|(p, f, _)| (p, f))
            .collect();
        expected += want.len();
        found += want.intersection(&got).count();
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok((found as f64 / expected.max(1) as f64, ms))
}
