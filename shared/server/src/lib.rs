//! The runtime every FacePass service shares: structured logging, the gRPC
//! server bootstrap (one commented tower stack, health, reflection, graceful
//! shutdown), honest health reporting, internal auth and client channels.

pub mod auth;
pub mod balance;
pub mod client;
pub mod grpc;
pub mod health;
pub mod main_support;
pub mod metrics;
pub mod shutdown;
pub mod storage;
pub mod supervise;
pub mod telemetry;
pub mod tls;

pub use grpc::{GrpcServer, GrpcServerConfig};
pub use shutdown::Shutdown;
