use std::path::PathBuf;

use clap::{Parser, Subcommand};
use facepass_search::SearchConfig;
use facepass_server::{telemetry, GrpcServer, Shutdown};

/// FacePass search service: the face store and event-scoped similarity search.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Optional TOML config file; FACEPASS_* variables override it.
    #[arg(long, env = "FACEPASS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Apply migrations/faces and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let config: SearchConfig = match facepass_core::config::load(
        args.config.as_deref(),
        &facepass_core::config::process_env(),
    ) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("facepass-search: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init("search", &config.log);
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Migrate => facepass_search::migrate(&config).await.map(|applied| {
            println!("applied {} migration(s): {applied:?}", applied.len());
        }),
        Command::Serve => match GrpcServer::bind(&config.grpc).await {
            Ok(server) => facepass_search::run(config, server, Shutdown::from_os_signals()).await,
            Err(e) => Err(anyhow::anyhow!(
                "cannot listen on {}: {e}",
                config.grpc.listen
            )),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "facepass-search failed");
            eprintln!("facepass-search: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
