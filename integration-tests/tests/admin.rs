//! Studios, keys and share links (issue 12, item 6) on the real binaries:
//! the admin API behind the operator credential, keys stored hashed and
//! shown once with a prefix, scopes, last-used time, revocation, rotation
//! with a grace period, disabled studios, and share links that rotate,
//! expire and turn off with clear errors on the guest API and page. The
//! operator CLI (`facepass admin`) is run as a process.

use std::time::Duration;

use facepass_integration_tests::gateway::{client, error_code};
use facepass_integration_tests::Cluster;
use facepass_proto::admin::v1 as adm;
use facepass_proto::v1 as pb;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

async fn admin(
    cluster: &Cluster,
    token: &str,
) -> adm::admin_service_client::AdminServiceClient<
    tonic::service::interceptor::InterceptedService<
        Channel,
        impl FnMut(Request<()>) -> Result<Request<()>, tonic::Status>,
    >,
> {
    let channel = Channel::from_shared(cluster.gateway_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let header: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    adm::admin_service_client::AdminServiceClient::with_interceptor(
        channel,
        move |mut r: Request<()>| {
            r.metadata_mut().insert("authorization", header.clone());
            Ok(r)
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn studios_keys_and_share_links() {
    let cluster = Cluster::start().await.expect("cluster");

    // --- the operator credential ------------------------------------------
    let mut wrong = admin(&cluster, "not-the-operator-token").await;
    let err = wrong
        .list_studios(adm::ListStudiosRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut ops = admin(&cluster, &cluster.admin_token).await;

    // --- studios ---------------------------------------------------------------
    let created = ops
        .create_studio(adm::CreateStudioRequest {
            name: "Studio Alpha".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let studio = created.studio.unwrap();
    let first = created.key.unwrap();
    assert!(created.secret.starts_with("fp_"));
    assert_eq!(first.prefix, created.secret[..11]);
    assert_eq!(first.scopes.len(), 4, "the first key has every scope");
    // A studio API key is not the operator credential.
    let mut as_studio = admin(&cluster, &created.secret).await;
    assert_eq!(
        as_studio
            .list_studios(adm::ListStudiosRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // The key is stored hashed: its text is nowhere in the catalog.
    let dump = cluster
        .db
        .query_text("SELECT string_agg(k::text, '|') FROM catalog.api_keys k")
        .unwrap();
    assert!(!dump.contains(&created.secret), "the secret is stored");
    assert!(dump.contains(&first.prefix));

    // --- scopes -----------------------------------------------------------------
    let read_only = ops
        .create_api_key(adm::CreateApiKeyRequest {
            studio_id: studio.id.clone(),
            label: "gallery".into(),
            scopes: vec![adm::Scope::Read as i32],
        })
        .await
        .unwrap()
        .into_inner();
    let mut full = client(&cluster.gateway_grpc, Some(&created.secret))
        .await
        .unwrap();
    let mut reader = client(&cluster.gateway_grpc, Some(&read_only.secret))
        .await
        .unwrap();
    let event = full
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "Gala".into(),
            external_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert!(event.share_enabled);
    reader
        .get_event(pb::GetEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap();
    let err = reader
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "Nope".into(),
            external_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("upload scope"), "{}", err.message());
    let err = reader
        .rotate_share_link(pb::RotateShareLinkRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let http = reqwest::Client::new();
    let rest = http
        .post(format!("{}/api/v1/events", cluster.gateway_http))
        .bearer_auth(&read_only.secret)
        .json(&serde_json::json!({"name": "Nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 403);

    // --- last used, listing, revoking -------------------------------------------
    let keys = ops
        .list_api_keys(adm::ListApiKeysRequest {
            studio_id: studio.id.clone(),
            include_revoked: false,
        })
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 2);
    let gallery = keys.iter().find(|k| k.label == "gallery").unwrap();
    assert!(gallery.last_used_at.is_some(), "used above");
    ops.revoke_api_key(adm::RevokeApiKeyRequest {
        key_id: gallery.id.clone(),
    })
    .await
    .unwrap();
    let err = reader
        .get_event(pb::GetEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // --- rotation with a grace period ----------------------------------------
    let rotated = ops
        .rotate_api_key(adm::RotateApiKeyRequest {
            key_id: first.id.clone(),
            grace_seconds: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.secret, created.secret);
    assert_eq!(rotated.key.as_ref().unwrap().scopes.len(), 4);
    // The old key still works during the grace period, then stops.
    full.get_event(pb::GetEventRequest {
        event_id: event.id.clone(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let err = full
        .get_event(pb::GetEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut api = client(&cluster.gateway_grpc, Some(&rotated.secret))
        .await
        .unwrap();

    // --- share links: rotate, expire, turn off --------------------------------
    let guest = |token: &str| format!("{}/api/v1/guest/{token}", cluster.gateway_http);
    assert_eq!(
        http.get(guest(&event.share_token))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let moved = api
        .rotate_share_link(pb::RotateShareLinkRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert_ne!(moved.share_token, event.share_token);
    assert_eq!(
        http.get(guest(&event.share_token))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http.get(guest(&moved.share_token))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let past = facepass_proto::prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    };
    let expired = api
        .update_share_link(pb::UpdateShareLinkRequest {
            event_id: event.id.clone(),
            enabled: true,
            expires_at: Some(past),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert_eq!(expired.share_expires_at, Some(past));
    let answer = http.get(guest(&moved.share_token)).send().await.unwrap();
    assert_eq!(answer.status(), 410);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "LINK_EXPIRED");
    // The search and the photo downloads answer the same.
    let search = http
        .post(format!("{}/search", guest(&moved.share_token)))
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 410);

    api.update_share_link(pb::UpdateShareLinkRequest {
        event_id: event.id.clone(),
        enabled: false,
        expires_at: None,
    })
    .await
    .unwrap();
    let answer = http.get(guest(&moved.share_token)).send().await.unwrap();
    assert_eq!(answer.status(), 410);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "LINK_DISABLED");
    let shown = api
        .update_share_link(pb::UpdateShareLinkRequest {
            event_id: event.id.clone(),
            enabled: true,
            expires_at: None,
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert!(shown.share_enabled && shown.share_expires_at.is_none());
    assert_eq!(
        http.get(guest(&moved.share_token))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // --- a disabled studio ------------------------------------------------------
    ops.disable_studio(adm::DisableStudioRequest {
        studio_id: studio.id.clone(),
    })
    .await
    .unwrap();
    let err = api
        .get_event(pb::GetEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(error_code(&err), "PERMISSION_DENIED");
    let body: serde_json::Value = http
        .get(guest(&moved.share_token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], "LINK_DISABLED");
    ops.enable_studio(adm::EnableStudioRequest {
        studio_id: studio.id.clone(),
    })
    .await
    .unwrap();
    api.get_event(pb::GetEventRequest {
        event_id: event.id.clone(),
    })
    .await
    .unwrap();

    // --- the operator CLI -----------------------------------------------------
    let (ok, out) = cluster.admin_cli(&["studio", "create", "--name", "Studio Beta"]);
    assert!(ok, "{out}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("api key (shown only now, keep it safe): "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let mut beta = client(&cluster.gateway_grpc, Some(&secret)).await.unwrap();
    beta.list_events(pb::ListEventsRequest::default())
        .await
        .unwrap();
    let (ok, out) = cluster.admin_cli(&["studio", "list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Studio Alpha") && out.contains("Studio Beta"),
        "{out}"
    );
    let (ok, out) = cluster.admin_cli(&[
        "key", "create", &studio.id, "--label", "uploader", "--scopes", "upload",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("uploader") && out.contains("upload"), "{out}");
    let (ok, out) = cluster.admin_cli(&["key", "create", &studio.id, "--scopes", "write"]);
    assert!(!ok && out.contains("unknown scope"), "{out}");
    let (ok, out) = cluster.admin_cli(&["key", "list", &studio.id, "--all"]);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().count(),
        4,
        "initial, gallery, rotated, uploader:\n{out}"
    );
    let no_token =
        std::process::Command::new(facepass_integration_tests::binary("facepass").unwrap())
            .args([
                "admin",
                "--gateway",
                &cluster.gateway_grpc,
                "studio",
                "list",
            ])
            .env_remove("FACEPASS_ADMIN_TOKEN")
            .output()
            .unwrap();
    assert!(!no_token.status.success());
}
