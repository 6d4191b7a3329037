//! The `upstream` argument of Envoy's wasm gRPC call.
//!
//! Envoy reads that argument as a serialized `envoy.config.core.v3.GrpcService`
//! first and treats it as a bare cluster name only when the parse fails. Which
//! names parse is an accident of the wire format: `users` reads as field 14
//! with a 32-bit value, a `GrpcService` with no target, and Envoy 1.40 aborts
//! on it. So the filter always sends a `GrpcService` naming the cluster.

/// Generated from `proto/envoy_grpc_service.proto`.
pub mod pb {
    #![allow(clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    include!(concat!(env!("OUT_DIR"), "/envoy.config.core.v3.rs"));
}

/// The SDK's `dispatch_grpc_call` takes the argument as `&str`, so the
/// encoding must be UTF-8: every length prefix must fit one varint byte
/// (< 128). The outer prefix counts the inner message: a tag and a length
/// byte for the cluster name, two more for an authority.
pub const MAX_CLUSTER_LEN: usize = 127 - 2;
pub const MAX_CLUSTER_AND_AUTHORITY_LEN: usize = 127 - 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "too long for Envoy's gRPC call ({cluster} bytes of cluster name, {authority} of authority): \
     at most {MAX_CLUSTER_LEN} bytes for a cluster name alone, {MAX_CLUSTER_AND_AUTHORITY_LEN} \
     for a cluster name and an authority together"
)]
pub struct UpstreamTooLong {
    pub cluster: usize,
    pub authority: usize,
}

/// Whether `text` can be an HTTP/2 `:authority` (RFC 3986 host and port
/// characters). Envoy's gRPC client sends the cluster name there when no
/// authority is set, and the codec refuses a stream with anything else.
pub fn is_valid_authority(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@[]%".contains(&b))
}

/// A cluster name that cannot be an `:authority` and is not one of Istio's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cluster name {0:?} is not a valid :authority (Envoy sends it as one when no authority is set); set `authority`"
)]
pub struct NeedsAuthority(pub String);

/// The `:authority` for calls to `cluster` when none is configured: none
/// (Envoy then uses the cluster name) when the name is a valid authority;
/// `host:port` for Istio's `outbound|<port>|<subset>|<host>` names, whose `|`
/// no HTTP/2 peer accepts; an error otherwise.
pub fn default_authority(cluster: &str) -> Result<Option<String>, NeedsAuthority> {
    if is_valid_authority(cluster) {
        return Ok(None);
    }
    let parts: Vec<&str> = cluster.split('|').collect();
    match parts.as_slice() {
        ["outbound", port, _subset, host]
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && is_valid_authority(host) =>
        {
            Ok(Some(format!("{host}:{port}")))
        }
        _ => Err(NeedsAuthority(cluster.to_owned())),
    }
}

/// The serialized `GrpcService` that names `cluster` (and `authority`).
pub fn encode(cluster: &str, authority: Option<&str>) -> Result<String, UpstreamTooLong> {
    let authority = authority.unwrap_or_default();
    let message = pb::GrpcService {
        target_specifier: Some(pb::grpc_service::TargetSpecifier::EnvoyGrpc(
            pb::grpc_service::EnvoyGrpc {
                cluster_name: cluster.to_owned(),
                authority: authority.to_owned(),
            },
        )),
    };
    let bytes = prost::Message::encode_to_vec(&message);
    String::from_utf8(bytes).map_err(|_| UpstreamTooLong {
        cluster: cluster.len(),
        authority: authority.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(upstream: &str) -> pb::grpc_service::EnvoyGrpc {
        let service = <pb::GrpcService as prost::Message>::decode(upstream.as_bytes()).unwrap();
        match service.target_specifier {
            Some(pb::grpc_service::TargetSpecifier::EnvoyGrpc(target)) => target,
            None => panic!("no target in {upstream:?}"),
        }
    }

    #[test]
    fn names_that_crashed_envoy_are_sent_as_a_grpc_service() {
        for name in ["users", "alb_oidc_users", "us_pg", "us_db"] {
            let upstream = encode(name, None).unwrap();
            assert_ne!(upstream, name);
            assert_eq!(decode(&upstream).cluster_name, name);
            assert_eq!(decode(&upstream).authority, "");
        }
    }

    #[test]
    fn the_wire_bytes_are_envoys_field_numbers() {
        // GrpcService.envoy_grpc (1, LEN 7) { cluster_name (1, LEN 5) "users" }
        assert_eq!(
            encode("users", None).unwrap().as_bytes(),
            b"\x0a\x07\x0a\x05users"
        );
        // ... with authority (2, LEN 1) "h"
        assert_eq!(
            encode("users", Some("h")).unwrap().as_bytes(),
            b"\x0a\x0a\x0a\x05users\x12\x01h"
        );
    }

    #[test]
    fn the_longest_names_that_fit_and_the_first_that_does_not() {
        let fits = "c".repeat(125);
        assert_eq!(decode(&encode(&fits, None).unwrap()).cluster_name, fits);
        assert_eq!(
            encode(&"c".repeat(126), None),
            Err(UpstreamTooLong {
                cluster: 126,
                authority: 0
            })
        );
        let cluster = "c".repeat(100);
        let fits = encode(&cluster, Some(&"a".repeat(23))).unwrap();
        assert_eq!(decode(&fits).authority, "a".repeat(23));
        assert_eq!(
            encode(&cluster, Some(&"a".repeat(24))),
            Err(UpstreamTooLong {
                cluster: 100,
                authority: 24
            })
        );
    }

    #[test]
    fn istio_cluster_names_get_their_host_as_authority() {
        assert_eq!(
            default_authority("outbound|50051||users.ns.svc.cluster.local"),
            Ok(Some("users.ns.svc.cluster.local:50051".to_owned()))
        );
        assert_eq!(
            default_authority("outbound|50051|v2|users.ns.svc.cluster.local"),
            Ok(Some("users.ns.svc.cluster.local:50051".to_owned()))
        );
        for plain in ["users", "alb_oidc_users", "user-service.local:50051"] {
            assert_eq!(default_authority(plain), Ok(None), "{plain}");
        }
        for bad in [
            "inbound|50051||x",
            "outbound|port||x",
            "a b",
            "outbound|50051||",
        ] {
            assert!(default_authority(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_cluster_name_decodes_to_exactly_that_cluster(
            cluster in "\\PC{1,20}",
            authority in proptest::option::of("[a-z0-9.:-]{1,40}"),
        ) {
            let upstream = encode(&cluster, authority.as_deref()).unwrap();
            let target = decode(&upstream);
            prop_assert_eq!(target.cluster_name, cluster);
            prop_assert_eq!(target.authority, authority.unwrap_or_default());
        }
    }
}
