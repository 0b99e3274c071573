use std::path::PathBuf;

use clap::Parser;
use facepass_indexer::IndexerConfig;
use facepass_server::{telemetry, GrpcServer, Shutdown};

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
    let args = Args::parse();
    let config: IndexerConfig = match facepass_core::config::load(
        args.config.as_deref(),
        &facepass_core::config::process_env(),
    ) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("facepass-indexer: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init("indexer", &config.log);
    let result = match GrpcServer::bind(&config.grpc).await {
        Ok(server) => facepass_indexer::run(config, server, Shutdown::from_os_signals()).await,
        Err(e) => Err(anyhow::anyhow!(
            "cannot listen on {}: {e}",
            config.grpc.listen
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "facepass-indexer failed");
            eprintln!("facepass-indexer: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
