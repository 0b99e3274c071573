//! TLS by configuration (issue 15, point 6), on the five real binaries with
//! a test CA: the gateway's public gRPC and its HTTP over TLS, every service
//! behind mutual TLS. A photo travels the whole pipeline (gateway and
//! indexer calling detector, embedder and search over mutual TLS) and is
//! found by a selfie; plain text, a client without a certificate, and a
//! client trusting another CA are all refused.

use std::process::Command;
use std::time::Duration;

use facepass_integration_tests::certs::TestCa;
use facepass_integration_tests::gateway::{
    client_over, create_event, search_selfie, upload, wait_indexed,
};
use facepass_integration_tests::{Cluster, ClusterOptions};
use facepass_synth::{event_photo, selfie};
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// `curl` over HTTPS: (exit code, body).
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_speaks_tls_and_services_authenticate_each_other() {
    let cluster = Cluster::start_with(ClusterOptions {
        tls: true,
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster over tls");
    let ca = cluster.tls.clone().unwrap();
    assert!(cluster.gateway_grpc.starts_with("https://"));

    // A studio over TLS (no client certificate: the API key is its credential).
    let (_studio, key) = cluster.create_studio("TLS").unwrap();
    let channel = Channel::from_shared(cluster.gateway_grpc.clone())
        .unwrap()
        .tls_config(ca.client(false).unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut api = client_over(channel, Some(&key)).unwrap();
    let event = create_event(&mut api, "Over TLS").await;
    for i in 0..3 {
        let photo = event_photo(1300 + i, 1200, 900, &[1 + i as u8], (100, 150)).jpeg(85);
        upload(&mut api, &event.id, &format!("t-{i}"), photo).await;
    }
    // Indexed: the indexer reached detector, embedder and search over
    // mutual TLS, and the gateway's outcome consumer the search service.
    let done = wait_indexed(&mut api, &event.id, 3, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!((done.photos_indexed, done.faces_total), (3, 3));
    // A selfie search: the gateway called detector, embedder and search.
    let found = search_selfie(&mut api, &event.id, selfie(5, 2).jpeg(90)).await;
    assert_eq!(found.matches.len(), 1, "{found:?}");

    // Probes: kubelet's gRPC probes cannot speak TLS, so each service's
    // readiness is also on its plain-HTTP metrics port (k8s/components/tls).
    for (name, addr) in &cluster.metrics {
        let (code, body) = curl(&[&format!("http://{addr}/readyz")]);
        assert_eq!((code, body.as_str()), (0, "ready\n"), "{name}'s /readyz");
        let (code, body) = curl(&[&format!("http://{addr}/livez")]);
        assert_eq!((code, body.as_str()), (0, "ok\n"), "{name}'s /livez");
    }

    // An internal service refuses plain text ...
    let detector = cluster.url("detector");
    let port = detector.rsplit(':').next().unwrap();
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    match plain {
        Err(_) => {}
        Ok(channel) => assert!(health(channel).await.is_err(), "plain text answered"),
    }
    // ... a caller without a client certificate ...
    let no_identity = Channel::from_shared(detector.clone())
        .unwrap()
        .tls_config(ca.client(false).unwrap())
        .unwrap()
        .connect()
        .await;
    match no_identity {
        Err(_) => {}
        Ok(channel) => assert!(
            health(channel).await.is_err(),
            "the detector answered a caller without a certificate"
        ),
    }
    // ... and answers one with a certificate of its CA.
    let with_identity = Channel::from_shared(detector.clone())
        .unwrap()
        .tls_config(ca.client(true).unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(health(with_identity).await.unwrap(), 1, "SERVING");

    // A client that trusts another CA does not accept the gateway.
    let rogue = TestCa::create(&cluster.dir.path().join("rogue"), "rogue").unwrap();
    let fooled = Channel::from_shared(cluster.gateway_grpc.clone())
        .unwrap()
        .tls_config(rogue.client(false).unwrap())
        .unwrap()
        .connect()
        .await;
    assert!(fooled.is_err(), "a certificate of another CA was accepted");

    // HTTPS for the REST API and web app.
    let ca_file = ca.ca.display().to_string();
    let (code, body) = curl(&[
        "--cacert",
        &ca_file,
        &format!("{}/healthz", cluster.gateway_http),
    ]);
    assert_eq!((code, body.as_str()), (0, "ok"));
    let (code, body) = curl(&[
        "--cacert",
        &ca_file,
        "-H",
        &format!("authorization: Bearer {key}"),
        &format!("{}/api/v1/events/{}", cluster.gateway_http, event.id),
    ]);
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("\"name\":\"Over TLS\""), "{body}");
    // Not without trusting the CA, and not in plain text.
    let (code, _) = curl(&[&format!("{}/healthz", cluster.gateway_http)]);
    assert_ne!(code, 0, "curl accepted the test certificate without its CA");
    let plain_http = cluster
        .gateway_http
        .replace("https://localhost", "http://127.0.0.1");
    let (code, body) = curl(&[&format!("{plain_http}/healthz")]);
    assert!(code != 0 || body != "ok", "plain HTTP answered: {body}");
    cluster.clean_broker().await;
}
