//! TLS by configuration (rustls): a service serves gRPC (and the gateway
//! HTTP) over TLS when it is given a certificate and key, and requires its
//! callers' certificates when it is given a client CA (mutual TLS between
//! services). A peer whose URL is `https://` is reached over TLS, trusting
//! the CA it is configured with, presenting its own certificate when it has
//! one. Files are PEM; they are read at start-up (a rotated certificate is
//! picked up by restarting the pods, one at a time).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A server's TLS (`[grpc.tls]`, the gateway's `[http_tls]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTls {
    /// PEM certificate chain; with `key_path`, turns TLS on.
    pub cert_path: String,
    /// PEM private key.
    pub key_path: String,
    /// PEM CA bundle: callers must present a certificate it signed.
    pub client_ca_path: String,
}

/// How a peer is reached over TLS (`[<peer>.tls]`), for `https://` URLs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTls {
    /// PEM CA bundle the peer's certificate must chain to (the system's
    /// roots are not used: internal certificates come from your own CA).
    pub ca_path: String,
    /// This service's certificate and key, for peers that require one.
    pub cert_path: String,
    pub key_path: String,
}

fn read(path: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(Path::new(path)).with_context(|| format!("reading the {what} {path}"))
}

fn exists(path: &str, field: &str, problems: &mut Vec<String>) {
    if !path.is_empty() && !Path::new(path).is_file() {
        problems.push(format!("{field} {path:?} is not a readable file"));
    }
}

impl ServerTls {
    pub fn enabled(&self) -> bool {
        !self.cert_path.is_empty()
    }

    pub fn problems(&self, name: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.cert_path.is_empty() != self.key_path.is_empty() {
            problems.push(format!("{name}.cert_path and {name}.key_path go together"));
        }
        if !self.client_ca_path.is_empty() && !self.enabled() {
            problems.push(format!(
                "{name}.client_ca_path needs {name}.cert_path and key_path"
            ));
        }
        exists(&self.cert_path, &format!("{name}.cert_path"), &mut problems);
        exists(&self.key_path, &format!("{name}.key_path"), &mut problems);
        exists(
            &self.client_ca_path,
            &format!("{name}.client_ca_path"),
            &mut problems,
        );
        problems
    }

    /// tonic's server TLS, or `None` when TLS is off.
    pub fn tonic(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        if !self.enabled() {
            return Ok(None);
        }
        let identity = Identity::from_pem(
            read(&self.cert_path, "certificate")?,
            read(&self.key_path, "private key")?,
        );
        let mut config = ServerTlsConfig::new().identity(identity);
        if !self.client_ca_path.is_empty() {
            config = config.client_ca_root(Certificate::from_pem(read(
                &self.client_ca_path,
                "client CA",
            )?));
        }
        Ok(Some(config))
    }

    /// A rustls server config for HTTP/1.1 and HTTP/2 (the gateway's REST
    /// and web app), or `None` when TLS is off.
    pub fn rustls(&self) -> anyhow::Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        if !self.enabled() {
            return Ok(None);
        }
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&read(&self.cert_path, "certificate")?)
                .collect::<Result<_, _>>()
                .with_context(|| format!("parsing {}", self.cert_path))?;
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key_path, "private key")?)
            .with_context(|| format!("parsing {}", self.key_path))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?;
        let mut config = if self.client_ca_path.is_empty() {
            builder.with_no_client_auth().with_single_cert(certs, key)?
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(&read(&self.client_ca_path, "client CA")?) {
                roots.add(ca?)?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build()?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)?
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

impl ClientTls {
    pub fn problems(&self, name: &str, url: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if url.starts_with("https://") && self.ca_path.is_empty() {
            problems.push(format!(
                "{name}.url is https: set {name}.tls.ca_path to the CA of its certificate"
            ));
        }
        if self.cert_path.is_empty() != self.key_path.is_empty() {
            problems.push(format!(
                "{name}.tls.cert_path and {name}.tls.key_path go together"
            ));
        }
        exists(&self.ca_path, &format!("{name}.tls.ca_path"), &mut problems);
        exists(
            &self.cert_path,
            &format!("{name}.tls.cert_path"),
            &mut problems,
        );
        exists(
            &self.key_path,
            &format!("{name}.tls.key_path"),
            &mut problems,
        );
        problems
    }

    /// tonic's client TLS for a peer whose certificate names `domain`.
    pub fn tonic(&self, domain: &str) -> anyhow::Result<ClientTlsConfig> {
        let mut config = ClientTlsConfig::new()
            .domain_name(domain)
            .ca_certificate(Certificate::from_pem(read(&self.ca_path, "CA")?));
        if !self.cert_path.is_empty() {
            config = config.identity(Identity::from_pem(
                read(&self.cert_path, "certificate")?,
                read(&self.key_path, "private key")?,
            ));
        }
        Ok(config)
    }
}
