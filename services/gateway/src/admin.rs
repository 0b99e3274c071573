//! `facepass.admin.v1.AdminService`: studios and API keys for the operator,
//! behind the operator credential (`admin_token`). Served on the gateway's
//! gRPC port beside the public API.

use std::sync::Arc;

use facepass_core::{parse_id, Error, Result};
use facepass_proto::admin::v1 as pb;
use pb::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use crate::api::timestamp;
use crate::catalog::Cursor;
use crate::domain::{decode_cursor, encode_cursor, Gateway, Page, PageRequest};
use crate::keys::{KeyRow, Scope, StudioRow};

pub struct AdminApi {
    gateway: Arc<Gateway>,
}

impl AdminApi {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        AdminApi { gateway }
    }

    fn operator<T>(&self, request: &Request<T>) -> Result<()> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        crate::auth::operator(&self.gateway.config.admin_token, header)
    }
}

fn scope_to_pb(scope: Scope) -> pb::Scope {
    match scope {
        Scope::Read => pb::Scope::Read,
        Scope::Upload => pb::Scope::Upload,
        Scope::Search => pb::Scope::Search,
        Scope::Admin => pb::Scope::Admin,
    }
}

fn scopes_from_pb(scopes: &[i32]) -> Result<Vec<Scope>> {
    scopes
        .iter()
        .enumerate()
        .map(|(i, s)| match pb::Scope::try_from(*s) {
            Ok(pb::Scope::Read) => Ok(Scope::Read),
            Ok(pb::Scope::Upload) => Ok(Scope::Upload),
            Ok(pb::Scope::Search) => Ok(Scope::Search),
            Ok(pb::Scope::Admin) => Ok(Scope::Admin),
            Ok(pb::Scope::Unspecified) | Err(_) => Err(Error::invalid_field(
                format!("scopes[{i}]"),
                format!("unknown scope {s}"),
            )),
        })
        .collect()
}

pub fn key_to_pb(key: &KeyRow) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id.to_string(),
        studio_id: key.studio_id.to_string(),
        label: key.label.clone(),
        prefix: key.prefix.clone(),
        scopes: key
            .scopes()
            .into_iter()
            .map(|s| scope_to_pb(s) as i32)
            .collect(),
        created_at: Some(timestamp(key.created_at)),
        last_used_at: key.last_used_at.map(timestamp),
        revoked_at: key.revoked_at.map(timestamp),
    }
}

fn studio_to_pb(studio: &StudioRow, active_keys: i64) -> pb::Studio {
    pb::Studio {
        id: studio.id.to_string(),
        name: studio.name.clone(),
        created_at: Some(timestamp(studio.created_at)),
        disabled_at: studio.disabled_at.map(timestamp),
        active_keys: active_keys.max(0) as u32,
    }
}

/// Most studios in one page.
const MAX_STUDIOS_PAGE: u32 = 500;

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_studio(
        &self,
        request: Request<pb::CreateStudioRequest>,
    ) -> Result<Response<pb::CreateStudioResponse>, Status> {
        self.operator(&request)?;
        let pb::CreateStudioRequest { name } = request.into_inner();
        let (studio, key, secret) = self.gateway.catalog.create_studio(&name).await?;
        tracing::info!(studio_id = %studio.id, "studio created");
        Ok(Response::new(pb::CreateStudioResponse {
            studio: Some(studio_to_pb(&studio, 1)),
            key: Some(key_to_pb(&key)),
            secret,
        }))
    }

    async fn list_studios(
        &self,
        request: Request<pb::ListStudiosRequest>,
    ) -> Result<Response<pb::ListStudiosResponse>, Status> {
        self.operator(&request)?;
        let pb::ListStudiosRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let page = PageRequest::new(page_size, &page_token);
        let limit = page.limit(100, MAX_STUDIOS_PAGE)?;
        let after = page.after(decode_cursor)?.map(|c| (c.created_at, c.id));
        let rows = self.gateway.catalog.list_studios(limit + 1, after).await?;
        let page = Page::of(rows, limit, |(s, _)| {
            encode_cursor(&Cursor {
                created_at: s.created_at,
                id: s.id,
            })
        });
        Ok(Response::new(pb::ListStudiosResponse {
            studios: page
                .items
                .iter()
                .map(|(s, n)| studio_to_pb(s, *n))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn disable_studio(
        &self,
        request: Request<pb::DisableStudioRequest>,
    ) -> Result<Response<pb::DisableStudioResponse>, Status> {
        self.operator(&request)?;
        let studio_id = parse_id("studio_id", &request.into_inner().studio_id)?;
        let studio = self
            .gateway
            .catalog
            .set_studio_disabled(studio_id, true)
            .await?;
        tracing::warn!(%studio_id, "studio disabled");
        Ok(Response::new(pb::DisableStudioResponse {
            studio: Some(studio_to_pb(&studio, 0)),
        }))
    }

    async fn enable_studio(
        &self,
        request: Request<pb::EnableStudioRequest>,
    ) -> Result<Response<pb::EnableStudioResponse>, Status> {
        self.operator(&request)?;
        let studio_id = parse_id("studio_id", &request.into_inner().studio_id)?;
        let studio = self
            .gateway
            .catalog
            .set_studio_disabled(studio_id, false)
            .await?;
        let keys = self.gateway.catalog.list_keys(studio_id, false).await?;
        tracing::info!(%studio_id, "studio enabled");
        Ok(Response::new(pb::EnableStudioResponse {
            studio: Some(studio_to_pb(&studio, keys.len() as i64)),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        self.operator(&request)?;
        let pb::CreateApiKeyRequest {
            studio_id,
            label,
            scopes,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let scopes = scopes_from_pb(&scopes)?;
        let (key, secret) = self
            .gateway
            .catalog
            .create_key(studio_id, &label, &scopes)
            .await?;
        tracing::info!(%studio_id, key_id = %key.id, prefix = %key.prefix, "api key created");
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(key_to_pb(&key)),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        self.operator(&request)?;
        let pb::ListApiKeysRequest {
            studio_id,
            include_revoked,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let keys = self
            .gateway
            .catalog
            .list_keys(studio_id, include_revoked)
            .await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: keys.iter().map(key_to_pb).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        self.operator(&request)?;
        let key_id = parse_id("key_id", &request.into_inner().key_id)?;
        let key = self
            .gateway
            .catalog
            .revoke_key(key_id, crate::catalog::now())
            .await?;
        tracing::warn!(%key_id, prefix = %key.prefix, "api key revoked");
        Ok(Response::new(pb::RevokeApiKeyResponse {
            key: Some(key_to_pb(&key)),
        }))
    }

    async fn rotate_api_key(
        &self,
        request: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::RotateApiKeyResponse>, Status> {
        self.operator(&request)?;
        let pb::RotateApiKeyRequest {
            key_id,
            grace_seconds,
        } = request.into_inner();
        let key_id = parse_id("key_id", &key_id)?;
        let (key, secret) = self
            .gateway
            .catalog
            .rotate_key(key_id, grace_seconds)
            .await?;
        tracing::info!(old = %key_id, new = %key.id, grace_seconds, "api key rotated");
        Ok(Response::new(pb::RotateApiKeyResponse {
            key: Some(key_to_pb(&key)),
            secret,
        }))
    }

    async fn retry_failed_photos(
        &self,
        request: Request<pb::RetryFailedPhotosRequest>,
    ) -> Result<Response<pb::RetryFailedPhotosResponse>, Status> {
        self.operator(&request)?;
        let pb::RetryFailedPhotosRequest {
            studio_id,
            event_id,
            failure_code,
        } = request.into_inner();
        let optional = |field: &str, value: &str| -> Result<Option<uuid::Uuid>> {
            (!value.is_empty())
                .then(|| parse_id(field, value))
                .transpose()
        };
        let filter = crate::catalog::Redrive {
            studio_id: optional("studio_id", &studio_id)?,
            event_id: optional("event_id", &event_id)?,
            photo_id: None,
            failure_code: (!failure_code.is_empty()).then_some(failure_code),
        };
        let queued = self.gateway.redrive(&filter).await?;
        tracing::info!(
            photos = queued.len(),
            ?filter,
            "operator queued failed photos again"
        );
        Ok(Response::new(pb::RetryFailedPhotosResponse {
            photos_requeued: queued.len() as u64,
        }))
    }
}
