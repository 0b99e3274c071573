use std::path::PathBuf;

use clap::Parser;
use facepass_indexer::IndexerConfig;
use facepass_server::{main_support, telemetry, Shutdown};

/// FacePass indexer: consumes photo.uploaded and indexes each photo's faces.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Optional TOML config file; FACEPASS_* variables override it.
    #[arg(long, env = "FACEPASS_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    const BIN: &str = "facepass-indexer";
    let args = Args::parse();
    let config: IndexerConfig = match main_support::load_config(BIN, args.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // Flushes buffered spans when main returns.
    let _telemetry = telemetry::init("indexer", &config.log);
    let result = async {
        let server = main_support::bind(&config.grpc).await?;
        facepass_indexer::run(config, server, Shutdown::from_os_signals()).await
    }
    .await;
    main_support::exit(BIN, result)
}
