//! Test harness for FacePass's integration and end-to-end tests: finds the
//! built binaries, the ONNX Runtime library and the fixture models, makes a
//! fresh database and RabbitMQ namespace per test, starts the five services
//! as separate processes on free ports and stops them (SIGTERM) when done.
//!
//! Needs the dependencies that `scripts/test.sh` prepares: PostgreSQL with
//! pgvector, RabbitMQ, `.venv` (ONNX Runtime, onnx) and the built binaries.

pub mod browser;
pub mod certs;
pub mod faces;
pub mod gateway;
pub mod otlp;
pub mod prom;
pub mod s3;
pub mod search;
pub mod switch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests lives in the repo")
        .to_path_buf()
}

/// Folder of the built binaries: target/<profile>, next to this test
/// executable (target/<profile>/deps/<test>) or this binary (a benchmark,
/// target/<profile>/<bench>).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable in a folder");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target/<profile>/deps").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.is_file() {
        bail!(
            "{} is not built; run `cargo build --workspace --bins` first (scripts/test.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// The ONNX Runtime library, from ORT_DYLIB_PATH or the project's venv.
pub fn ort_dylib() -> anyhow::Result<String> {
    if let Ok(path) = std::env::var("ORT_DYLIB_PATH") {
        if Path::new(&path).is_file() {
            return Ok(path);
        }
    }
    let capi = glob_lib(&repo_root().join(".venv"));
    capi.context(
        "ONNX Runtime not found: set ORT_DYLIB_PATH or run scripts/setup.sh (creates .venv)",
    )
}

fn glob_lib(venv: &Path) -> Option<String> {
    let lib = venv.join("lib");
    for python in std::fs::read_dir(&lib).ok()?.flatten() {
        let capi = python.path().join("site-packages/onnxruntime/capi");
        for entry in std::fs::read_dir(&capi).ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("libonnxruntime.so") {
                return Some(entry.path().display().to_string());
            }
        }
    }
    None
}

/// The fixture models (generated once by tools/fixtures/make_models.py).
pub fn fixture_models() -> anyhow::Result<PathBuf> {
    fixture_models_of(512)
}

/// The fixture pack with a recogniser of `dimension` (512 is the usual
/// one; another, e.g. 128, is `.facepass/models/fixture<D>`, the same
/// detector and the same synthetic identities projected to D dimensions).
pub fn fixture_models_of(dimension: usize) -> anyhow::Result<PathBuf> {
    let dir = if dimension == 512 {
        repo_root().join(".facepass/models/fixture")
    } else {
        repo_root().join(format!(".facepass/models/fixture{dimension}"))
    };
    if dir.join("manifest.toml").is_file() {
        return Ok(dir);
    }
    let python = repo_root().join(".venv/bin/python");
    let status = Command::new(&python)
        .arg(repo_root().join("tools/fixtures/make_models.py"))
        .arg(&dir)
        .args(["--dimension", &dimension.to_string()])
        .status()
        .with_context(|| format!("running {} (run scripts/setup.sh first)", python.display()))?;
    if !status.success() {
        bail!("generating the fixture models failed");
    }
    Ok(dir)
}

/// The real model pack and photos the set-up fetches from the package
/// registries (tools/models/real_pack.py): `(.facepass/models/real,
/// .facepass/photos/real)`.
pub fn real_pack() -> anyhow::Result<(PathBuf, PathBuf)> {
    let models = repo_root().join(".facepass/models/real");
    let photos = repo_root().join(".facepass/photos/real");
    if !models.join("manifest.toml").is_file() || !photos.join("obama2.jpg").is_file() {
        bail!(
            "the real model pack is not in {} (or its photos in {}): run \
             `python3 tools/models/real_pack.py` (scripts/setup.sh and scripts/test.sh do)",
            models.display(),
            photos.display()
        );
    }
    Ok((models, photos))
}

/// The real pack's INT8 variant (the opt-in fast tier), which scripts/test.sh
/// makes with tools/models/quantize.py.
pub fn real_int8_pack() -> anyhow::Result<PathBuf> {
    let models = repo_root().join(".facepass/models/real-int8");
    if !models.join("manifest.toml").is_file() {
        bail!(
            "the real pack's INT8 variant is not in {}: run `bash tools/parity/run.sh --venv-only && \
             .venv-parity/bin/python tools/models/quantize.py .facepass/models/real \
             .facepass/models/real-int8 --photos .facepass/photos/real` \
             (scripts/test.sh does)",
            models.display()
        );
    }
    Ok(models)
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes (0 for empty
/// ones): how the tests and benchmarks match faces found to faces expected.
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h;
    if union > 0.0 {
        w * h / union
    } else {
        0.0
    }
}

/// Base PostgreSQL URL (without database) and AMQP URL.
pub fn pg_base() -> String {
    std::env::var("FACEPASS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("FACEPASS_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A fresh database, dropped on `drop`.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create(prefix: &str) -> anyhow::Result<Self> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = facepass_db::pool(&format!("{}/postgres", pg_base()), 1)?;
        facepass_db::execute(&admin, &format!("CREATE DATABASE {name}"))
            .await
            .context(
                "creating the test database (is PostgreSQL running? scripts/setup.sh starts it)",
            )?;
        Ok(TestDatabase {
            url: format!("{}/{name}", pg_base()),
            name,
        })
    }

    /// Runs one SQL statement with `psql` and returns its unaligned output.
    pub fn query_text(&self, sql: &str) -> anyhow::Result<String> {
        let out = Command::new("psql")
            .args([&self.url, "-XtAqc", sql])
            .output()
            .context("running psql")?;
        anyhow::ensure!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &format!("{}/postgres", pg_base()),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A free TCP port on loopback for a service a test starts.
///
/// Asking the kernel (`bind :0`) and letting go is racy: the port comes from
/// the ephemeral range, where the kernel also picks the local ports of
/// outgoing connections and of other test processes, so by the time the
/// service binds it the port may be someone else's (CI once saw a test's
/// "gateway" answer UNIMPLEMENTED: another service had its port). Ports come
/// instead from [`PORT_RANGE`], below the ephemeral range, handed out in turn
/// by a counter shared by every test process through a locked file, and only
/// after a bind shows that nothing holds them.
pub fn free_port() -> u16 {
    use std::io::{Read, Seek, Write};
    let path = std::env::temp_dir().join("facepass-test-ports");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .expect("the port counter file");
    file.lock().expect("lock the port counter");
    let mut text = String::new();
    file.read_to_string(&mut text).ok();
    let span = PORT_RANGE.end - PORT_RANGE.start;
    let mut next = text
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| PORT_RANGE.contains(p))
        .unwrap_or(PORT_RANGE.start + (std::process::id() % u32::from(span)) as u16);
    let mut port = None;
    for _ in 0..span {
        let candidate = next;
        next = if next + 1 >= PORT_RANGE.end {
            PORT_RANGE.start
        } else {
            next + 1
        };
        if std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            port = Some(candidate);
            break;
        }
    }
    file.set_len(0).ok();
    file.rewind().ok();
    write!(file, "{next}").ok();
    file.unlock().ok();
    port.expect("a free port below the ephemeral range")
}

/// Where [`free_port`] hands out ports: below Linux's ephemeral range
/// (32768–60999), so the kernel never gives them to a connection.
pub const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// One running service process; SIGTERM on drop.
pub struct Service {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
    bin: String,
    extra: Vec<(String, String)>,
}

impl Service {
    /// Sends SIGTERM and waits up to `timeout` for a clean exit.
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("{} did not stop within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown, nothing flushed (a crash, or the OOM killer).
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.stop(Duration::from_secs(10));
        }
    }
}

impl Service {
    /// Starts one binary on its own with exactly `env` (plus PATH), its
    /// output appended to `log`.
    pub fn launch(
        name: &'static str,
        bin: &str,
        log: PathBuf,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Service> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(binary(bin)?)
            .current_dir(repo_root())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        Ok(Service {
            name,
            child,
            log,
            bin: bin.to_string(),
            extra: env,
        })
    }
}

/// The five services running against one database and one namespace.
pub struct Cluster {
    pub dir: tempfile_dir::Dir,
    pub db: TestDatabase,
    pub namespace: String,
    pub env: BTreeMap<String, String>,
    pub gateway_grpc: String,
    pub gateway_http: String,
    pub search_grpc: String,
    /// The gateway's internal token (what tests present when they call
    /// search, the detector or the embedder directly, as the gateway).
    pub internal_token: String,
    /// The indexer's internal token.
    pub indexer_token: String,
    /// The gateway's operator credential (facepass.admin.v1).
    pub admin_token: String,
    pub storage_root: PathBuf,
    pub services: Vec<Service>,
    /// gRPC port of each service.
    pub ports: Vec<(&'static str, u16)>,
    /// The Prometheus endpoint of each service (`host:port`).
    pub metrics: Vec<(&'static str, String)>,
    /// A hosts file bind-mounted over /etc/hosts for the embedders' clients
    /// (gateway and indexer), when the embedders run under one name.
    hosts_file: Option<PathBuf>,
    /// The test CA when the cluster runs TLS ([`ClusterOptions::tls`]).
    pub tls: Option<certs::TestCa>,
}

/// The host name several embedders answer to in [`ClusterOptions::embedders`].
pub const EMBEDDERS_HOST: &str = "embedders.facepass.test";

/// What a [`Cluster`] differs in from the default one.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// The model pack (default: the fixture pack).
    pub pack: Option<PathBuf>,
    /// Variables for every service, over the defaults (S3 storage, say).
    pub env: Vec<(String, String)>,
    /// Run one embedder per address (e.g. 127.0.0.2, .3, .4), all on one
    /// port under [`EMBEDDERS_HOST`]: the gateway and the indexer resolve
    /// that name through their own /etc/hosts (a private mount namespace,
    /// `unshare -m`), as pods resolve a headless Service. Empty: one
    /// embedder on 127.0.0.1.
    pub embedders: Vec<&'static str>,
    /// TLS everywhere: every service's gRPC (mutual TLS between services,
    /// server TLS on the gateway's public gRPC) and the gateway's HTTP,
    /// with a test CA ([`Cluster::tls`]); URLs are `https://localhost:…`.
    pub tls: bool,
}

/// Names of the extra embedders' services.
const EMBEDDER_NAMES: [&str; 4] = ["embedder", "embedder-2", "embedder-3", "embedder-4"];

/// A temporary folder removed on drop (no extra dependency).
pub mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> std::io::Result<Dir> {
            let path =
                std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path)?;
            Ok(Dir(path))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            if std::env::var_os("FACEPASS_KEEP_TEST_DIRS").is_none() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}

impl Cluster {
    /// Starts gateway, detector, embedder, indexer and search and waits
    /// until each reports SERVING.
    pub async fn start() -> anyhow::Result<Cluster> {
        Self::start_with_pack(&fixture_models()?).await
    }

    /// [`Cluster::start`] with the detector, embedder and search on the
    /// model pack in `models` (a folder with manifest.toml).
    pub async fn start_with_pack(models: &Path) -> anyhow::Result<Cluster> {
        Self::start_with(ClusterOptions {
            pack: Some(models.to_path_buf()),
            ..ClusterOptions::default()
        })
        .await
    }

    /// A cluster as `options` say.
    pub async fn start_with(options: ClusterOptions) -> anyhow::Result<Cluster> {
        let models = match &options.pack {
            Some(pack) => pack.clone(),
            None => fixture_models()?,
        };
        anyhow::ensure!(
            options.embedders.len() <= EMBEDDER_NAMES.len(),
            "at most 4 embedders"
        );
        let dir = tempfile_dir::Dir::new("facepass-e2e")?;
        let db = TestDatabase::create("facepass_e2e").await?;
        let dylib = ort_dylib()?;
        let namespace = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        // Each caller its own internal token; the called services know
        // which is whose and what each may call (docs/security.md §4).
        let internal_token = format!("g{}", uuid::Uuid::new_v4().simple());
        let indexer_token = format!("i{}", uuid::Uuid::new_v4().simple());
        let storage_root = dir.path().join("objects");
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let (gw_grpc, gw_http, det, emb, srch, idx) =
            (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);

        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        set("ORT_DYLIB_PATH", dylib);
        set("FACEPASS_DATABASE_URL", db.url.clone());
        set("FACEPASS_AMQP__URL", amqp_url());
        set("FACEPASS_AMQP__NAMESPACE", namespace.clone());
        set("FACEPASS_INTERNAL_CALLERS__GATEWAY", internal_token.clone());
        set("FACEPASS_INTERNAL_CALLERS__INDEXER", indexer_token.clone());
        set(
            "FACEPASS_SHARE_LINK_KEY",
            format!("k{}", uuid::Uuid::new_v4().simple()),
        );
        set("FACEPASS_STORAGE_ROOT", storage_root.display().to_string());
        set("FACEPASS_DETECTOR__URL", format!("http://127.0.0.1:{det}"));
        set("FACEPASS_EMBEDDER__URL", format!("http://127.0.0.1:{emb}"));
        set("FACEPASS_SEARCH__URL", format!("http://127.0.0.1:{srch}"));
        set("FACEPASS_MODEL__PATH", String::new()); // set per service below
        set("FACEPASS_LOG__FILTER", "info".into());
        set("FACEPASS_RETRY_BASE_MS", "200".into());
        // Tests that take a peer down for good expect the photo to fail soon:
        // five attempts (production retries for hours, `retry_for_ms`).
        set("FACEPASS_MAX_ATTEMPTS", "5".into());
        env.remove("FACEPASS_MODEL__PATH");
        let hosts_file = if options.embedders.is_empty() {
            None
        } else {
            // A private mount namespace needs CAP_SYS_ADMIN (root here).
            let probe = Command::new("unshare")
                .args(["--mount", "--propagation", "private", "true"])
                .status();
            anyhow::ensure!(
                matches!(probe, Ok(s) if s.success()),
                "several embedders under one name need `unshare --mount` (root, or CAP_SYS_ADMIN): {probe:?}"
            );
            // The machine's own entries, then one line per embedder.
            let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for ip in &options.embedders {
                hosts.push_str(&format!("{ip} {EMBEDDERS_HOST}\n"));
            }
            let path = dir.path().join("hosts");
            std::fs::write(&path, hosts)?;
            env.insert(
                "FACEPASS_EMBEDDER__URL".into(),
                format!("http://{EMBEDDERS_HOST}:{emb}"),
            );
            // Re-resolved often, so a test sees changes quickly.
            env.insert(
                "FACEPASS_EMBEDDER__RESOLVE_INTERVAL_MS".into(),
                "500".into(),
            );
            Some(path)
        };
        let tls = if options.tls {
            let ca = certs::TestCa::create(&dir.path().join("tls"), "cluster")?;
            let path = |p: &PathBuf| p.display().to_string();
            env.insert("FACEPASS_GRPC__TLS__CERT_PATH".into(), path(&ca.cert));
            env.insert("FACEPASS_GRPC__TLS__KEY_PATH".into(), path(&ca.key));
            env.insert("FACEPASS_GRPC__TLS__CLIENT_CA_PATH".into(), path(&ca.ca));
            for (peer, port) in [("DETECTOR", det), ("EMBEDDER", emb), ("SEARCH", srch)] {
                env.insert(
                    format!("FACEPASS_{peer}__URL"),
                    format!("https://localhost:{port}"),
                );
                env.insert(format!("FACEPASS_{peer}__TLS__CA_PATH"), path(&ca.ca));
                env.insert(format!("FACEPASS_{peer}__TLS__CERT_PATH"), path(&ca.cert));
                env.insert(format!("FACEPASS_{peer}__TLS__KEY_PATH"), path(&ca.key));
            }
            Some(ca)
        } else {
            None
        };
        for (k, v) in &options.env {
            env.insert(k.clone(), v.clone());
        }
        let embedder_hosts: Vec<&'static str> = if options.embedders.is_empty() {
            vec!["127.0.0.1"]
        } else {
            options.embedders.clone()
        };
        let mut metrics = Vec::new();
        for name in ["gateway", "detector", "search", "indexer"] {
            metrics.push((name, format!("127.0.0.1:{}", free_port())));
        }
        for (i, ip) in embedder_hosts.iter().enumerate() {
            metrics.push((EMBEDDER_NAMES[i], format!("{ip}:{}", free_port())));
        }

        let (scheme, host) = if tls.is_some() {
            ("https", "localhost")
        } else {
            ("http", "127.0.0.1")
        };
        let mut cluster = Cluster {
            dir,
            db,
            namespace,
            env,
            gateway_grpc: format!("{scheme}://{host}:{gw_grpc}"),
            gateway_http: format!("{scheme}://{host}:{gw_http}"),
            search_grpc: format!("{scheme}://{host}:{srch}"),
            internal_token,
            indexer_token: indexer_token.clone(),
            admin_token: format!("a{}", uuid::Uuid::new_v4().simple()),
            storage_root,
            services: Vec::new(),
            ports: vec![
                ("gateway", gw_grpc),
                ("detector", det),
                ("embedder", emb),
                ("search", srch),
                ("indexer", idx),
            ],
            metrics,
            hosts_file,
            tls,
        };
        // Every model-aware service uses the fixture pack: the embedder
        // labels embeddings with its id, the store checks it and takes its
        // thresholds.
        let pack = models.display().to_string();
        // Search first: it owns the face schema migrations.
        cluster.spawn(
            "search",
            "facepass-search",
            &[
                ("FACEPASS_GRPC__LISTEN", format!("127.0.0.1:{srch}")),
                ("FACEPASS_MODEL__PACK", pack.clone()),
            ],
        )?;
        cluster.spawn(
            "detector",
            "facepass-detector",
            &[
                ("FACEPASS_GRPC__LISTEN", format!("127.0.0.1:{det}")),
                ("FACEPASS_MODEL__PACK", pack.clone()),
            ],
        )?;
        for (i, ip) in embedder_hosts.iter().enumerate() {
            cluster.spawn(
                EMBEDDER_NAMES[i],
                "facepass-embedder",
                &[
                    ("FACEPASS_GRPC__LISTEN", format!("{ip}:{emb}")),
                    ("FACEPASS_MODEL__PACK", pack.clone()),
                ],
            )?;
        }
        cluster.spawn(
            "gateway",
            "facepass-gateway",
            &[
                ("FACEPASS_GRPC__LISTEN", format!("127.0.0.1:{gw_grpc}")),
                ("FACEPASS_HTTP_LISTEN", format!("127.0.0.1:{gw_http}")),
                ("FACEPASS_ADMIN_TOKEN", cluster.admin_token.clone()),
                ("FACEPASS_INTERNAL_TOKEN", cluster.internal_token.clone()),
                // Pixora and browsers present no certificate to the gateway.
                ("FACEPASS_GRPC__TLS__CLIENT_CA_PATH", String::new()),
                (
                    "FACEPASS_HTTP_TLS__CERT_PATH",
                    cluster
                        .env
                        .get("FACEPASS_GRPC__TLS__CERT_PATH")
                        .cloned()
                        .unwrap_or_default(),
                ),
                (
                    "FACEPASS_HTTP_TLS__KEY_PATH",
                    cluster
                        .env
                        .get("FACEPASS_GRPC__TLS__KEY_PATH")
                        .cloned()
                        .unwrap_or_default(),
                ),
                // Expired events are purged within a second in tests.
                ("FACEPASS_RETENTION_POLL_MS", "300".into()),
                // Webhooks to the tests' own plain-HTTP receivers, retried fast.
                ("FACEPASS_WEBHOOK_ALLOW_HTTP", "true".into()),
                ("FACEPASS_WEBHOOK_RETRY_BASE_MS", "300".into()),
                ("FACEPASS_WEBHOOK_POLL_MS", "100".into()),
            ],
        )?;
        cluster.spawn(
            "indexer",
            "facepass-indexer",
            &[
                ("FACEPASS_GRPC__LISTEN", format!("127.0.0.1:{idx}")),
                ("FACEPASS_INTERNAL_TOKEN", indexer_token),
            ],
        )?;

        let mut health = vec![
            ("search", format!("127.0.0.1:{srch}")),
            ("detector", format!("127.0.0.1:{det}")),
            ("gateway", format!("127.0.0.1:{gw_grpc}")),
            ("indexer", format!("127.0.0.1:{idx}")),
        ];
        for (i, ip) in embedder_hosts.iter().enumerate() {
            health.push((EMBEDDER_NAMES[i], format!("{ip}:{emb}")));
        }
        for (name, addr) in health {
            let waited = match &cluster.tls {
                None => wait_serving(&format!("http://{addr}"), Duration::from_secs(60)).await,
                Some(ca) => {
                    let port = addr.rsplit(':').next().unwrap_or_default();
                    wait_serving_tls(
                        &format!("https://localhost:{port}"),
                        ca.client(true)?,
                        Duration::from_secs(60),
                    )
                    .await
                }
            };
            if let Err(e) = waited {
                let tail = cluster
                    .services
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| s.log_tail())
                    .unwrap_or_default();
                bail!("{name} never became SERVING: {e}\n--- {name} log ---\n{tail}");
            }
        }
        // SERVING must come from our processes, not from whatever else
        // answers on their ports: each one is still running.
        for service in &mut cluster.services {
            if let Ok(Some(status)) = service.child.try_wait() {
                bail!(
                    "{} exited ({status}) while the cluster started\n--- log ---\n{}",
                    service.name,
                    service.log_tail()
                );
            }
        }
        Ok(cluster)
    }

    fn spawn(
        &mut self,
        name: &'static str,
        bin: &str,
        extra: &[(&str, String)],
    ) -> anyhow::Result<()> {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let service = self.launch(name, bin, extra)?;
        self.services.push(service);
        Ok(())
    }

    /// Starts a service again with the same settings (stopping it first
    /// if it still runs).
    pub fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        self.restart_with(name, &[])
    }

    /// [`restart`](Self::restart) with some settings changed (a rotated
    /// token, say); the changes stay for later restarts.
    pub fn restart_with(&mut self, name: &str, changes: &[(&str, String)]) -> anyhow::Result<()> {
        let index = self
            .services
            .iter()
            .position(|s| s.name == name)
            .context("unknown service")?;
        let old = &mut self.services[index];
        if old.child.try_wait()?.is_none() {
            old.stop(Duration::from_secs(20))?;
        }
        let (name, bin, mut extra) = (old.name, old.bin.clone(), old.extra.clone());
        for (key, value) in changes {
            extra.retain(|(k, _)| k != key);
            extra.push((key.to_string(), value.clone()));
        }
        let fresh = self.launch(name, &bin, extra)?;
        self.services[index] = fresh;
        Ok(())
    }

    fn launch(
        &self,
        name: &'static str,
        bin: &str,
        extra: Vec<(String, String)>,
    ) -> anyhow::Result<Service> {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let program = binary(bin)?;
        let hosts = self
            .hosts_file
            .as_ref()
            .filter(|_| matches!(name, "gateway" | "indexer"));
        let mut command = match hosts {
            // Its own mount namespace, where /etc/hosts is the cluster's:
            // the embedders' name resolves to all of their addresses.
            Some(hosts) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg("mount --bind \"$0\" /etc/hosts && exec \"$1\"")
                    .arg(hosts)
                    .arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let metrics_listen = self
            .metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, addr)| addr.clone())
            .unwrap_or_default();
        command
            .current_dir(repo_root())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .env("FACEPASS_METRICS__LISTEN", metrics_listen)
            .envs(extra.iter().cloned())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = command.spawn().with_context(|| format!("starting {bin}"))?;
        Ok(Service {
            name,
            child,
            log,
            bin: bin.to_string(),
            extra,
        })
    }

    /// Runs `facepass-gateway create-studio` and returns (studio id, api key).
    pub fn create_studio(&self, name: &str) -> anyhow::Result<(String, String)> {
        let output = Command::new(binary("facepass-gateway")?)
            .current_dir(repo_root())
            .env_clear()
            .envs(&self.env)
            .args(["create-studio", "--quiet", "--name", name])
            .output()?;
        if !output.status.success() {
            bail!(
                "create-studio failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = String::from_utf8(output.stdout)?;
        let mut parts = text.split_whitespace();
        Ok((
            parts.next().context("studio id")?.to_string(),
            parts.next().context("api key")?.to_string(),
        ))
    }

    /// Runs `facepass admin <args>` against this cluster (its gateway, admin
    /// token, broker and namespace); (succeeded, stdout and stderr).
    pub fn admin_cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(binary("facepass").expect("the facepass binary"))
            .args(["admin", "--gateway", &self.gateway_grpc])
            .args(args)
            .env("FACEPASS_ADMIN_TOKEN", &self.admin_token)
            .env("FACEPASS_AMQP_URL", amqp_url())
            .env("FACEPASS_AMQP_NAMESPACE", &self.namespace)
            .output()
            .expect("running facepass admin");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// A service's peak and current resident memory (VmHWM, VmRSS) in MiB.
    pub fn memory_mib(&self, name: &str) -> (f64, f64) {
        let pid = self
            .services
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
            .child
            .id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |label: &str| {
            status
                .lines()
                .find(|l| l.starts_with(label))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .unwrap()
                / 1024.0
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// The gRPC URL of a service.
    pub fn url(&self, name: &str) -> String {
        let (_, port) = self
            .ports
            .iter()
            .find(|(n, _)| *n == name)
            .expect("known service");
        match self.tls {
            None => format!("http://127.0.0.1:{port}"),
            Some(_) => format!("https://localhost:{port}"),
        }
    }

    /// The face store's counts for one event, asked of search directly.
    pub async fn event_stats(
        &self,
        studio: &str,
        event: &str,
    ) -> anyhow::Result<facepass_proto::search::v1::GetEventStatsResponse> {
        use facepass_proto::search::v1 as srch;
        Ok(self
            .search_as(&self.internal_token)
            .await?
            .get_event_stats(srch::GetEventStatsRequest {
                studio_id: studio.into(),
                event_id: event.into(),
            })
            .await?
            .into_inner())
    }

    /// A client of the cluster's search service, calling with `token` (the
    /// gateway's `internal_token` or the indexer's `indexer_token`).
    pub async fn search_as(&self, token: &str) -> anyhow::Result<search::Client> {
        let channel = Channel::from_shared(self.search_grpc.clone())?
            .connect()
            .await?;
        Ok(
            facepass_proto::search::v1::search_service_client::SearchServiceClient::with_interceptor(
                channel,
                search::Auth::bearer(token)?,
            ),
        )
    }

    /// A service's Prometheus metrics, as text.
    pub async fn scrape(&self, name: &str) -> anyhow::Result<String> {
        let (_, addr) = self
            .metrics
            .iter()
            .find(|(n, _)| *n == name)
            .with_context(|| format!("no metrics endpoint for {name}"))?;
        let response = reqwest::get(format!("http://{addr}/metrics")).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{name}: /metrics answered {}",
            response.status()
        );
        Ok(response.text().await?)
    }

    pub fn service(&mut self, name: &str) -> &mut Service {
        self.services
            .iter_mut()
            .find(|s| s.name == name)
            .expect("known service")
    }

    /// Log tails of every service, for failure messages.
    pub fn logs(&self) -> String {
        self.services
            .iter()
            .map(|s| format!("--- {} ---\n{}", s.name, s.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every queue of this cluster (work, outcomes, dead letters and the
    /// retry queues of its settings) with its number of ready messages.
    pub async fn queue_depths(&self) -> anyhow::Result<Vec<(String, u32)>> {
        let conn = facepass_queue::connect(&amqp_url(), "facepass-e2e-depths").await?;
        let mut depths = Vec::new();
        for queue in self.queue_names() {
            // A passive declare of a queue that does not exist closes its
            // channel: one channel per queue.
            let channel = conn.create_channel().await?;
            if let Ok(q) = channel
                .queue_declare(
                    queue.as_str().into(),
                    facepass_queue::lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
            {
                depths.push((queue, q.message_count()));
            }
        }
        let _ = conn.close(200, "bye".into()).await;
        Ok(depths)
    }

    fn queue_names(&self) -> Vec<String> {
        let t = facepass_queue::AmqpConfig {
            url: amqp_url(),
            namespace: self.namespace.clone(),
        }
        .topology();
        let mut queues = vec![t.indexer_queue(), t.outcomes_queue(), t.dead_letter_queue()];
        // The retry queues of this cluster's settings (the harness's
        // defaults, or a test's own).
        let setting = |key: &str, default: u64| {
            self.env
                .get(key)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        queues.extend(
            facepass_queue::retry_delays_ms(
                setting("FACEPASS_RETRY_BASE_MS", 1_000),
                setting("FACEPASS_RETRY_MAX_MS", 60_000),
                setting("FACEPASS_MAX_ATTEMPTS", 0) as u32,
            )
            .into_iter()
            .map(|d| t.retry_queue(d)),
        );
        queues
    }

    /// Deletes this test's queues and exchanges from RabbitMQ.
    pub async fn clean_broker(&self) {
        if let Ok(conn) = facepass_queue::connect(&amqp_url(), "facepass-e2e-cleanup").await {
            if let Ok(channel) = conn.create_channel().await {
                let t = facepass_queue::AmqpConfig {
                    url: amqp_url(),
                    namespace: self.namespace.clone(),
                }
                .topology();
                let queues = self.queue_names();
                for q in queues {
                    let _ = channel
                        .queue_delete(q.as_str().into(), Default::default())
                        .await;
                }
                for x in [t.events_exchange(), t.dead_letter_exchange()] {
                    let _ = channel
                        .exchange_delete(x.as_str().into(), Default::default())
                        .await;
                }
            }
            let _ = conn.close(200, "bye".into()).await;
        }
    }
}

/// Polls grpc.health.v1 until SERVING.
pub async fn wait_serving(url: &str, timeout: Duration) -> anyhow::Result<()> {
    wait_serving_with(url, None, timeout).await
}

/// [`wait_serving`] over TLS.
pub async fn wait_serving_tls(
    url: &str,
    tls: tonic::transport::ClientTlsConfig,
    timeout: Duration,
) -> anyhow::Result<()> {
    wait_serving_with(url, Some(tls), timeout).await
}

async fn wait_serving_with(
    url: &str,
    tls: Option<tonic::transport::ClientTlsConfig>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        let mut endpoint = Channel::from_shared(url.to_string())?;
        if let Some(tls) = &tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        if let Ok(channel) = endpoint.connect().await {
            match HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
            {
                Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => return Ok(()),
                Ok(r) => last = format!("status {}", r.get_ref().status),
                Err(e) => last = e.to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{last}")
}
