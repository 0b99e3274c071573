//! Per-service credentials (issue 15, point 6), on the five real binaries:
//! the gateway and the indexer each present their own internal token; the
//! detector, embedder and search know whose token is whose and let each
//! caller call only the RPCs it needs. A caller's token rotates without a
//! moment where the caller and the called service disagree: the called
//! services accept the new token beside the old, the caller switches, the
//! old one is dropped. The key that seals the guest links' tokens at rest
//! rotates the same way, and the links keep working.

use std::time::Duration;

use facepass_integration_tests::gateway::{
    client, create_event, search_selfie, upload, wait_indexed,
};
use facepass_integration_tests::{wait_serving, Cluster};
use facepass_proto::detector::v1 as det;
use facepass_proto::search::v1 as srch;
use facepass_synth::{event_photo, selfie};
use tonic::transport::Channel;
use tonic::{Code, Request};

/// Adds a bearer token (or none) to each call.
type WithToken = Box<dyn FnMut(Request<()>) -> Result<Request<()>, tonic::Status> + Send>;

type Search = srch::search_service_client::SearchServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, WithToken>,
>;

fn with_token(token: Option<&str>) -> WithToken {
    let value: Option<tonic::metadata::MetadataValue<_>> =
        token.map(|t| format!("Bearer {t}").parse().unwrap());
    Box::new(move |mut r: Request<()>| {
        if let Some(value) = &value {
            r.metadata_mut().insert("authorization", value.clone());
        }
        Ok(r)
    })
}

fn search_as(cluster: &Cluster, token: Option<&str>) -> Search {
    let channel = Channel::from_shared(cluster.search_grpc.clone())
        .unwrap()
        .connect_lazy();
    srch::search_service_client::SearchServiceClient::with_interceptor(channel, with_token(token))
}

/// The code a call ended with (`Ok` for success).
fn code<T>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn stats(search: &mut Search, studio: &str, event: &str) -> Code {
    code(
        search
            .get_event_stats(srch::GetEventStatsRequest {
                studio_id: studio.into(),
                event_id: event.into(),
            })
            .await,
    )
}

async fn serving(cluster: &Cluster, names: &[&str]) {
    for name in names {
        wait_serving(&cluster.url(name), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{name} after its restart: {e}\n{}", cluster.logs()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_calls_only_what_it_needs_and_credentials_rotate_without_downtime() {
    let mut cluster = Cluster::start().await.expect("start the five services");
    let (studio, key) = cluster.create_studio("Auth").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();

    // The pipeline works with per-service tokens: the indexer wrote the
    // faces, the gateway searched them.
    let event = create_event(&mut api, "Per-service tokens").await;
    for i in 0..2u64 {
        let photo = event_photo(4100 + i, 1200, 900, &[1], (110, 150)).jpeg(85);
        upload(&mut api, &event.id, &format!("a-{i}"), photo).await;
    }
    wait_indexed(&mut api, &event.id, 2, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let found = search_selfie(&mut api, &event.id, selfie(3, 1).jpeg(90)).await;
    assert_eq!(found.matches.len(), 2, "{found:?}");

    // What each caller may do on search.
    let gateway_token = cluster.internal_token.clone();
    let indexer_token = cluster.indexer_token.clone();
    let mut as_gateway = search_as(&cluster, Some(&gateway_token));
    let mut as_indexer = search_as(&cluster, Some(&indexer_token));
    assert_eq!(stats(&mut as_gateway, &studio, &event.id).await, Code::Ok);
    assert_eq!(stats(&mut as_indexer, &studio, &event.id).await, Code::Ok);
    // The gateway cannot write faces ...
    let upsert = as_gateway
        .upsert_photo_faces(srch::UpsertPhotoFacesRequest::default())
        .await;
    assert_eq!(code(upsert), Code::PermissionDenied);
    // ... and the indexer can neither search, nor delete, nor "forget".
    let search = as_indexer
        .search_event(srch::SearchEventRequest::default())
        .await;
    assert_eq!(code(search), Code::PermissionDenied);
    let delete = as_indexer
        .delete_event_faces(srch::DeleteEventFacesRequest {
            studio_id: studio.clone(),
            event_id: event.id.clone(),
        })
        .await;
    assert_eq!(code(delete), Code::PermissionDenied);
    let forget = as_indexer
        .forget_faces(srch::ForgetFacesRequest::default())
        .await;
    assert_eq!(code(forget), Code::PermissionDenied);
    // The refused deletion deleted nothing.
    let found = search_selfie(&mut api, &event.id, selfie(4, 1).jpeg(90)).await;
    assert_eq!(found.matches.len(), 2, "{found:?}");
    // The indexer's permitted write reaches the handler (which then refuses
    // the empty request on its merits, not on the caller's).
    let upsert = as_indexer
        .upsert_photo_faces(srch::UpsertPhotoFacesRequest::default())
        .await;
    assert_eq!(code(upsert), Code::InvalidArgument);
    // No token, or one of nobody's, is UNAUTHENTICATED.
    let mut anonymous = search_as(&cluster, None);
    assert_eq!(
        stats(&mut anonymous, &studio, &event.id).await,
        Code::Unauthenticated
    );
    let mut stranger = search_as(&cluster, Some("s0000000000000000000000000000000"));
    assert_eq!(
        stats(&mut stranger, &studio, &event.id).await,
        Code::Unauthenticated
    );
    // The detector takes both callers' tokens (an empty image is refused on
    // its merits) and no one else's.
    for (token, expected) in [
        (Some(gateway_token.as_str()), Code::InvalidArgument),
        (Some(indexer_token.as_str()), Code::InvalidArgument),
        (None, Code::Unauthenticated),
    ] {
        let channel = Channel::from_shared(cluster.url("detector"))
            .unwrap()
            .connect_lazy();
        let mut detector = det::detector_service_client::DetectorServiceClient::with_interceptor(
            channel,
            with_token(token),
        );
        let result = detector.detect(det::DetectRequest::default()).await;
        assert_eq!(code(result), expected, "detector, token {token:?}");
    }

    // --- rotating the gateway's token, one step at a time -------------------
    let new_token = format!("n{}", uuid::Uuid::new_v4().simple());
    let both = format!("{new_token},{gateway_token}");
    // 1. The called services accept the new token beside the old one.
    for name in ["search", "detector", "embedder"] {
        cluster
            .restart_with(
                name,
                &[("FACEPASS_INTERNAL_CALLERS__GATEWAY", both.clone())],
            )
            .unwrap();
    }
    serving(&cluster, &["search", "detector", "embedder"]).await;
    // The gateway still presents the old token, and is still served.
    let found = search_selfie(&mut api, &event.id, selfie(5, 1).jpeg(90)).await;
    assert_eq!(found.matches.len(), 2, "step 1: {found:?}");
    let mut as_new = search_as(&cluster, Some(&new_token));
    let mut as_old = search_as(&cluster, Some(&gateway_token));
    assert_eq!(stats(&mut as_new, &studio, &event.id).await, Code::Ok);
    assert_eq!(stats(&mut as_old, &studio, &event.id).await, Code::Ok);
    // 2. The gateway switches to the new token.
    cluster
        .restart_with("gateway", &[("FACEPASS_INTERNAL_TOKEN", new_token.clone())])
        .unwrap();
    serving(&cluster, &["gateway"]).await;
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let found = search_selfie(&mut api, &event.id, selfie(6, 1).jpeg(90)).await;
    assert_eq!(found.matches.len(), 2, "step 2: {found:?}");
    // 3. The old token is dropped.
    for name in ["search", "detector", "embedder"] {
        cluster
            .restart_with(
                name,
                &[("FACEPASS_INTERNAL_CALLERS__GATEWAY", new_token.clone())],
            )
            .unwrap();
    }
    serving(&cluster, &["search", "detector", "embedder"]).await;
    let found = search_selfie(&mut api, &event.id, selfie(7, 1).jpeg(90)).await;
    assert_eq!(found.matches.len(), 2, "step 3: {found:?}");
    let mut as_old = search_as(&cluster, Some(&gateway_token));
    assert_eq!(
        stats(&mut as_old, &studio, &event.id).await,
        Code::Unauthenticated
    );
    // Indexing still works (the indexer's token was untouched).
    let photo = event_photo(4200, 1200, 900, &[1], (110, 150)).jpeg(85);
    upload(&mut api, &event.id, "after-rotation", photo).await;
    wait_indexed(&mut api, &event.id, 3, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // --- rotating the key that seals the guest links' tokens ----------------
    let link = format!(
        "{}/api/v1/guest/{}",
        cluster.gateway_http, event.share_token
    );
    let http = reqwest::Client::new();
    assert_eq!(http.get(&link).send().await.unwrap().status(), 200);
    let sealed = |cluster: &Cluster| {
        cluster
            .db
            .query_text(&format!(
                "SELECT share_token_sealed FROM catalog.events WHERE id = '{}'",
                event.id
            ))
            .unwrap()
    };
    let before = sealed(&cluster);
    assert!(before.starts_with("s1."), "{before}");
    let old_key = cluster.env["FACEPASS_SHARE_LINK_KEY"].clone();
    let new_key = format!("k{}", uuid::Uuid::new_v4().simple());
    // 1. The new key first, the old one beside it: the gateway seals every
    //    token again with the new key at start-up.
    cluster
        .restart_with(
            "gateway",
            &[("FACEPASS_SHARE_LINK_KEY", format!("{new_key},{old_key}"))],
        )
        .unwrap();
    serving(&cluster, &["gateway"]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sealed(&cluster) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the token was never sealed again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // 2. The old key goes: the link and the studio's view of it are unchanged.
    cluster
        .restart_with("gateway", &[("FACEPASS_SHARE_LINK_KEY", new_key)])
        .unwrap();
    serving(&cluster, &["gateway"]).await;
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let again = facepass_integration_tests::gateway::event(&mut api, &event.id).await;
    assert_eq!(again.share_token, event.share_token);
    assert_eq!(http.get(&link).send().await.unwrap().status(), 200);
}
