//! `facepass admin`: the operator's commands for studios and API keys,
//! over the gateway's facepass.admin.v1 with the operator credential.

use anyhow::Context;
use clap::Subcommand;
use facepass_proto::admin::v1 as pb;
use pb::admin_service_client::AdminServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Studios: create, list, disable, enable.
    Studio {
        #[command(subcommand)]
        command: StudioCommand,
    },
    /// API keys: create, list, revoke, rotate.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Failed photos: index them again.
    Photos {
        #[command(subcommand)]
        command: PhotosCommand,
    },
    /// RabbitMQ's dead-letter queue: list what is in it, send it back.
    /// Talks to RabbitMQ directly (not to the gateway).
    DeadLetters {
        #[arg(
            long,
            env = "FACEPASS_AMQP_URL",
            default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
            hide_env_values = true
        )]
        amqp_url: String,
        /// The services' `amqp.namespace`.
        #[arg(long, env = "FACEPASS_AMQP_NAMESPACE", default_value = "facepass")]
        namespace: String,
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Subcommand)]
pub enum PhotosCommand {
    /// Queue failed photos for indexing again: all of them, or those of a
    /// studio, an event or a failure code (filters combine).
    Retry {
        #[arg(long)]
        studio: Option<String>,
        #[arg(long)]
        event: Option<String>,
        /// e.g. UNAVAILABLE, TIMEOUT (docs/errors.md).
        #[arg(long)]
        code: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum DeadLetterCommand {
    /// Show the dead-lettered messages; nothing leaves the queue.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send messages back to the queue they were dead-lettered from.
    Replay {
        /// Only the messages with this message id or about this photo id.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Every message (without --id, one of the two is required).
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
}

#[derive(Subcommand)]
pub enum StudioCommand {
    /// Create a studio with a first key of every scope (shown once).
    Create {
        #[arg(long)]
        name: String,
    },
    List,
    /// Its keys and share links stop working; nothing is deleted.
    Disable {
        studio_id: String,
    },
    Enable {
        studio_id: String,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key (shown once). Scopes: read, upload, search, admin.
    Create {
        studio_id: String,
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long, value_delimiter = ',', default_value = "read,upload,search")]
        scopes: Vec<String>,
    },
    List {
        studio_id: String,
        /// Revoked keys too.
        #[arg(long)]
        all: bool,
    },
    Revoke {
        key_id: String,
    },
    /// A new secret with the same label and scopes; the old key works for
    /// --grace-seconds more.
    Rotate {
        key_id: String,
        #[arg(long, default_value_t = 0)]
        grace_seconds: u32,
    },
}

type Interceptor = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send>;
type Client = AdminServiceClient<InterceptedService<Channel, Interceptor>>;

async fn client(url: &str, token: &str) -> anyhow::Result<Client> {
    let channel = Channel::from_shared(url.to_string())?
        .connect()
        .await
        .with_context(|| format!("connecting to the gateway at {url}"))?;
    let header: MetadataValue<_> = format!("Bearer {token}").parse()?;
    let interceptor: Interceptor = Box::new(move |mut r: Request<()>| {
        r.metadata_mut().insert("authorization", header.clone());
        Ok(r)
    });
    Ok(AdminServiceClient::with_interceptor(channel, interceptor))
}

fn scope(text: &str) -> anyhow::Result<i32> {
    Ok(match text.trim() {
        "read" => pb::Scope::Read,
        "upload" => pb::Scope::Upload,
        "search" => pb::Scope::Search,
        "admin" => pb::Scope::Admin,
        other => anyhow::bail!("unknown scope {other:?}: read, upload, search or admin"),
    } as i32)
}

fn scope_names(scopes: &[i32]) -> String {
    scopes
        .iter()
        .map(|s| match pb::Scope::try_from(*s) {
            Ok(pb::Scope::Read) => "read",
            Ok(pb::Scope::Upload) => "upload",
            Ok(pb::Scope::Search) => "search",
            Ok(pb::Scope::Admin) => "admin",
            _ => "?",
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn when(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

fn print_key(key: &pb::ApiKey) {
    println!(
        "{}  {:<12} {:<24} {:<26} created {}  last used {}  revoked {}",
        key.id,
        if key.prefix.is_empty() {
            "(no prefix)"
        } else {
            &key.prefix
        },
        if key.label.is_empty() {
            "-"
        } else {
            &key.label
        },
        scope_names(&key.scopes),
        when(&key.created_at),
        when(&key.last_used_at),
        when(&key.revoked_at)
    );
}

fn status(e: Status) -> anyhow::Error {
    let err = facepass_core::Error::from_status(&e);
    anyhow::anyhow!("{}: {}", err.code, err.message)
}

/// `facepass admin dead-letters ...`, straight against RabbitMQ.
async fn dead_letters(
    amqp_url: &str,
    namespace: &str,
    command: DeadLetterCommand,
) -> anyhow::Result<()> {
    use facepass_queue::dead_letters as dl;
    let topology = facepass_queue::AmqpConfig {
        url: amqp_url.to_string(),
        namespace: namespace.to_string(),
    }
    .topology();
    let connection = facepass_queue::connect(amqp_url, "facepass-cli")
        .await
        .context("connecting to rabbitmq")?;
    let print = |l: &dl::DeadLetter| {
        let died = l
            .died_at
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .format("%Y-%m-%d %H:%M:%SZ")
                    .to_string()
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<36}  {:<34} {:<9} x{:<3} {}  from {}  photo {} event {}  {} bytes",
            if l.message_id.is_empty() {
                "-"
            } else {
                &l.message_id
            },
            if l.message_type.is_empty() {
                "(no type)"
            } else {
                &l.message_type
            },
            if l.reason.is_empty() { "-" } else { &l.reason },
            l.deaths,
            died,
            if l.queue.is_empty() { "-" } else { &l.queue },
            if l.photo_id.is_empty() {
                "-"
            } else {
                &l.photo_id
            },
            if l.event_id.is_empty() {
                "-"
            } else {
                &l.event_id
            },
            l.size_bytes,
        );
    };
    match command {
        DeadLetterCommand::List { limit } => {
            let letters = dl::list(&connection, &topology, limit)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for l in &letters {
                print(l);
            }
            println!(
                "{} dead-lettered message(s) in {}",
                letters.len(),
                topology.dead_letter_queue()
            );
        }
        DeadLetterCommand::Replay { ids, all, limit } => {
            if ids.is_empty() && !all {
                anyhow::bail!("say which messages: --id <message id> (repeatable) or --all");
            }
            let replayed = dl::replay(
                &connection,
                &topology,
                &dl::ReplayFilter {
                    message_ids: ids,
                    limit,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            for l in &replayed {
                print(l);
            }
            println!("{} message(s) sent back to their queues", replayed.len());
        }
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

pub async fn run(url: &str, token: &str, command: AdminCommand) -> anyhow::Result<()> {
    let command = match command {
        AdminCommand::DeadLetters {
            amqp_url,
            namespace,
            command,
        } => return dead_letters(&amqp_url, &namespace, command).await,
        other => other,
    };
    if token.is_empty() {
        anyhow::bail!("no admin token: pass --admin-token or set FACEPASS_ADMIN_TOKEN");
    }
    let mut admin = client(url, token).await?;
    match command {
        AdminCommand::DeadLetters { .. } => unreachable!("handled above"),
        AdminCommand::Photos {
            command:
                PhotosCommand::Retry {
                    studio,
                    event,
                    code,
                },
        } => {
            let r = admin
                .retry_failed_photos(pb::RetryFailedPhotosRequest {
                    studio_id: studio.unwrap_or_default(),
                    event_id: event.unwrap_or_default(),
                    failure_code: code.unwrap_or_default(),
                })
                .await
                .map_err(status)?
                .into_inner();
            println!(
                "{} failed photo(s) queued for indexing again",
                r.photos_requeued
            );
        }
        AdminCommand::Studio { command } => match command {
            StudioCommand::Create { name } => {
                let r = admin
                    .create_studio(pb::CreateStudioRequest { name })
                    .await
                    .map_err(status)?
                    .into_inner();
                let studio = r.studio.unwrap_or_default();
                println!("studio {:?} created: id {}", studio.name, studio.id);
                println!("api key (shown only now, keep it safe): {}", r.secret);
            }
            StudioCommand::List => {
                let mut token = String::new();
                loop {
                    let page = admin
                        .list_studios(pb::ListStudiosRequest {
                            page_size: 0,
                            page_token: token,
                        })
                        .await
                        .map_err(status)?
                        .into_inner();
                    for s in &page.studios {
                        println!(
                            "{}  {:<32} created {}  keys {}  {}",
                            s.id,
                            s.name,
                            when(&s.created_at),
                            s.active_keys,
                            if s.disabled_at.is_some() {
                                "DISABLED"
                            } else {
                                "active"
                            }
                        );
                    }
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    token = page.next_page_token;
                }
            }
            StudioCommand::Disable { studio_id } => {
                let s = admin
                    .disable_studio(pb::DisableStudioRequest { studio_id })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .studio
                    .unwrap_or_default();
                println!(
                    "studio {} disabled: its keys and share links no longer work",
                    s.id
                );
            }
            StudioCommand::Enable { studio_id } => {
                let s = admin
                    .enable_studio(pb::EnableStudioRequest { studio_id })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .studio
                    .unwrap_or_default();
                println!("studio {} enabled ({} active keys)", s.id, s.active_keys);
            }
        },
        AdminCommand::Key { command } => match command {
            KeyCommand::Create {
                studio_id,
                label,
                scopes,
            } => {
                let scopes = scopes
                    .iter()
                    .map(|s| scope(s))
                    .collect::<anyhow::Result<_>>()?;
                let r = admin
                    .create_api_key(pb::CreateApiKeyRequest {
                        studio_id,
                        label,
                        scopes,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                print_key(&r.key.unwrap_or_default());
                println!("api key (shown only now, keep it safe): {}", r.secret);
            }
            KeyCommand::List { studio_id, all } => {
                let r = admin
                    .list_api_keys(pb::ListApiKeysRequest {
                        studio_id,
                        include_revoked: all,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                for key in &r.keys {
                    print_key(key);
                }
            }
            KeyCommand::Revoke { key_id } => {
                let key = admin
                    .revoke_api_key(pb::RevokeApiKeyRequest { key_id })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .key
                    .unwrap_or_default();
                print_key(&key);
            }
            KeyCommand::Rotate {
                key_id,
                grace_seconds,
            } => {
                let r = admin
                    .rotate_api_key(pb::RotateApiKeyRequest {
                        key_id,
                        grace_seconds,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                print_key(&r.key.unwrap_or_default());
                println!("new api key (shown only now, keep it safe): {}", r.secret);
            }
        },
    }
    Ok(())
}
