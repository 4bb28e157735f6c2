//! JWK to verifying key, and the RFC 7638 thumbprint: one path for the issuer's published
//! keys (JWKS) and the keys in DPoP proofs.
//!
//! A key is parsed once, for each algorithm it may verify, into an aws-lc-rs
//! `ParsedPublicKey`, so a verification decodes no base64 and builds no key.

use aws_lc_rs::signature::{self as sig, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::algorithm::{Family, SignatureAlgorithm};
use super::json::{Jwk, text};

/// How strictly a key's base64url members are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base64 {
    /// As RFC 7515 writes them: no padding. A DPoP proof's key.
    Strict,
    /// Trailing `=` tolerated: some issuers pad the members of their published keys.
    Padded,
}

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;

/// A verifying key: parsed once, for each algorithm it may verify.
pub(crate) struct VerifyKey {
    parsed: Vec<(SignatureAlgorithm, ParsedPublicKey)>,
    /// The RFC 7638 SHA-256 thumbprint, not yet base64url.
    thumbprint: [u8; 32],
}

impl VerifyKey {
    /// The key of `jwk` for each of `algorithms`; `None` when any does not parse (a key
    /// is usable whole or not at all).
    pub(crate) fn new(
        jwk: &Jwk<'_>,
        algorithms: &[SignatureAlgorithm],
        base64: Base64,
    ) -> Option<Self> {
        if jwk.private || algorithms.is_empty() {
            return None;
        }
        let parsed = algorithms
            .iter()
            .map(|&alg| public_key(jwk, alg, base64).map(|key| (alg, key)))
            .collect::<Option<Vec<_>>>()?;
        Some(VerifyKey {
            parsed,
            thumbprint: thumbprint_digest(jwk)?,
        })
    }

    /// Whether a signature by `alg` may be verified with this key.
    pub(crate) fn accepts(&self, alg: SignatureAlgorithm) -> bool {
        self.parsed.iter().any(|(a, _)| *a == alg)
    }

    /// Whether `signature` is `alg`'s signature of `message` under this key; false for an
    /// algorithm the key does not admit.
    pub(crate) fn verifies(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        self.parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url.
    pub(crate) fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint)
    }

    /// Whether `expected` is [`thumbprint`](Self::thumbprint), compared without allocating
    /// (a DPoP proof's key against the token's `cnf.jkt`, on every request).
    pub(crate) fn thumbprint_is(&self, expected: &str) -> bool {
        let mut encoded = [0u8; 43];
        URL_SAFE_NO_PAD
            .encode_slice(self.thumbprint, &mut encoded)
            .is_ok_and(|n| n == encoded.len() && expected.as_bytes() == encoded)
    }
}

/// The key family of a JWK by `kty` and `crv`; `None` for octet (HMAC) keys and anything
/// this crate cannot verify with.
pub(crate) fn family(jwk: &Jwk<'_>) -> Option<Family> {
    match (text(&jwk.kty)?, text(&jwk.crv)) {
        ("RSA", _) => Some(Family::Rsa),
        ("EC", Some(crv)) => [SignatureAlgorithm::ES256, SignatureAlgorithm::ES384]
            .into_iter()
            .map(SignatureAlgorithm::family)
            .find(|f| matches!(f, Family::Ec { crv: c, .. } if *c == crv)),
        ("OKP", Some("Ed25519")) => Some(Family::Ed25519),
        _ => None,
    }
}

fn bytes(member: Option<&str>, base64: Base64) -> Option<Vec<u8>> {
    let member = member?;
    let member = match base64 {
        Base64::Strict => member,
        Base64::Padded => member.trim_end_matches('='),
    };
    URL_SAFE_NO_PAD.decode(member).ok()
}

/// Largest EC coordinate accepted, in bytes (P-384).
const MAX_EC_BYTES: usize = 48;

/// Decodes an EC coordinate into `out`, which it must fill exactly.
fn coordinate(member: Option<&str>, base64: Base64, out: &mut [u8]) -> Option<()> {
    let member = member?;
    let member = match base64 {
        Base64::Strict => member,
        Base64::Padded => member.trim_end_matches('='),
    };
    // Room for any coordinate of the right size; a longer member does not fit, and is
    // refused as it would be for its size.
    let mut scratch = [0u8; MAX_EC_BYTES + 3];
    let n = URL_SAFE_NO_PAD.decode_slice(member, &mut scratch).ok()?;
    (n == out.len()).then(|| out.copy_from_slice(&scratch[..n]))
}

/// The public key of `jwk` parsed for `alg`; `None` unless the members form a key of the
/// family `alg` needs (EC of the curve, RSA of at least 2048 bits, Ed25519).
fn public_key(jwk: &Jwk<'_>, alg: SignatureAlgorithm, base64: Base64) -> Option<ParsedPublicKey> {
    if family(jwk)? != alg.family() {
        return None;
    }
    match alg.family() {
        Family::Rsa => {
            let n = bytes(text(&jwk.n), base64)?;
            let e = bytes(text(&jwk.e), base64)?;
            if n.iter().skip_while(|b| **b == 0).count() < MIN_RSA_BYTES {
                return None;
            }
            sig::RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(alg.rsa_parameters()?)
                .ok()
        }
        Family::Ec { size, .. } => {
            // An uncompressed point, 0x04 || x || y, built on the stack: a DPoP proof's
            // key is read on every request.
            let mut point = [0u8; 1 + 2 * MAX_EC_BYTES];
            let point = point.get_mut(..1 + 2 * size)?;
            let (tag, xy) = point.split_at_mut(1);
            let (x, y) = xy.split_at_mut(size);
            tag[0] = 4;
            coordinate(text(&jwk.x), base64, x)?;
            coordinate(text(&jwk.y), base64, y)?;
            ParsedPublicKey::new(alg.ecdsa_parameters()?, &*point).ok()
        }
        Family::Ed25519 => {
            let x = bytes(text(&jwk.x), base64)?;
            (x.len() == 32)
                .then(|| ParsedPublicKey::new(&sig::ED25519, x).ok())
                .flatten()
        }
    }
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK, base64url: the required members of
/// its type, in lexical order, as the JWK wrote them. `None` for a key of no known family
/// or a member that is not base64url (which could need escaping in the canonical form).
pub(crate) fn thumbprint(jwk: &Jwk<'_>) -> Option<String> {
    thumbprint_digest(jwk).map(|digest| URL_SAFE_NO_PAD.encode(digest))
}

/// [`thumbprint`] before base64url: the canonical form is hashed piece by piece, never
/// written out.
fn thumbprint_digest(jwk: &Jwk<'_>) -> Option<[u8; 32]> {
    fn b64<'a>(member: &'a Option<super::json::Text<'_>>) -> Option<&'a str> {
        text(member).filter(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
        })
    }
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut canonical = |parts: &[&str]| parts.iter().for_each(|p| context.update(p.as_bytes()));
    match family(jwk)? {
        Family::Rsa => canonical(&[
            r#"{"e":""#,
            b64(&jwk.e)?,
            r#"","kty":"RSA","n":""#,
            b64(&jwk.n)?,
            r#""}"#,
        ]),
        Family::Ec { crv, .. } => canonical(&[
            r#"{"crv":""#,
            crv,
            r#"","kty":"EC","x":""#,
            b64(&jwk.x)?,
            r#"","y":""#,
            b64(&jwk.y)?,
            r#""}"#,
        ]),
        Family::Ed25519 => canonical(&[
            r#"{"crv":"Ed25519","kty":"OKP","x":""#,
            b64(&jwk.x)?,
            r#""}"#,
        ]),
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(context.finish().as_ref());
    Some(digest)
}

/// The algorithms a published key may verify under the allow-list: its declared `alg` if
/// that belongs to its family and is allowed, else (no `alg`, as Entra ID publishes keys)
/// every allowed algorithm of its family. Empty: the key is not usable (HMAC, a foreign
/// `alg`, `use` other than `sig`).
pub(crate) fn usable_algorithms(
    jwk: &Jwk<'_>,
    allowed: &[SignatureAlgorithm],
) -> Vec<SignatureAlgorithm> {
    let Some(family) = family(jwk) else {
        return Vec::new();
    };
    if !matches!(text(&jwk.use_), None | Some("sig")) {
        return Vec::new();
    }
    match text(&jwk.alg) {
        // A declared algorithm must belong to the key's family ("RS256" on an EC key is a
        // broken or hostile set) and be allowed.
        Some(declared) => SignatureAlgorithm::from_name(declared)
            .filter(|a| a.family() == family && allowed.contains(a))
            .into_iter()
            .collect(),
        None => SignatureAlgorithm::of_family(family)
            .filter(|a| allowed.contains(a))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::json::Object;

    fn jwk(json: &str) -> Jwk<'_> {
        serde_json::from_str::<Object<Jwk<'_>>>(json).unwrap().0
    }

    /// RFC 7638 section 3.1's example key and thumbprint.
    const RFC7638: &str = r#"{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#;

    #[test]
    fn the_thumbprint_is_rfc7638s() {
        assert_eq!(
            thumbprint(&jwk(RFC7638)).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        let key =
            VerifyKey::new(&jwk(RFC7638), &[SignatureAlgorithm::RS256], Base64::Strict).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn the_thumbprint_is_jsonwebtokens_for_every_key_type() {
        use jsonwebtoken::jwk::{Jwk as TheirJwk, ThumbprintHash};
        let ec = crate::jose::SigningKey::generate_es256().unwrap();
        let ed =
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let ec = ec.public_jwk().to_string();
        for text in [ec.as_str(), ed, RFC7638] {
            let theirs = serde_json::from_str::<TheirJwk>(text)
                .unwrap()
                .thumbprint(ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(thumbprint(&jwk(text)).unwrap(), theirs, "{text}");
        }
    }

    #[test]
    fn ec_keys_of_both_curves_verify_and_a_short_coordinate_is_refused() {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
            KeyPair as _,
        };
        let rng = aws_lc_rs::rand::SystemRandom::new();
        for (signing, alg, crv, size) in [
            (
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                SignatureAlgorithm::ES256,
                "P-256",
                32,
            ),
            (
                &ECDSA_P384_SHA384_FIXED_SIGNING,
                SignatureAlgorithm::ES384,
                "P-384",
                48,
            ),
        ] {
            let pair = EcdsaKeyPair::generate(signing).unwrap();
            let point = pair.public_key().as_ref();
            let (x, y) = point[1..].split_at(size);
            let json = |x: &[u8]| {
                format!(
                    r#"{{"kty":"EC","crv":"{crv}","x":"{}","y":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(x),
                    URL_SAFE_NO_PAD.encode(y)
                )
            };
            let text = json(x);
            let key = VerifyKey::new(&jwk(&text), &[alg], Base64::Strict).unwrap();
            let signature = pair.sign(&rng, b"message").unwrap();
            assert!(key.verifies(alg, b"message", signature.as_ref()), "{crv}");
            assert!(!key.verifies(alg, b"other", signature.as_ref()), "{crv}");
            assert!(key.thumbprint_is(&thumbprint(&jwk(&text)).unwrap()));
            assert!(!key.thumbprint_is("not-the-thumbprint"));
            let short = json(&x[1..]);
            assert!(
                VerifyKey::new(&jwk(&short), &[alg], Base64::Strict).is_none(),
                "{crv}"
            );
        }
    }

    #[test]
    fn a_key_must_be_of_the_family_its_algorithm_needs() {
        let ec = crate::jose::SigningKey::generate_es256().unwrap();
        let ec = ec.public_jwk().to_string();
        assert!(VerifyKey::new(&jwk(&ec), &[SignatureAlgorithm::ES256], Base64::Strict).is_some());
        assert!(VerifyKey::new(&jwk(&ec), &[SignatureAlgorithm::ES384], Base64::Strict).is_none());
        assert!(VerifyKey::new(&jwk(&ec), &[SignatureAlgorithm::RS256], Base64::Strict).is_none());
        let short = RFC7638.replace(r#""n":"0vx7"#, r#""n":"AQAB","m":"0vx7"#);
        assert!(
            VerifyKey::new(&jwk(&short), &[SignatureAlgorithm::RS256], Base64::Strict).is_none()
        );
        let private = ec.replace(r#""kty""#, r#""d":"AAAA","kty""#);
        assert!(
            VerifyKey::new(&jwk(&private), &[SignatureAlgorithm::ES256], Base64::Strict).is_none()
        );
        let padded = RFC7638.replace(r#""e":"AQAB""#, r#""e":"AQAB==""#);
        assert!(
            VerifyKey::new(&jwk(&padded), &[SignatureAlgorithm::RS256], Base64::Strict).is_none()
        );
        assert!(
            VerifyKey::new(&jwk(&padded), &[SignatureAlgorithm::RS256], Base64::Padded).is_some()
        );
    }

    #[test]
    fn usable_algorithms_follow_alg_use_and_the_allow_list() {
        let all: Vec<_> = SignatureAlgorithm::ALL.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            usable_algorithms(&jwk(RFC7638), &all),
            [SignatureAlgorithm::RS256]
        );
        let no_alg = RFC7638.replace(r#""alg":"RS256","#, "");
        assert_eq!(usable_algorithms(&jwk(&no_alg), &all).len(), 6);
        let enc = RFC7638.replace(r#""alg":"RS256","#, r#""use":"enc","#);
        assert!(usable_algorithms(&jwk(&enc), &all).is_empty());
        let foreign = RFC7638.replace(r#""alg":"RS256""#, r#""alg":"ES256""#);
        assert!(usable_algorithms(&jwk(&foreign), &all).is_empty());
        let hmac = r#"{"kty":"oct","k":"c2VjcmV0"}"#;
        assert!(usable_algorithms(&jwk(hmac), &all).is_empty());
    }
}
