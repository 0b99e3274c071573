//! Every FacePass contract (proto/): the generated bindings, the hand-written
//! domain types with their conversions ([`domain`]), and the encoded file
//! descriptor set that the services hand to gRPC reflection.
//!
//! Services never depend on each other's crates: this crate is the only thing
//! they share about one another. Generated messages implement `prost::Name`
//! (their full protobuf name) and carry `bytes` fields as `bytes::Bytes`.

pub mod domain;

/// Types shared by every contract: `facepass.types.v1`.
pub mod types {
    pub mod v1 {
        tonic::include_proto!("facepass.types.v1");
    }
}

/// Public API for Pixora: `facepass.v1`.
pub mod v1 {
    tonic::include_proto!("facepass.v1");
}

/// Operator API (studios and keys): `facepass.admin.v1`.
pub mod admin {
    pub mod v1 {
        tonic::include_proto!("facepass.admin.v1");
    }
}

/// Internal detector contract: `facepass.detector.v1`.
pub mod detector {
    pub mod v1 {
        tonic::include_proto!("facepass.detector.v1");
    }
}

/// Internal embedder contract: `facepass.embedder.v1`.
pub mod embedder {
    pub mod v1 {
        tonic::include_proto!("facepass.embedder.v1");
    }
}

/// Internal face store contract: `facepass.search.v1`.
pub mod search {
    pub mod v1 {
        tonic::include_proto!("facepass.search.v1");
    }
}

/// Messages carried by RabbitMQ: `facepass.events.v1`.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("facepass.events.v1");
    }
}

/// Encoded `FileDescriptorSet` of every contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("facepass_descriptor");

pub use bytes;
pub use prost;
pub use prost_types;
