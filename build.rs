//! Generates the protobuf messages the filter speaks from `proto/` (the one
//! source of truth): the user service's API, the part of Envoy's
//! `GrpcService` that names the user service's cluster, and Envoy's
//! `verify_signature` messages. protoc comes from the protoc-bin-vendored
//! crate, so a fresh machine needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/user_service.proto",
        "proto/envoy_grpc_service.proto",
        "proto/verify_signature.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    prost_build::Config::new().compile_protos(&protos, &["proto"])?;
    Ok(())
}
