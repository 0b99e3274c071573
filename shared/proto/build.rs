//! Compiles every contract in the repository's proto/ folder. `protoc` comes
//! from the `protoc-bin-vendored` crate, so a build needs no system package.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "facepass/types/v1/types.proto",
    "facepass/v1/facepass.proto",
    "facepass/admin/v1/admin.proto",
    "facepass/detector/v1/detector.proto",
    "facepass/embedder/v1/embedder.proto",
    "facepass/search/v1/search.proto",
    "facepass/events/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto").canonicalize()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    // SAFETY: build scripts are single-threaded; this only points prost-build at protoc.
    unsafe {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    let well_known = protoc_bin_vendored::include_path()?;

    let files: Vec<PathBuf> = PROTOS.iter().map(|p| proto_root.join(p)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    // Every message implements `prost::Name`, so code names a message type
    // (the AMQP `type` property, for one) from the message itself.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("facepass_descriptor.bin"))
        // Images and crops are `bytes::Bytes`: handed on without copying.
        .bytes(".")
        .compile_with_config(config, &files, &[proto_root, well_known])?;
    Ok(())
}
