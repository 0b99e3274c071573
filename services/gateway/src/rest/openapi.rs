//! The OpenAPI 3.1 document of the REST API, built from the routes
//! themselves (`#[utoipa::path]` on each handler, collected by
//! `utoipa_axum::routes!` as the router is built) and served at
//! `/api/v1/openapi.json`, with a browsable page at `/api/v1/docs` that
//! loads nothing from outside (Swagger UI, compiled into the binary).

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _, ToSchema};

use super::model::{ErrorBody, ImageSize, PhotoStatus, TiersName};

/// The bearer credential every studio operation takes.
pub const API_KEY: &str = "api_key";

/// Statuses every operation may answer with the error body, besides its own.
const COMMON_ERRORS: [(&str, &str); 4] = [
    (
        "400",
        "INVALID_ARGUMENT: the request is malformed (`field` names the culprit)",
    ),
    (
        "429",
        "OVERLOADED: too many requests in flight; retry later",
    ),
    (
        "503",
        "UNAVAILABLE: a dependency does not answer; retry later",
    ),
    ("504", "TIMEOUT: the request ran past its deadline"),
];

/// Statuses of an operation that takes the studio's API key.
const AUTH_ERRORS: [(&str, &str); 2] = [
    ("401", "UNAUTHENTICATED: no API key, or not a valid one"),
    (
        "403",
        "PERMISSION_DENIED: the key lacks the scope, or the studio is disabled",
    ),
];

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "FacePass REST API",
        description = "Face search for photo studios: events, photos, selfie searches and \
            the guest's share link. Studios authenticate with an API key \
            (`Authorization: Bearer fp_...`, scopes read/upload/search/admin); guests \
            reach one event through its share token. Every error is \
            `{\"error\": {\"code\", \"message\", \"field\"?, \"details\"?}}` with the \
            HTTP status of its code (docs/errors.md). The gRPC API (facepass.v1) \
            offers the same operations.",
        license(name = "MIT", identifier = "MIT"),
    ),
    tags(
        (name = "events", description = "A studio's events"),
        (name = "photos", description = "Uploading, registering and listing photos"),
        (name = "faces", description = "Indexed faces and searches"),
        (name = "privacy", description = "Forget-me, share links, retention and the audit log"),
        (name = "webhooks", description = "Notifications to the studio's endpoints (docs/webhooks.md)"),
        (name = "guest", description = "The guest's share link: no API key, the token is the key"),
        (name = "studio", description = "The studio's name, accent colour, logo and privacy link, shown to its guests"),
        (name = "session", description = "The studio dashboard's sign-in: an API key for an HttpOnly session cookie; changing requests then carry X-CSRF-Token"),
    ),
    // Schemas only query parameters name (the routes' bodies and answers
    // bring theirs along).
    components(schemas(ErrorBody, ImageSize, PhotoStatus, TiersName)),
    modifiers(&Conventions),
)]
pub struct ApiDoc;

/// The document's shared parts: the API key scheme, the error responses of
/// every operation, and the gateway's version.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut OpenApi) {
        api.info.version = env!("CARGO_PKG_VERSION").to_string();
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fp_<prefix>_<secret>")
                    .description(Some(
                        "A studio API key (`facepass admin key create`); each \
                         operation names the scope it needs.",
                    ))
                    .build(),
            ),
        );
        let _ = ErrorBody::name();
        for item in api.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_errors(op);
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn add_errors(op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let responses = &mut op.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description).into());
    };
    for (status, description) in COMMON_ERRORS {
        add(status, description);
    }
    if secured {
        for (status, description) in AUTH_ERRORS {
            add(status, description);
        }
    }
    // Any other error status carries the same body.
    add("default", "An error: the status follows from `error.code`");
}

/// The document, from the routes `router` collected.
pub fn document(paths: OpenApi) -> OpenApi {
    let mut api = ApiDoc::openapi();
    api.merge(paths);
    Conventions.modify(&mut api);
    api
}

/// `GET /api/v1/openapi.json` and the browsable page at `/api/v1/docs/`.
/// The page is Swagger UI compiled into the binary; its Content-Security-
/// Policy lets the browser load nothing that is not the gateway's own (no
/// CDN, no fonts, no schema validator badge).
pub fn docs<S: Clone + Send + Sync + 'static>(api: OpenApi) -> axum::Router<S> {
    use utoipa_swagger_ui::{Config, SwaggerUi};
    let ui = SwaggerUi::new(DOCS_PATH).url(DOCUMENT_PATH, api).config(
        Config::default()
            .validator_url("none")
            .try_it_out_enabled(true)
            .display_request_duration(true)
            .persist_authorization(false),
    );
    axum::Router::from(ui).layer(axum::middleware::map_response(
        |mut response: axum::response::Response| async move {
            response.headers_mut().insert(
                axum::http::header::CONTENT_SECURITY_POLICY,
                axum::http::HeaderValue::from_static(DOCS_CSP),
            );
            response
        },
    ))
}

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";
/// Where the browsable page is.
pub const DOCS_PATH: &str = "/api/v1/docs";
/// Same-origin only; Swagger UI needs inline styles and data: images.
pub const DOCS_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";
