use std::path::PathBuf;

use clap::{Parser, Subcommand};
use facepass_gateway::GatewayConfig;
use facepass_server::{main_support, telemetry, Shutdown};

/// FacePass gateway: public gRPC API, REST + web UI, catalog and outbox.
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
    /// Serve gRPC and HTTP (the default).
    Serve,
    /// Apply migrations/catalog and exit.
    Migrate,
    /// Create a studio and print its API key (shown only this once).
    CreateStudio {
        #[arg(long)]
        name: String,
        /// Print `studio_id api_key` only, for scripts.
        #[arg(long)]
        quiet: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    const BIN: &str = "facepass-gateway";
    let config: GatewayConfig = match main_support::load_config(BIN, args.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // Flushes buffered spans when main returns.
    let _telemetry = telemetry::init("gateway", &config.log);
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Migrate => facepass_gateway::migrate(&config).await.map(|applied| {
            println!("applied {} migration(s): {applied:?}", applied.len());
        }),
        Command::CreateStudio { name, quiet } => facepass_gateway::create_studio(&config, &name)
            .await
            .map(|(id, key)| {
                if quiet {
                    println!("{id} {key}");
                } else {
                    println!("studio {name:?} created: id {id}");
                    println!("api key (shown only now, keep it safe): {key}");
                }
            }),
        Command::Serve => serve(config).await,
    };
    main_support::exit(BIN, result)
}

async fn serve(config: GatewayConfig) -> anyhow::Result<()> {
    let server = main_support::bind(&config.grpc).await?;
    let http = tokio::net::TcpListener::bind(&config.http_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.http_listen))?;
    facepass_gateway::run(config, server, http, Shutdown::from_os_signals()).await
}
