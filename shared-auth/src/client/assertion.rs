//! Client assertions (RFC 7521, RFC 7523 section 2.2): the JWT a client sends instead of a
//! secret, signed here (`private_key_jwt`) or written by the platform (an assertion file).
//!
//! Both are made per token request, which happens only on a cache miss. An assertion file
//! is read again every time because the platform rotates it (a Kubernetes projected
//! service-account token is renewed at 80 % of its life); reading it once at start would
//! send an expired assertion an hour later.

use serde::Serialize;

use super::credentials::{ClientCredential, ClientCredentialsClient, JWT_BEARER_ASSERTION};
use super::error::TokenError;

/// How long a signed assertion is valid. RFC 7523 leaves it to the issuer; 60 s covers a
/// slow request and clock skew while keeping a captured assertion nearly useless (issuers
/// also refuse a reused `jti`).
const ASSERTION_LIFETIME_SECS: u64 = 60;
/// Largest assertion file read (a JWT-SVID or a service-account token is 1-2 KiB).
const MAX_ASSERTION_BYTES: u64 = 64 * 1024;

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    iat: u64,
    exp: u64,
}

/// The `client_assertion_type` and `client_assertion` for one token request.
pub(crate) async fn client_assertion(
    client: &ClientCredentialsClient,
    credential: &ClientCredential,
    client_name: &str,
) -> Result<(String, String), TokenError> {
    let outcome = make(client, credential).await;
    metrics::counter!(
        crate::metrics::CLIENT_ASSERTIONS,
        "client" => client_name.to_owned(),
        "kind" => credential.kind(),
        "outcome" => if outcome.is_ok() { "made" } else { "failed" },
    )
    .increment(1);
    if let Err(error) = &outcome {
        tracing::warn!(client = client_name, kind = credential.kind(), %error, "no client assertion");
    }
    outcome
}

async fn make(
    client: &ClientCredentialsClient,
    credential: &ClientCredential,
) -> Result<(String, String), TokenError> {
    match credential {
        ClientCredential::PrivateKeyJwt {
            key, explicit_typ, ..
        } => {
            let now = crate::clock::system_now_ms() / 1000;
            let jti = crate::jose::random_jti().map_err(|_| {
                TokenError::Credential("no randomness for the assertion's jti".into())
            })?;
            let id = client.client_id.as_str();
            let claims = AssertionClaims {
                iss: id,
                sub: id,
                aud: client.assertion_audience(),
                jti: &jti,
                iat: now,
                exp: now + ASSERTION_LIFETIME_SECS,
            };
            // Strings and integers: serialization cannot fail.
            let claims = serde_json::to_vec(&claims).unwrap_or_default();
            let typ = [(
                "typ",
                serde_json::Value::String("client-authentication+jwt".into()),
            )];
            let header = key.encoded_header(if *explicit_typ { &typ } else { &[] });
            let assertion = key
                .sign_compact(&header, &claims)
                .map_err(|e| TokenError::Credential(e.to_string()))?;
            Ok((JWT_BEARER_ASSERTION.to_owned(), assertion))
        }
        ClientCredential::AssertionFile {
            path,
            assertion_type,
        } => {
            let unreadable = |reason: String| {
                TokenError::Credential(format!("the assertion file {} {reason}", path.display()))
            };
            // What tokio::fs does, without its feature: a blocking read off the runtime.
            let file = path.clone();
            let text = tokio::task::spawn_blocking(move || read_capped(&file))
                .await
                .map_err(|e| unreadable(format!("cannot be read: {e}")))?
                .map_err(unreadable)?;
            let assertion = text.trim();
            // A JWS in compact form: three base64url parts. Anything else would be sent
            // to the issuer only to be refused, with a less helpful message.
            let compact = assertion.split('.').count() == 3
                && assertion
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !compact {
                return Err(unreadable(
                    "does not hold a JWT (three base64url parts)".into(),
                ));
            }
            Ok((assertion_type.clone(), assertion.to_owned()))
        }
        ClientCredential::Secret(_) => Err(TokenError::Credential(
            "a secret is not an assertion".into(),
        )),
    }
}

/// The file's text, at most [`MAX_ASSERTION_BYTES`]; the error says why not (no path).
pub(crate) fn read_capped(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut text = String::new();
    file.take(MAX_ASSERTION_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if text.len() as u64 > MAX_ASSERTION_BYTES {
        return Err(format!("is larger than {MAX_ASSERTION_BYTES} bytes"));
    }
    Ok(text)
}
