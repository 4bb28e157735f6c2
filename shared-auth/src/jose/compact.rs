//! The compact serialization of a JWS (RFC 7515 section 7.1): three base64url parts
//! separated by dots. Split once, each part decoded strictly (no padding, no other
//! alphabet, trailing bits zero), small parts on the stack.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::JoseError;

/// Header and signature bytes are decoded into a buffer of this size on the stack (an
/// RSA-8192 signature is 1,024 bytes); a larger part goes to the heap.
pub(crate) const STACK_PART: usize = 1024;

/// A compact JWS split into its parts, nothing decoded yet.
#[derive(Clone, Copy)]
pub(crate) struct Compact<'a> {
    /// `header.payload`: what the signature covers.
    pub(crate) signing_input: &'a str,
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> Compact<'a> {
    /// Exactly three parts; the base64url of each is checked when it is decoded.
    pub(crate) fn split(jws: &'a str) -> Result<Self, JoseError> {
        let (signing_input, signature) = jws.rsplit_once('.').ok_or(JoseError::Shape)?;
        let (header, payload) = signing_input.split_once('.').ok_or(JoseError::Shape)?;
        if payload.contains('.') {
            return Err(JoseError::Shape);
        }
        Ok(Compact {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// The header of a token, without splitting the rest (the fast path reads the header
    /// first, and the rest only once a key is found).
    pub(crate) fn header_part(jws: &'a str) -> Result<&'a str, JoseError> {
        jws.split_once('.')
            .map(|(header, _)| header)
            .ok_or(JoseError::Shape)
    }
}

/// One base64url part, decoded into `buffer` when it fits.
pub(crate) fn decode_part<'b>(
    part: &str,
    buffer: &'b mut [u8; STACK_PART],
) -> Result<Cow<'b, [u8]>, JoseError> {
    if base64::decoded_len_estimate(part.len()) <= buffer.len() {
        let len = URL_SAFE_NO_PAD
            .decode_slice(part, buffer)
            .map_err(|_| JoseError::Base64)?;
        Ok(Cow::Borrowed(&buffer[..len]))
    } else {
        decode(part).map(Cow::Owned)
    }
}

/// One base64url part, on the heap.
pub(crate) fn decode(part: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JoseError::Base64)
}

/// base64url without padding.
pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `bytes` random bytes from the OS generator, base64url: the unguessable values of this
/// crate (session and login ids, PKCE verifiers, `state`, `nonce`, lock owners). The
/// generator does not fail on a supported platform.
pub(crate) fn random(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    let _ = aws_lc_rs::rand::fill(&mut buffer);
    encode(&buffer)
}

/// base64url without padding, appended to `out`.
pub(crate) fn encode_into(bytes: impl AsRef<[u8]>, out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Whether `token` has the shape of a compact JWS: three parts whose first decodes to
/// what opens a JSON object (an opaque token, with introspection on, is anything else).
/// Only the shape: whether the header is a *valid* one is the JWT path's to refuse, so a
/// broken JWS is refused as malformed rather than sent to the introspection endpoint.
pub(crate) fn is_compact_jws(token: &str) -> bool {
    let Ok(parts) = Compact::split(token) else {
        return false;
    };
    let mut buffer = [0u8; STACK_PART];
    decode_part(parts.header, &mut buffer).is_ok_and(|bytes| {
        bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_parts_exactly() {
        assert!(Compact::split("a.b.c").is_ok());
        let parts = Compact::split("h.p.s").unwrap();
        assert_eq!(
            (
                parts.signing_input,
                parts.header,
                parts.payload,
                parts.signature
            ),
            ("h.p", "h", "p", "s")
        );
        for bad in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e"] {
            assert!(Compact::split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64url_is_strict() {
        let mut buffer = [0u8; STACK_PART];
        assert_eq!(&*decode_part("eyJ9", &mut buffer).unwrap(), b"{\"}");
        for bad in ["eyJ9=", "ey+9", "ey/9", "e", "eyJ9 "] {
            assert!(decode_part(bad, &mut buffer).is_err(), "{bad}");
        }
        let long = encode(vec![7u8; 3000]);
        assert_eq!(decode_part(&long, &mut buffer).unwrap().len(), 3000);
    }

    #[test]
    fn only_compact_jws_shapes_are_jws() {
        let header = encode(r#"{"alg":"RS256"}"#);
        assert!(is_compact_jws(&format!("{header}.e30.c2ln")));
        assert!(!is_compact_jws("opaque-token"));
        assert!(!is_compact_jws("a.b.c"));
        let array = encode("[1]");
        assert!(!is_compact_jws(&format!("{array}.e30.c2ln")));
        let broken = encode(r#" {"alg":"#);
        assert!(
            is_compact_jws(&format!("{broken}.e30.c2ln")),
            "refused later"
        );
        assert!(!is_compact_jws(&format!("{header}.e30.c2ln.x")));
    }
}
