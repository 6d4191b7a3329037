//! Strict base64url, as JWS segments must be decoded.
//!
//! The ALB pads its segments with `=` and signs the padded text, while most
//! JWT producers do not pad. Both forms are accepted, but only in their
//! canonical shape: exact trailing padding or none at all. Everything else
//! (partial padding, padding in the middle, the `+`/`/` alphabet, whitespace,
//! non-zero trailing bits) is refused, so one token has exactly one accepted
//! spelling per padding style and no re-encoding trick slips past a check.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

const PADDED: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(false),
);

const UNPADDED: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes one JWS segment. `None` for anything that is not canonical
/// base64url (padded or unpadded).
pub fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    if segment.is_empty() {
        return None;
    }
    let engine = if segment.ends_with('=') {
        &PADDED
    } else {
        &UNPADDED
    };
    engine.decode(segment).ok()
}

/// Decodes canonical base64url without padding, the only form RFC 7515
/// allows in a JWS and RFC 7518 in a JWK (the IdP's access token and key
/// set; the ALB's own token is the padded exception). `None` for anything
/// else, padding included, and for the empty string.
pub fn decode_unpadded(segment: &str) -> Option<Vec<u8>> {
    if segment.is_empty() {
        return None;
    }
    UNPADDED.decode(segment).ok()
}

/// base64url without padding: the encoding of the `x-auth-claims` header.
pub fn encode_unpadded(bytes: &[u8]) -> String {
    UNPADDED.encode(bytes)
}

/// base64url with padding, as the ALB writes its segments.
pub fn encode_padded(bytes: &[u8]) -> String {
    PADDED.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_canonical_padded_and_unpadded() {
        assert_eq!(decode_segment("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_segment("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_segment("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(decode_segment("YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(decode_segment("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(decode_segment("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "", "YQ=", "YQ===", "Y===", "YW=I", "Y=Q=", "YWJj=", "+/8", "+/8=", "YW I", " YWI",
            "YWI\n", "YR", "YR==", "YWJ", "YWJ=", "Y", "Y=", "====",
        ] {
            assert_eq!(decode_segment(bad), None, "{bad:?} must be refused");
        }
    }

    #[test]
    fn unpadded_only_refuses_padding() {
        assert_eq!(decode_unpadded("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_unpadded("YWJj").as_deref(), Some(&b"abc"[..]));
        for bad in ["", "YQ==", "YWI=", "YR", "+/8", "YW I", "YWI\n"] {
            assert_eq!(decode_unpadded(bad), None, "{bad:?} must be refused");
        }
    }

    #[test]
    fn round_trips() {
        for len in 0..40u8 {
            let data: Vec<u8> = (0..len).collect();
            if len > 0 {
                assert_eq!(
                    decode_segment(&encode_padded(&data)).as_deref(),
                    Some(&data[..])
                );
                assert_eq!(
                    decode_segment(&encode_unpadded(&data)).as_deref(),
                    Some(&data[..])
                );
            }
        }
    }
}
