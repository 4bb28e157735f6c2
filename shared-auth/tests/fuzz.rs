//! Property tests ("fuzzing" without a nightly toolchain) of JWT decoding and validation
//! through the public `JwtValidator`, against a real issuer's keys:
//! - arbitrary strings never validate and never panic;
//! - any single-character change to a valid token is rejected (base64url is decoded
//!   canonically, so no two spellings carry the same signature);
//! - arbitrary claims signed with the issuer's real key never panic, are accepted exactly
//!   when the rules written out in `accepts` say so, and an accepted token's principal
//!   hands out exactly the token's claims.
//!
//! `just test` runs proptest's default 256 cases per property; `just fuzz` many more.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use proptest::prelude::*;
use serde_json::{Value, json};
use shared_auth::server::{JwtValidator, MetadataSource, ValidatorConfig};
use test_support::*;

struct World {
    runtime: tokio::runtime::Runtime,
    issuer: IssuerHandle,
    validator: JwtValidator,
    valid: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (issuer, validator, valid) = runtime.block_on(async {
            let issuer = start_issuer(IssuerProfile::Cognito).await;
            let validator = JwtValidator::new(ValidatorConfig::new(
                MetadataSource::Authority(issuer.issuer().to_owned()),
                cognito(),
            ))
            .await
            .unwrap();
            let valid = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
            (issuer, validator, valid)
        });
        World {
            runtime,
            issuer,
            validator,
            valid,
        }
    })
}

fn validate(
    token: &str,
) -> Result<shared_auth::server::Principal, shared_auth::server::ValidationError> {
    let w = world();
    w.runtime.block_on(w.validator.validate(token))
}

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

fn claim_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::from("")),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,16}".prop_map(Value::from),
        prop::collection::vec("[ -~]{0,8}", 0..3).prop_map(|v| json!(v)),
    ]
}

proptest! {
    #[test]
    fn fuzz_arbitrary_strings_never_validate(token in "[ -~]{0,300}") {
        prop_assert!(validate(&token).is_err());
    }

    #[test]
    fn fuzz_any_single_change_to_a_valid_token_is_rejected(index in any::<prop::sample::Index>(), replacement in prop::sample::select(B64URL)) {
        let valid = &world().valid;
        prop_assume!(validate(valid).is_ok());
        let mut bytes = valid.clone().into_bytes();
        let i = index.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(validate(&mutated).is_err(), "accepted a token changed at byte {}", i);
    }

    #[test]
    fn fuzz_signed_arbitrary_claims(
        names in prop::collection::vec(prop::sample::select(vec!["exp", "nbf", "iat", "iss", "sub", "client_id", "azp", "scope", "scp", "token_use", "aud"]), 0..8),
        values in prop::collection::vec(claim_value(), 8),
    ) {
        let w = world();
        let (header, mut claims) = w.issuer.token_template(BFF_ID, &[READ]);
        for (name, value) in names.iter().zip(values) {
            claims[*name] = value;
        }
        let token = w.issuer.sign(&header, &claims).unwrap();
        let expected = accepts(&claims, w.issuer.issuer(), now());
        let verdict = validate(&token);
        prop_assert_eq!(verdict.is_ok(), expected, "{:?} for {}", verdict, claims);
        if let Ok(principal) = verdict {
            prop_assert_eq!(principal.issuer(), w.issuer.issuer());
            prop_assert!(!principal.client_id().is_empty());
            // The claims a handler reads are the token's (parsed on demand; as read back
            // by serde_json, whose float parsing is not exact without float_roundtrip).
            let read_back: Value = serde_json::from_str(&claims.to_string()).unwrap();
            prop_assert_eq!(&Value::Object(principal.claims().clone()), &read_back);
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The validator's rules for a cognito token, written out over the JSON independently of
/// the validator's own parsing: the oracle the property compares with.
fn accepts(c: &Value, issuer: &str, now: u64) -> bool {
    const LEEWAY: f64 = 60.0;
    // RFC 7519 NumericDate: a number of seconds, a fraction allowed; this validator takes
    // 0 to the end of year 9999.
    let seconds = |name: &str| {
        c.get(name).map(|v| {
            v.as_f64()
                .filter(|t| t.is_finite() && (0.0..=253_402_300_799.0).contains(t))
        })
    };
    let now = now as f64;
    let not_after_now = |name: &str| match seconds(name) {
        None => true,
        Some(Some(t)) => t <= now + LEEWAY,
        Some(None) => false,
    };
    let exp = matches!(seconds("exp"), Some(Some(e)) if e + LEEWAY >= now);
    let text = |name: &str| c.get(name).and_then(Value::as_str);
    let named = |name: &str| text(name).filter(|s| !s.is_empty());
    let strings = ["sub", "client_id", "azp"]
        .iter()
        .all(|n| c.get(*n).is_none_or(Value::is_string));
    // RFC 6749 section 3.3: %x21 / %x23-5B / %x5D-7E.
    let scope_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    };
    let scopes = match c.get("scope").or_else(|| c.get("scp")) {
        None => true,
        Some(Value::String(s)) => s.split(' ').filter(|t| !t.is_empty()).all(scope_token),
        Some(Value::Array(items)) => items.iter().all(|v| v.as_str().is_some_and(scope_token)),
        Some(_) => false,
    };
    exp && not_after_now("nbf")
        && not_after_now("iat")
        && text("iss") == Some(issuer)
        && text("token_use") == Some("access")
        && strings
        && (named("client_id").or(named("azp")).or(named("sub"))).is_some()
        && scopes
}
