//! The token endpoint (RFC 6749 section 4.4, client credentials grant; the code and
//! refresh grants of users are answered by [`crate::user_tokens`] once the client is
//! authenticated here).
//!
//! The request is checked in the order a strict server would: body shape, grant type, the
//! DPoP proof if there is one (RFC 9449, see [`crate::dpop`]), client authentication
//! (exactly one of `client_secret_basic`, `client_secret_post` or a client assertion:
//! `private_key_jwt` or federated, see [`crate::client_auth`]), the client's permission to
//! use the grant and whether it must use DPoP, then the requested scopes. Only then are the
//! one-time values consumed (a single-use assertion's `jti`, the proof's `jti`), so a
//! request refused for another reason, such as a `use_dpop_nonce` challenge, can be sent
//! again with the same assertion. Every answer, success or error, carries
//! `Cache-Control: no-store` (section 5.1); errors have the JSON body of section 5.2, and
//! while DPoP nonces are required every answer carries the current `DPoP-Nonce`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use crate::client_auth;
use crate::config::{ClientConfig, GRANT_TYPES, ScopeFormat, TokenProfile};
use crate::dpop::{self, ProofError};
use crate::state::{IssuerState, unix_now};

/// An RFC 6749 section 5.2 error.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) description: String,
    /// Set when the client tried HTTP Basic: a 401 must then carry a matching challenge.
    basic_challenge: bool,
}

impl OAuthError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        description: impl Into<String>,
    ) -> Self {
        OAuthError {
            status,
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(crate) fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        OAuthError {
            basic_challenge: basic,
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }
}

impl From<ProofError> for OAuthError {
    fn from(error: ProofError) -> Self {
        match error {
            ProofError::Invalid(d) => Self::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", d),
            ProofError::UseNonce(d) => Self::new(StatusCode::BAD_REQUEST, "use_dpop_nonce", d),
        }
    }
}

pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        no_store(response.headers_mut());
        if self.basic_challenge && self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mock-issuer\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// The form parameters, each present at most once (RFC 6749 section 3.2).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut seen = BTreeSet::new();
        let mut params = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if !seen.insert(k.to_string()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} is repeated"
                )));
            }
            params.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(params))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes one `client_secret_basic` component: RFC 6749 section 2.3.1 has the client
/// form-urlencode id and secret before joining them with ':' and base64-encoding.
fn form_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&part.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

pub(crate) struct Credentials {
    client_id: String,
    secret: String,
    pub(crate) basic: bool,
}

/// How the client authenticates: with a secret, or with a JWT.
pub(crate) enum ClientAuthentication<'p> {
    Secret(Credentials),
    Assertion {
        client_id: Option<&'p str>,
        assertion_type: &'p str,
        assertion: &'p str,
    },
}

pub(crate) fn authentication_method<'p>(
    headers: &HeaderMap,
    params: &'p Params,
) -> Result<ClientAuthentication<'p>, OAuthError> {
    let assertion = params.get("client_assertion");
    let assertion_type = params.get("client_assertion_type");
    if assertion.is_none() && assertion_type.is_none() {
        return authenticate_request(headers, params).map(ClientAuthentication::Secret);
    }
    if headers.contains_key(header::AUTHORIZATION) || params.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method (a client secret and client_assertion)",
        ));
    }
    match (assertion, assertion_type) {
        (Some(assertion), Some(assertion_type)) => Ok(ClientAuthentication::Assertion {
            client_id: params.get("client_id"),
            assertion_type,
            assertion,
        }),
        (Some(_), None) => Err(OAuthError::invalid_request(
            "client_assertion given without client_assertion_type",
        )),
        _ => Err(OAuthError::invalid_request(
            "client_assertion_type given without client_assertion",
        )),
    }
}

fn authenticate_request(headers: &HeaderMap, params: &Params) -> Result<Credentials, OAuthError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let body_secret = params.get("client_secret");
    match (authorization, body_secret) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "more than one client authentication method (Authorization header and client_secret)",
        )),
        (Some(value), None) => {
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client(
                    "unsupported authentication scheme; use HTTP Basic or client_secret_post",
                    false,
                ));
            }
            let malformed = || OAuthError::invalid_client("malformed Basic credentials", true);
            let decoded = B64.decode(rest.trim()).map_err(|_| malformed())?;
            let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
            let client_id = form_decode(id).ok_or_else(malformed)?;
            let secret = form_decode(secret).ok_or_else(malformed)?;
            if let Some(body_id) = params.get("client_id")
                && body_id != client_id
            {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the authenticated client",
                ));
            }
            Ok(Credentials {
                client_id,
                secret,
                basic: true,
            })
        }
        (None, Some(secret)) => {
            let client_id = params.get("client_id").ok_or_else(|| {
                OAuthError::invalid_request("client_secret given without client_id")
            })?;
            Ok(Credentials {
                client_id: client_id.to_owned(),
                secret: secret.to_owned(),
                basic: false,
            })
        }
        (None, None) => Err(OAuthError::invalid_client(
            "client authentication required (HTTP Basic, client_secret_post or a client \
             assertion)",
            false,
        )),
    }
}

/// Compares secrets in constant time. Both sides are hashed first so that neither the
/// length nor a common prefix of the real secret shows in the timing.
fn secrets_match(given: &str, expected: &str) -> bool {
    let sha = |s: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    bool::from(sha(given).as_ref().ct_eq(sha(expected).as_ref()))
}

pub(crate) fn find_client<'a>(
    state: &'a IssuerState,
    creds: &Credentials,
) -> Result<&'a ClientConfig, OAuthError> {
    let client = state
        .config
        .clients
        .iter()
        .find(|c| c.client_id == creds.client_id);
    // Compare against a fixed dummy for unknown ids so both paths cost the same.
    // A client without a secret cannot use one: it is compared with the dummy and fails.
    let expected = client
        .and_then(|c| c.client_secret.as_deref())
        .unwrap_or("unknown-client-dummy-secret");
    let client = client.filter(|c| c.client_secret.is_some());
    let secret_ok = secrets_match(&creds.secret, expected);
    match client {
        Some(c) if secret_ok => Ok(c),
        _ => Err(OAuthError::invalid_client(
            "unknown client or wrong secret",
            creds.basic,
        )),
    }
}

fn granted_scopes(
    client: &ClientConfig,
    requested: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    let requested: Vec<&str> = requested
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if requested.is_empty() {
        // Cognito: no scope parameter means every scope the client is allowed.
        return Ok(client.allowed_scopes.clone());
    }
    let mut granted: Vec<String> = Vec::with_capacity(requested.len());
    for scope in requested {
        if !client.allowed_scopes.iter().any(|s| s == scope) {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("scope {scope:?} is unknown or not allowed for this client"),
            ));
        }
        if !granted.iter().any(|s| s == scope) {
            granted.push(scope.to_owned());
        }
    }
    Ok(granted)
}

pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // SystemRandom only fails if the OS RNG is unavailable; a zero id is then still a
    // well-formed (if not unique) jti for a test issuer.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Builds header and claims for the configured profile.
pub(crate) fn token_contents(
    state: &IssuerState,
    kid: &str,
    alg: &str,
    client_id: &str,
    scopes: &[String],
    now: u64,
    lifetime: Duration,
) -> (Value, Value) {
    let exp = now + lifetime.as_secs();
    let scope = match state.config.scope_format {
        ScopeFormat::String => json!(scopes.join(" ")),
        ScopeFormat::Array => json!(scopes),
    };
    match state.config.profile {
        TokenProfile::Cognito => (
            json!({"alg": alg, "kid": kid}),
            json!({
                "sub": client_id,
                "token_use": "access",
                "scope": scope,
                "auth_time": now,
                "iss": state.issuer,
                "exp": exp,
                "iat": now,
                "version": 2,
                "jti": random_id(),
                "client_id": client_id,
            }),
        ),
        TokenProfile::Rfc9068 => {
            let aud = audience(state, scopes);
            (
                json!({"alg": alg, "kid": kid, "typ": "at+jwt"}),
                json!({
                    "iss": state.issuer,
                    "sub": client_id,
                    "client_id": client_id,
                    "aud": aud,
                    "scope": scope,
                    "jti": random_id(),
                    "iat": now,
                    "exp": exp,
                }),
            )
        }
    }
}

/// The audience of a token granting `scopes`: every resource server whose scopes were
/// granted (one string for one, an array for several).
pub(crate) fn audience<S: AsRef<str>>(state: &IssuerState, scopes: &[S]) -> Value {
    let mut aud: Vec<&str> = state
        .config
        .resource_servers
        .iter()
        .filter(|rs| {
            rs.full_scopes()
                .any(|s| scopes.iter().any(|g| g.as_ref() == s))
        })
        .map(|rs| rs.audience())
        .collect();
    aud.dedup();
    match aud.as_slice() {
        [one] => json!(one),
        many => json!(many),
    }
}

/// `POST /oauth2/token` (and `/connect/token`).
pub(crate) async fn token(
    State(state): State<Arc<IssuerState>>,
    peer: Option<axum::Extension<crate::mtls::PeerCertificate>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.counters.token_requests.fetch_add(1, Ordering::SeqCst);
    let delay = state.faults.token_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let result = match state.faults.take_token_failure() {
        Some(status) => {
            let code = match status {
                StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
                s if s.is_server_error() => "server_error",
                _ => "invalid_request",
            };
            Err(OAuthError::new(status, code, "injected failure"))
        }
        None => {
            let certificate = peer.map(|axum::Extension(c)| c);
            issue(&state, &headers, uri.path(), &body, certificate.as_ref()).await
        }
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            state.counters.token_errors.fetch_add(1, Ordering::SeqCst);
            let counter = match error.code {
                "invalid_dpop_proof" => Some(&state.counters.dpop_proofs_refused),
                "use_dpop_nonce" => Some(&state.counters.dpop_nonce_challenges),
                _ => None,
            };
            if let Some(counter) = counter {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            tracing::info!(error = error.code, description = %error.description, "token request refused");
            error.into_response()
        }
    };
    if let Some(nonce) = state.dpop_nonce.required_nonce()
        && let Ok(value) = HeaderValue::from_str(&nonce)
    {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}

/// How the issued token's client authenticated, for the counters.
enum AuthenticatedBy {
    Basic,
    Post,
    Assertion {
        federated: bool,
    },
    /// `tls_client_auth` (RFC 8705): its certificate's thumbprint binds the token.
    Certificate {
        thumbprint: String,
    },
}

/// RFC 8705 section 2: a client that sends its `client_id` and no other credential over a
/// TLS connection with a certificate this issuer issued for it. `None`: no certificate, or
/// another credential in the request (then that one authenticates).
fn certificate_client<'s>(
    state: &'s IssuerState,
    headers: &HeaderMap,
    params: &Params,
    certificate: Option<&crate::mtls::PeerCertificate>,
) -> Result<Option<(&'s ClientConfig, String)>, OAuthError> {
    let (Some(certificate), Some(mtls)) = (certificate, state.mtls.as_ref()) else {
        return Ok(None);
    };
    let other = headers.contains_key(header::AUTHORIZATION)
        || ["client_secret", "client_assertion", "client_assertion_type"]
            .iter()
            .any(|p| params.get(p).is_some());
    if other {
        return Ok(None);
    }
    let invalid = |description: String| {
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    };
    let client_id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_request("client_id is required with tls_client_auth"))?;
    match mtls.client_of(&certificate.0) {
        Some(owner) if owner == client_id => {}
        Some(_) => {
            return Err(invalid(format!(
                "the certificate is not client {client_id:?}'s"
            )));
        }
        None => {
            return Err(invalid(
                "the certificate is not registered for any client".into(),
            ));
        }
    }
    let client = state
        .config
        .client(client_id)
        .ok_or_else(|| invalid(format!("unknown client {client_id:?}")))?;
    Ok(Some((client, crate::mtls::thumbprint(&certificate.0))))
}

async fn issue(
    state: &IssuerState,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    certificate: Option<&crate::mtls::PeerCertificate>,
) -> Result<Response, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_form = content_type.split(';').next().is_some_and(|m| {
        m.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body)?;
    let grant_type = match params.get("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some(g) if GRANT_TYPES.contains(&g) => g,
        Some(other) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "grant_type {other:?} is not supported; only {}",
                    GRANT_TYPES.join(", ")
                ),
            ));
        }
    };
    let now = unix_now();
    // The proof is checked before the client, so a nonce challenge does not use up a
    // single-use client assertion; its jti is consumed last, with the assertion's.
    let proof = dpop::check(state, headers, &state.root_url(path), now)?;
    let by_certificate = certificate_client(state, headers, &params, certificate)?;
    let (client, single_use_jti, authenticated_by) = match by_certificate {
        Some((client, thumbprint)) => (client, None, AuthenticatedBy::Certificate { thumbprint }),
        None => match authentication_method(headers, &params)? {
            ClientAuthentication::Secret(creds) => (
                find_client(state, &creds)?,
                None,
                if creds.basic {
                    AuthenticatedBy::Basic
                } else {
                    AuthenticatedBy::Post
                },
            ),
            ClientAuthentication::Assertion {
                client_id,
                assertion_type,
                assertion,
            } => match client_auth::authenticate(state, client_id, assertion_type, assertion, now)
                .await
            {
                Ok(auth) => (
                    auth.client,
                    auth.single_use_jti,
                    AuthenticatedBy::Assertion {
                        federated: auth.federated,
                    },
                ),
                Err(description) => return Err(assertion_refused(state, description)),
            },
        },
    };
    if !client.allowed_grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            format!("this client may not use the {grant_type} grant"),
        ));
    }
    if client.dpop_bound_access_tokens && proof.is_none() {
        return Err(ProofError::Invalid(format!(
            "DPoP proof missing: client {:?} requires DPoP-bound access tokens",
            client.client_id
        ))
        .into());
    }
    if grant_type != "client_credentials" {
        // The client is authenticated; the one-time values are spent before the code or
        // refresh token is looked at (a refused grant cannot be retried with them).
        if let Some(jti) = single_use_jti {
            client_auth::consume_jti(state, jti, now)
                .map_err(|description| assertion_refused(state, description))?;
        }
        if let Some(proof) = &proof {
            dpop::consume(state, proof, now)?;
        }
        if grant_type == crate::token_exchange::GRANT {
            return crate::token_exchange::grant(state, client, &params);
        }
        let jkt = proof.map(|p| p.jkt);
        return crate::user_tokens::grant(state, client, grant_type, &params, jkt).await;
    }
    let scopes = granted_scopes(client, params.get("scope"))?;
    if let Some(jti) = single_use_jti {
        client_auth::consume_jti(state, jti, now)
            .map_err(|description| assertion_refused(state, description))?;
    }
    if let Some(proof) = &proof {
        dpop::consume(state, proof, now)?;
    }

    let key = state.current_key();
    let lifetime = state.token_lifetime();
    let (header_json, mut claims) = token_contents(
        state,
        key.kid(),
        key.alg().as_str(),
        &client.client_id,
        &scopes,
        now,
        lifetime,
    );
    match (&proof, &authenticated_by) {
        (Some(proof), _) => claims["cnf"] = json!({ "jkt": proof.jkt }),
        // RFC 8705 section 3: bound to the certificate the client authenticated with.
        (None, AuthenticatedBy::Certificate { thumbprint }) => {
            claims["cnf"] = json!({ "x5t#S256": thumbprint });
        }
        (None, _) => {}
    }
    // A multi-tenant issuer's extra parameter (as Auth0's `organization`): the token says
    // which tenant it was asked for, so a client's per-tenant tokens can be told apart.
    if let Some(tenant) = params.get("tenant") {
        claims["tenant"] = json!(tenant);
    }
    let access_token = if client.opaque_access_tokens {
        crate::introspection::issue_opaque(
            state,
            &client.client_id,
            &scopes,
            now,
            lifetime,
            proof.as_ref().map(|p| p.jkt.clone()),
        )
    } else {
        key.sign_json(&header_json, &claims).map_err(|e| {
            OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                e.to_string(),
            )
        })?
    };
    *state
        .counters
        .tokens_issued
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(client.client_id.clone())
        .or_default() += 1;
    let counters = &state.counters;
    match authenticated_by {
        AuthenticatedBy::Basic | AuthenticatedBy::Certificate { .. } => {}
        AuthenticatedBy::Post => {
            counters.tokens_issued_post.fetch_add(1, Ordering::SeqCst);
        }
        AuthenticatedBy::Assertion { federated } => {
            counters
                .tokens_issued_assertion
                .fetch_add(1, Ordering::SeqCst);
            if federated {
                counters
                    .tokens_issued_federated
                    .fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    if proof.is_some() {
        counters.dpop_tokens_issued.fetch_add(1, Ordering::SeqCst);
    }
    tracing::info!(client_id = %client.client_id, scope = %scopes.join(" "), expires_in = lifetime.as_secs(), dpop = proof.is_some(), "token issued");
    let mut body = json!({
        "access_token": access_token,
        "token_type": if proof.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": lifetime.as_secs(),
    });
    if !scopes.is_empty() {
        body["scope"] = json!(scopes.join(" "));
    }
    let mut response = axum::Json(body).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// Counts a refused client assertion and makes its `invalid_client` answer.
fn assertion_refused(state: &IssuerState, description: String) -> OAuthError {
    state
        .counters
        .client_assertions_refused
        .fetch_add(1, Ordering::SeqCst);
    OAuthError::invalid_client(description, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_components_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%FF"), None);
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Params::parse(b"scope=a&scope=b").is_err());
        assert!(Params::parse(b"scope=a&grant_type=b").is_ok());
    }

    #[test]
    fn scope_defaulting_and_rejection() {
        let client = ClientConfig::new("c", "secret-123", ["A/x", "A/y"]);
        assert_eq!(granted_scopes(&client, None).unwrap(), ["A/x", "A/y"]);
        assert_eq!(granted_scopes(&client, Some("A/y A/y")).unwrap(), ["A/y"]);
        assert_eq!(
            granted_scopes(&client, Some("A/z")).unwrap_err().code,
            "invalid_scope"
        );
    }
}
