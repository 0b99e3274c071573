use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// FacePass operator CLI.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Wait until services answer grpc.health.v1 with SERVING.
    WaitHealthy {
        /// gRPC URLs, e.g. http://127.0.0.1:50051
        urls: Vec<String>,
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
    /// Create the demo event (once) from synthetic photos or a folder of
    /// photos, and wait for indexing.
    Demo {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        gateway: String,
        /// The studio's API key.
        #[arg(long, env = "FACEPASS_API_KEY")]
        key: String,
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        /// Upload the photos of this folder instead of the synthetic wedding.
        #[arg(long)]
        photos: Option<PathBuf>,
        /// The event's external id (found again on the next run).
        #[arg(long, default_value = "demo")]
        external_id: String,
        /// The event's name when it is created.
        #[arg(long, default_value = "Demo wedding (synthetic faces)")]
        name: String,
    },
    /// Model packs: fetch buffalo_l, verify a pack folder, calibrate thresholds.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Operator: studios, API keys and failed photos (over the gateway's
    /// admin API), and the dead-letter queue (RabbitMQ).
    Admin {
        #[arg(long, default_value = "http://127.0.0.1:50051", global = true)]
        gateway: String,
        /// The gateway's admin_token.
        #[arg(
            long,
            env = "FACEPASS_ADMIN_TOKEN",
            default_value = "",
            hide_env_values = true,
            global = true
        )]
        admin_token: String,
        #[command(subcommand)]
        command: facepass_cli::admin::AdminCommand,
    },
    /// Write a synthetic selfie of one identity (1..=31) as a JPEG.
    Selfie {
        #[arg(long)]
        identity: u8,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download a built-in pack (buffalo_l), verify it and keep only what FacePass needs.
    Fetch {
        name: String,
        #[arg(long, default_value = ".facepass/models/buffalo_l")]
        dir: PathBuf,
    },
    /// Check a pack folder's files against its manifest.
    Verify { dir: PathBuf },
    /// Recommend match thresholds from labelled photos (one sub-folder per
    /// person) and, with --write, put them into the pack's manifest.
    Calibrate {
        /// The model pack folder (its manifest.toml is rewritten with --write).
        pack: PathBuf,
        /// One sub-folder per person, each with photos of that person.
        labelled: PathBuf,
        /// A photo in which every face is a different person, none of them
        /// a labelled one (adds different-person pairs); repeatable.
        #[arg(long)]
        crowd: Vec<PathBuf>,
        /// Share of different-person pairs allowed at or above the match threshold.
        #[arg(long = "match-fmr", default_value_t = 0.001)]
        match_fmr: f64,
        /// Share of different-person pairs allowed at or above the possible-match threshold.
        #[arg(long = "possible-fmr", default_value_t = 0.01)]
        possible_fmr: f64,
        /// Write the thresholds into PACK/manifest.toml.
        #[arg(long)]
        write: bool,
        /// Draw the two distributions and the thresholds into this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let result = match Args::parse().command {
        Command::WaitHealthy { urls, timeout_secs } => {
            facepass_cli::wait_healthy(&urls, Duration::from_secs(timeout_secs)).await
        }
        Command::Demo {
            gateway,
            key,
            timeout_secs,
            photos,
            external_id,
            name,
        } => {
            async {
                let mut client = facepass_cli::client(&gateway, &key).await?;
                let photos = match photos {
                    Some(dir) => facepass_cli::DemoPhotos::Folder(dir),
                    None => facepass_cli::DemoPhotos::Synthetic,
                };
                let event = facepass_cli::load_event(
                    &mut client,
                    &external_id,
                    &name,
                    photos,
                    Duration::from_secs(timeout_secs),
                )
                .await?;
                println!("event_id={}", event.id);
                println!("share_token={}", event.share_token);
                Ok(())
            }
            .await
        }
        Command::Admin {
            gateway,
            admin_token,
            command,
        } => facepass_cli::admin::run(&gateway, &admin_token, command).await,
        Command::Models { command } => match command {
            ModelsCommand::Calibrate {
                pack,
                labelled,
                crowd,
                match_fmr,
                possible_fmr,
                write,
                plot,
            } => {
                facepass_cli::calibrate::run(&facepass_cli::calibrate::Options {
                    pack,
                    labelled,
                    crowd,
                    match_false_match_rate: match_fmr,
                    possible_false_match_rate: possible_fmr,
                    write,
                    plot,
                })
                .await
            }
            ModelsCommand::Fetch { name, dir } => {
                facepass_cli::models::fetch(&name, &dir).map(|l| println!("ok: {l}"))
            }
            ModelsCommand::Verify { dir } => {
                facepass_cli::models::verify(&dir).map(|l| println!("ok: {l}"))
            }
        },
        Command::Selfie {
            identity,
            out,
            seed,
        } => {
            if !(1..=facepass_synth::MAX_IDENTITY).contains(&identity) {
                Err(anyhow::anyhow!(
                    "identity must be within 1 and {}",
                    facepass_synth::MAX_IDENTITY
                ))
            } else {
                std::fs::write(&out, facepass_synth::selfie(seed, identity).jpeg(90))
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))
            }
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facepass: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
