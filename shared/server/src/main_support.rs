//! The few lines every service's `main` shares: load and validate the
//! configuration (exit code 2 with a clear message when it is wrong), bind
//! the gRPC listener, and turn the outcome into an exit code.

use std::path::Path;
use std::process::ExitCode;

use facepass_core::config::Validate;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{GrpcServer, GrpcServerConfig};

/// Loads `T` from its defaults, `file` and the process's `FACEPASS_*`
/// variables; on error prints it and returns exit code 2.
pub fn load_config<T>(binary: &str, file: Option<&Path>) -> Result<T, ExitCode>
where
    T: Default + Serialize + DeserializeOwned + Validate,
{
    facepass_core::config::load(file, &facepass_core::config::process_env()).map_err(|e| {
        eprintln!("{binary}: {e}");
        ExitCode::from(2)
    })
}

/// Binds the gRPC listener, naming the address when that fails.
pub async fn bind(config: &GrpcServerConfig) -> anyhow::Result<GrpcServer> {
    GrpcServer::bind(config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))
}

/// Logs and prints a failure; exit code 1 on error, 0 otherwise.
pub fn exit(binary: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "{binary} failed");
            eprintln!("{binary}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
