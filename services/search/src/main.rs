use std::path::PathBuf;

use clap::{Parser, Subcommand};
use facepass_search::SearchConfig;
use facepass_server::{main_support, telemetry, Shutdown};

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
    const BIN: &str = "facepass-search";
    let args = Args::parse();
    let config: SearchConfig = match main_support::load_config(BIN, args.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // Flushes buffered spans when main returns.
    let _telemetry = telemetry::init("search", &config.log);
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Migrate => facepass_search::migrate(&config).await.map(|applied| {
            println!("applied {} migration(s): {applied:?}", applied.len());
        }),
        Command::Serve => {
            async {
                let server = main_support::bind(&config.grpc).await?;
                facepass_search::run(config, server, Shutdown::from_os_signals()).await
            }
            .await
        }
    };
    main_support::exit(BIN, result)
}
