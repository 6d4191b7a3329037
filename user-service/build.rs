//! Generates the gRPC server and client from the repository's single proto
//! file (`../proto/user_service.proto`). `protoc` comes from the
//! `protoc-bin-vendored` crate, so no system installation is needed.

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("..").join("proto");
    let proto = proto_dir.join("user_service.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    // sqlx::migrate! embeds these at compile time but cannot ask Cargo to
    // rebuild when one is added or changed.
    println!("cargo:rerun-if-changed=migrations");

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_with_config(config, &[proto], &[proto_dir])?;
    Ok(())
}
