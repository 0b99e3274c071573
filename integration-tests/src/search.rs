//! A real `facepass-search` process for tests, and an authenticated gRPC
//! client of it.

use std::time::Duration;

use facepass_proto::search::v1::search_service_client::SearchServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::{free_port, tempfile_dir, wait_serving, Service, TestDatabase};

/// The internal token the test search services require.
pub const TOKEN: &str = "store-test-token";

/// Sends the internal token with every call.
#[derive(Clone)]
pub struct Auth(MetadataValue<Ascii>);

impl Auth {
    /// `authorization: Bearer <token>` on every call.
    pub fn bearer(token: &str) -> anyhow::Result<Auth> {
        Ok(Auth(format!("Bearer {token}").parse()?))
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut r: Request<()>) -> Result<Request<()>, Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

pub type Client = SearchServiceClient<InterceptedService<Channel, Auth>>;

pub struct Search {
    pub service: Service,
    pub client: Client,
    pub url: String,
}

/// Starts `facepass-search` on `db` with `env` (`FACEPASS_*` settings on
/// top of the database, token, port and log filter), logging to
/// `dir/name.log`, and waits until it is SERVING.
pub async fn start(
    db: &TestDatabase,
    dir: &tempfile_dir::Dir,
    name: &'static str,
    env: Vec<(String, String)>,
) -> anyhow::Result<Search> {
    let port = free_port();
    let mut all: Vec<(String, String)> = vec![
        ("FACEPASS_DATABASE_URL".into(), db.url.clone()),
        ("FACEPASS_INTERNAL_TOKEN".into(), TOKEN.into()),
        ("FACEPASS_GRPC__LISTEN".into(), format!("127.0.0.1:{port}")),
        ("FACEPASS_LOG__FILTER".into(), "info".into()),
    ];
    all.extend(env);
    let service = Service::launch(
        name,
        "facepass-search",
        dir.path().join(format!("{name}.log")),
        all,
    )?;
    let url = format!("http://127.0.0.1:{port}");
    if let Err(e) = wait_serving(&url, Duration::from_secs(60)).await {
        anyhow::bail!("search never became SERVING: {e}\n{}", service.log_tail());
    }
    let channel = Channel::from_shared(url.clone())?.connect().await?;
    let auth = Auth(format!("Bearer {TOKEN}").parse()?);
    Ok(Search {
        service,
        client: SearchServiceClient::with_interceptor(channel, auth),
        url,
    })
}
