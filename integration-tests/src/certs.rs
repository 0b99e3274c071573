//! A throw-away certificate authority for TLS tests, made with the openssl
//! command: one CA, and one certificate for `localhost` and 127.0.0.1 that
//! every service uses as server and as client (mutual TLS).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// The PEM files of one test CA.
#[derive(Debug, Clone)]
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .context("running openssl")?;
    anyhow::ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl TestCa {
    /// A CA named `name` and a leaf certificate it signed, in `dir`.
    pub fn create(dir: &Path, name: &str) -> anyhow::Result<TestCa> {
        std::fs::create_dir_all(dir)?;
        let file = |f: &str| format!("{name}-{f}");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &file("ca.key"),
                "-out",
                &file("ca.pem"),
                "-subj",
                &format!("/CN=FacePass test CA {name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &file("key.pem"),
                "-out",
                &file("cert.csr"),
                "-subj",
                "/CN=localhost",
            ],
        )?;
        std::fs::write(
            dir.join(file("ext.cnf")),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
             extendedKeyUsage=serverAuth,clientAuth\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n",
        )?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &file("cert.csr"),
                "-CA",
                &file("ca.pem"),
                "-CAkey",
                &file("ca.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &file("cert.pem"),
                "-extfile",
                &file("ext.cnf"),
            ],
        )?;
        Ok(TestCa {
            ca: dir.join(file("ca.pem")),
            cert: dir.join(file("cert.pem")),
            key: dir.join(file("key.pem")),
        })
    }

    /// tonic's client TLS trusting this CA, presenting the leaf
    /// certificate when `with_identity`.
    pub fn client(&self, with_identity: bool) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut tls = ClientTlsConfig::new()
            .domain_name("localhost")
            .ca_certificate(Certificate::from_pem(std::fs::read(&self.ca)?));
        if with_identity {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(&self.cert)?,
                std::fs::read(&self.key)?,
            ));
        }
        Ok(tls)
    }
}
