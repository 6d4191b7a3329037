//! Generates the user service's protobuf messages from `proto/` (the one
//! source of truth). protoc comes from the protoc-bin-vendored crate, so a
//! fresh machine needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/user_service.proto";
    println!("cargo:rerun-if-changed={proto}");
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    prost_build::Config::new().compile_protos(&[proto], &["proto"])?;

    // Envoy's messages for its native `verify_signature` (src/verify.rs).
    let envoy_verify = "proto/verify_signature.proto";
    println!("cargo:rerun-if-changed={envoy_verify}");
    prost_build::Config::new().compile_protos(&[envoy_verify], &["proto"])?;
    Ok(())
}
