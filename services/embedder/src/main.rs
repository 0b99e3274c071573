use std::path::PathBuf;

use clap::Parser;
use facepass_embedder::EmbedderConfig;
use facepass_server::{telemetry, GrpcServer, Shutdown};

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
    let args = Args::parse();
    let config: EmbedderConfig = match facepass_core::config::load(
        args.config.as_deref(),
        &facepass_core::config::process_env(),
    ) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("facepass-embedder: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init("embedder", &config.log);
    let dylib = std::env::var("ORT_DYLIB_PATH").ok();
    let result = match GrpcServer::bind(&config.grpc).await {
        Ok(server) => {
            facepass_embedder::run(config, server, Shutdown::from_os_signals(), dylib).await
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot listen on {}: {e}",
            config.grpc.listen
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "facepass-embedder failed");
            eprintln!("facepass-embedder: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
