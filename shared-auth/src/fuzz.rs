//! Property tests over the parsers that take untrusted input: the Authorization header, a
//! JWKS document, a token endpoint response, a scope string. They run as `fuzz_*` tests:
//! a short pass in `just test` (proptest's default 256 cases each) and a long one in
//! `just fuzz` (`PROPTEST_CASES`). Properties: never panic, and what is accepted is
//! well-formed.
//!
//! (cargo-fuzz needs a nightly toolchain, which these machines do not have.)

use proptest::prelude::*;

use crate::client::token_endpoint::{MAX_LIFETIME, MIN_LIFETIME, parse_success};
use crate::jwks::parse_jwks;
use crate::scope::ScopeSet;
use crate::server::auth_layer::{Credentials, MAX_AUTHORIZATION_LEN, parse_authorization};

crate::jose::json::claims! {
    /// A reader that keeps two members and checks the rest.
    struct Kept {
        a = "a",
        kty = "kty",
    }
}

fn strict_is_subset(bytes: &[u8]) -> Result<(), TestCaseError> {
    let strict = crate::jose::json::parse::<Kept<'_>>(bytes).is_ok();
    let map = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes);
    if strict {
        prop_assert!(map.is_ok(), "strict accepted what serde_json refuses");
        prop_assert!(crate::jose::json::parse_map(bytes).ok() == map.ok());
    }
    Ok(())
}

fn jsonish() -> impl Strategy<Value = String> {
    // Mostly-JSON text: fragments that exercise the parsers' structure, mixed freely.
    let atom = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"keys\"".to_owned()),
        Just("\"kty\"".to_owned()),
        Just("\"RSA\"".to_owned()),
        Just("\"EC\"".to_owned()),
        Just("\"alg\"".to_owned()),
        Just("\"RS256\"".to_owned()),
        Just("\"n\"".to_owned()),
        Just("\"e\"".to_owned()),
        Just("\"AQAB\"".to_owned()),
        Just("\"access_token\"".to_owned()),
        Just("\"expires_in\"".to_owned()),
        Just("\"token_type\"".to_owned()),
        Just("\"crit\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        Just("\"\\ud83d\\ude00\"".to_owned()),
        Just("\"\\u0061\"".to_owned()),
        Just("null".to_owned()),
        Just("1e999".to_owned()),
        Just("-1".to_owned()),
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
        any::<u64>().prop_map(|n| n.to_string()),
    ];
    prop::collection::vec(atom, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn fuzz_authorization_header(bytes in prop::collection::vec(any::<u8>(), 0..512), prefix in prop_oneof![Just(&b"Bearer "[..]), Just(&b"bearer "[..]), Just(&b""[..])]) {
        let value = [prefix, &bytes[..]].concat();
        if let Credentials::Bearer(token) = parse_authorization(&value) {
            prop_assert!(!token.is_empty() && token.len() <= MAX_AUTHORIZATION_LEN);
            prop_assert!(token.trim_end_matches('=').bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)));
        }
    }

    #[test]
    fn fuzz_jwks_document(text in jsonish()) {
        let allowed = [crate::jose::SignatureAlgorithm::RS256, crate::jose::SignatureAlgorithm::ES256];
        if let Ok((set, _skipped)) = parse_jwks(text.as_bytes(), &allowed) {
            let _ = set.find(None);
            let _ = set.find(Some("x"));
        }
    }

    #[test]
    fn fuzz_jwks_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_jwks(&bytes, &[crate::jose::SignatureAlgorithm::RS256]);
    }

    /// The JOSE core's strict reader accepts a subset of what serde_json reads as a map,
    /// with the same members: so `Principal::claims` (serde_json over the verified
    /// payload) can never come back empty for an accepted token.
    #[test]
    fn fuzz_strict_json_is_a_subset_of_serde_json(text in jsonish()) {
        strict_is_subset(text.as_bytes())?;
    }

    #[test]
    fn fuzz_strict_json_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut framed = b"{\"a\":".to_vec();
        framed.extend_from_slice(&bytes);
        framed.push(b'}');
        strict_is_subset(&framed)?;
    }

    #[test]
    fn fuzz_token_response(text in jsonish()) {
        if let Ok(response) = parse_success(text.as_bytes(), true) {
            prop_assert!(response.access_token.secret().bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn fuzz_token_response_with_arbitrary_token(token in any::<String>(), expires in any::<i64>()) {
        let body = serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": expires});
        if let Ok(response) = parse_success(body.to_string().as_bytes(), false) {
            prop_assert!(!response.access_token.secret().is_empty());
            // Whatever the issuer says, the lifetime lands in the sane window.
            let life = response.expires_in.unwrap();
            prop_assert!((MIN_LIFETIME..=MAX_LIFETIME).contains(&life));
        }
    }

    #[test]
    fn fuzz_scope_round_trip(text in "[ -~]{0,64}") {
        if let Ok(set) = ScopeSet::parse(&text) {
            prop_assert_eq!(ScopeSet::parse(&set.to_string()).ok(), Some(set.clone()));
            for scope in &set {
                prop_assert!(set.contains(scope.as_str()));
            }
        }
    }
}
