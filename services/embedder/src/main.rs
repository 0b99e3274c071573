use std::path::PathBuf;

use clap::Parser;
use facepass_embedder::EmbedderConfig;
use facepass_server::{main_support, telemetry, Shutdown};

/// FacePass embedder: ArcFace embeddings with dynamic batching.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Optional TOML config file; FACEPASS_* variables override it.
    #[arg(long, env = "FACEPASS_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    const BIN: &str = "facepass-embedder";
    let args = Args::parse();
    let config: EmbedderConfig = match main_support::load_config(BIN, args.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // Flushes buffered spans when main returns.
    let _telemetry = telemetry::init("embedder", &config.log);
    let dylib = std::env::var("ORT_DYLIB_PATH").ok();
    let result = async {
        let server = main_support::bind(&config.grpc).await?;
        facepass_embedder::run(config, server, Shutdown::from_os_signals(), dylib).await
    }
    .await;
    main_support::exit(BIN, result)
}
