//! One token request (RFC 6749: the client credentials grant of section 4.4, and for user
//! tokens the authorization code and refresh token grants of sections 4.1.3 and 6), and the
//! retry policy around it.
//!
//! Timeouts, connection errors, 5xx and 429 are retried with jittered exponential backoff
//! (backon); 4xx answers are final and carry the issuer's RFC 6749 `error` and
//! `error_description`. The whole exchange, retries included, is bounded by a total budget,
//! so no caller waits for ever.
//!
//! The answer is not taken on trust: redirects are refused (a 307 would resend the form,
//! secret included, elsewhere), the body is read with a streamed cap, and `expires_in` is
//! clamped into [[`MIN_LIFETIME`], [`MAX_LIFETIME`]] with a warning when it is missing
//! (then the manager's default applies), zero, negative, fractional or absurd.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use serde::Deserialize;

use super::credentials::{AccessToken, ClientCredentialsClient};
use super::error::TokenError;
use crate::clock::Clock;
use crate::endpoint_auth::{self, AuthError, ErrorAnswer};
use crate::scope::ScopeSet;

/// Largest token response accepted.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The shortest lifetime a token is given, whatever `expires_in` says (1 s). Never more:
/// a token is not used past the expiry its issuer set.
pub const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// The longest lifetime a token is given, whatever `expires_in` says (one day).
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How token requests are retried and bounded.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Timeout of one attempt (default 5 s).
    pub attempt_timeout: Duration,
    /// Retries after the first attempt (default 3).
    pub max_retries: usize,
    /// First backoff delay (default 100 ms); doubles each time, with jitter.
    pub min_delay: Duration,
    /// Largest backoff delay (default 1 s).
    pub max_delay: Duration,
    /// Hard bound on the whole exchange, retries included (default 10 s).
    pub total_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // With the issuer down (connection refused) a caller learns it in about 0.8 s; a
        // slow issuer still has 5 s per attempt.
        RetryPolicy {
            attempt_timeout: Duration::from_secs(5),
            max_retries: 3,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            total_budget: Duration::from_secs(10),
        }
    }
}

/// What the issuer granted. Its `Debug` shows no token.
#[derive(Clone)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: AccessToken,
    pub(crate) expires_in: Option<Duration>,
    pub(crate) token_type: TokenType,
    /// A refresh token (user grants), never logged.
    pub(crate) refresh_token: Option<String>,
    /// An ID token (the authorization code grant with `openid`).
    pub(crate) id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

/// The start of a transport error's reason when the connection was never made (so the
/// request never reached the issuer).
pub(crate) const CONNECTION_FAILED: &str = "connection failed";

/// What is asked for at the token endpoint.
#[derive(Clone, Copy)]
pub(crate) enum Grant<'a> {
    /// RFC 6749 section 4.4.
    ClientCredentials {
        scope: &'a ScopeSet,
        resource: Option<&'a str>,
        /// Extra form parameters (the client's own with the request's).
        extra: &'a BTreeMap<String, String>,
    },
    /// RFC 6749 section 4.1.3, with the PKCE verifier (RFC 7636 section 4.5).
    AuthorizationCode {
        code: &'a str,
        redirect_uri: &'a str,
        verifier: &'a str,
    },
    /// RFC 6749 section 6.
    RefreshToken {
        refresh_token: &'a str,
        scope: &'a ScopeSet,
        resource: Option<&'a str>,
        /// Extra form parameters (the client's own with the request's).
        extra: &'a BTreeMap<String, String>,
    },
    /// RFC 8693 section 2.1: a token for `subject_token`'s subject, issued to this
    /// client (for a Transaction Token, `requested_token_type` says so).
    TokenExchange {
        subject_token: &'a str,
        actor_token: Option<&'a str>,
        requested_token_type: &'a str,
        scope: &'a ScopeSet,
        resource: Option<&'a str>,
        /// Extra form parameters: the client's own, `audience`, and for a Transaction
        /// Token its `request_context` and `request_details`.
        extra: &'a BTreeMap<String, String>,
    },
}

/// RFC 8693 section 3: the token type URI of an access token (subject, actor, and what an
/// exchange asks for by default).
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The token type URI of a Transaction Token (draft-ietf-oauth-transaction-tokens).
pub(crate) const TXN_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:txn_token";
/// RFC 8693 section 2.1's grant type.
pub(crate) const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Form parameters that only the grant itself and client authentication may set: an extra
/// parameter by one of these names would send it twice, or replace what the library
/// decided (a tenant header must not become a second `scope` or a `client_id`).
const RESERVED_PARAMETERS: &[&str] = &[
    "grant_type",
    "scope",
    "resource",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "assertion",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "username",
    "password",
    "device_code",
];

/// Refuses extra parameters that collide with the grant's own (compared without case: an
/// issuer may read `Scope` as `scope`), or that are empty names. `audience` is allowed: it
/// is how Auth0 and others name the API a client-credentials token is for.
pub(crate) fn check_extra_params(extra: &BTreeMap<String, String>) -> Result<(), String> {
    for name in extra.keys() {
        if name.is_empty() {
            return Err("an extra token request parameter has an empty name".into());
        }
        if RESERVED_PARAMETERS
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(name))
        {
            return Err(format!(
                "the extra token request parameter {name:?} is the grant's own; set scope and \
                 resource through their fields, the rest is decided by the library"
            ));
        }
    }
    Ok(())
}

impl Grant<'_> {
    /// Whether a failed attempt may be sent again. A code is single-use, and a rotating
    /// refresh token presented twice looks like theft to the issuer (it revokes the whole
    /// family): an attempt that may have reached the issuer is never repeated for those.
    fn repeatable(&self) -> bool {
        // An exchange consumes nothing: asked again, the issuer answers again.
        matches!(
            self,
            Grant::ClientCredentials { .. } | Grant::TokenExchange { .. }
        )
    }

    /// Whether the answer is a Transaction Token, whose `token_type` is `N_A` (it is no
    /// access token: it travels in its own header, never in `Authorization`).
    fn wants_txn_token(&self) -> bool {
        matches!(self, Grant::TokenExchange { requested_token_type, .. } if *requested_token_type == TXN_TOKEN_TYPE)
    }
}

/// How a token is presented (RFC 6750 `Bearer`, or RFC 9449 `DPoP` with a proof).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum TokenType {
    /// `Authorization: Bearer <token>`.
    #[default]
    Bearer,
    /// `Authorization: DPoP <token>` and a `DPoP` proof header on every request.
    #[serde(rename = "DPoP")]
    DPoP,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(serde_json::Number),
    Text(String),
}

#[derive(Deserialize)]
struct SuccessBody {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<Seconds>,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

/// Requests a token, retrying per `policy` (never for a code or a refresh token, see
/// [`Grant`]).
pub(crate) async fn request_token(
    http: &reqwest::Client,
    client: &ClientCredentialsClient,
    grant: Grant<'_>,
    policy: &RetryPolicy,
    client_name: &str,
    clock: &dyn Clock,
) -> Result<TokenResponse, TokenError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(if grant.repeatable() {
            policy.max_retries
        } else {
            0
        })
        .with_jitter();
    let exchange = Exchange {
        http,
        client,
        grant,
        timeout: policy.attempt_timeout,
        client_name,
        clock,
    };
    let attempt = || exchange.attempt();
    let retrying = attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(TokenError::is_retryable)
        .notify(|error, delay| {
            tracing::debug!(client = client_name, %error, retry_in_ms = delay.as_millis() as u64, "token request failed, retrying");
        });
    tokio::time::timeout(policy.total_budget, retrying)
        .await
        .unwrap_or(Err(TokenError::Timeout(policy.total_budget)))
}

/// What one token request is made of.
struct Exchange<'a> {
    http: &'a reqwest::Client,
    client: &'a ClientCredentialsClient,
    grant: Grant<'a>,
    /// Of one attempt.
    timeout: Duration,
    client_name: &'a str,
    /// The manager's clock: the `iat` of assertions and DPoP proofs.
    clock: &'a dyn Clock,
}

/// One exchange's outcome short of a token.
enum Attempt {
    Failed(TokenError),
    /// `use_dpop_nonce` with a nonce that is now remembered.
    NewNonce,
}

impl Attempt {
    fn into_error(self) -> TokenError {
        match self {
            Attempt::Failed(e) => e,
            Attempt::NewNonce => TokenError::Rejected {
                status: 400,
                error: "use_dpop_nonce".into(),
                description: None,
            },
        }
    }
}

impl From<TokenError> for Attempt {
    fn from(e: TokenError) -> Self {
        Attempt::Failed(e)
    }
}

impl Exchange<'_> {
    /// One attempt of the retry loop. RFC 9449 section 8: a token endpoint that wants a nonce
    /// refuses with `use_dpop_nonce` and sends one; the request is made again, once, with it.
    async fn attempt(&self) -> Result<TokenResponse, TokenError> {
        let client_name = self.client_name;
        match self.send().await {
            Err(Attempt::NewNonce) => {
                tracing::debug!(
                    client = client_name,
                    "the token endpoint asked for a DPoP nonce; asking again with it"
                );
                metrics::counter!(crate::metrics::DPOP_NONCE_RETRIES, "client" => client_name.to_owned(), "at" => "token_endpoint").increment(1);
                match self.send().await {
                    Err(Attempt::NewNonce) => Err(TokenError::Rejected {
                        status: 400,
                        error: "use_dpop_nonce".into(),
                        description: Some(
                            "the token endpoint asked for a new DPoP nonce twice in a row".into(),
                        ),
                    }),
                    other => other.map_err(Attempt::into_error),
                }
            }
            other => other.map_err(Attempt::into_error),
        }
    }

    /// Sends the request once.
    async fn send(&self) -> Result<TokenResponse, Attempt> {
        let Exchange {
            http,
            client,
            grant,
            timeout,
            client_name,
            clock,
        } = *self;
        let mut form: Vec<(&str, String)> = Vec::with_capacity(6);
        let (scope, resource, extra) = match grant {
            Grant::ClientCredentials {
                scope,
                resource,
                extra,
            } => {
                form.push(("grant_type", "client_credentials".to_owned()));
                (Some(scope), resource, extra)
            }
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
            } => {
                form.push(("grant_type", "authorization_code".to_owned()));
                form.push(("code", code.to_owned()));
                form.push(("redirect_uri", redirect_uri.to_owned()));
                form.push(("code_verifier", verifier.to_owned()));
                (None, None, &client.extra_params)
            }
            Grant::RefreshToken {
                refresh_token,
                scope,
                resource,
                extra,
            } => {
                form.push(("grant_type", "refresh_token".to_owned()));
                form.push(("refresh_token", refresh_token.to_owned()));
                (Some(scope), resource, extra)
            }
            Grant::TokenExchange {
                subject_token,
                actor_token,
                requested_token_type,
                scope,
                resource,
                extra,
            } => {
                form.push(("grant_type", TOKEN_EXCHANGE_GRANT.to_owned()));
                form.push(("subject_token", subject_token.to_owned()));
                form.push(("subject_token_type", ACCESS_TOKEN_TYPE.to_owned()));
                if let Some(actor) = actor_token {
                    form.push(("actor_token", actor.to_owned()));
                    form.push(("actor_token_type", ACCESS_TOKEN_TYPE.to_owned()));
                }
                form.push(("requested_token_type", requested_token_type.to_owned()));
                (Some(scope), resource, extra)
            }
        };
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            form.push(("scope", scope.to_string()));
        }
        if let Some(resource) = resource {
            form.push(("resource", resource.to_owned()));
        }
        for (k, v) in extra {
            form.push((k.as_str(), v.clone()));
        }
        // Mutual TLS: a client of its own, presenting the certificate read now.
        let http = client
            .credential
            .http(http, timeout)
            .await
            .map_err(TokenError::Credential)?;
        let request = http
            .post(&client.token_endpoint)
            .timeout(timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        let caller = endpoint_auth::Caller {
            client_id: &client.client_id,
            credential: &client.credential,
            style: client.credential_style,
            audience: client.assertion_audience(),
        };
        let mut request = endpoint_auth::authenticate(
            request,
            &mut form,
            &caller,
            client_name,
            clock.now_unix_ms(),
        )
        .await
        .map_err(|e| match e {
            AuthError::Unencodable => TokenError::InvalidResponse("unencodable credentials".into()),
            AuthError::Assertion(reason) => TokenError::Credential(reason),
        })?;
        let endpoint = match &client.dpop {
            None => None,
            Some(key) => {
                let url = url::Url::parse(&client.token_endpoint).map_err(|e| {
                    TokenError::Credential(format!("the token endpoint is not a URL: {e}"))
                })?;
                let (proof, nonce) =
                    key.proof("POST", &url, None, clock.now_unix_ms())
                        .map_err(|e| {
                            TokenError::Credential(format!(
                                "the DPoP proof could not be signed: {e}"
                            ))
                        })?;
                request = request.header(super::dpop::DPOP, proof);
                Some((key, url, nonce))
            }
        };
        let response = crate::issuer_http::send(request.form(&form))
            .await
            .map_err(|e| TokenError::Transport(transport_reason(&e)))?;
        let status = response.status();
        let new_nonce = endpoint.as_ref().is_some_and(|(key, url, sent)| {
            key.remember_nonce(url, response.headers(), sent.as_deref())
        });
        if status.is_redirection() {
            return Err(
                TokenError::InvalidResponse(crate::issuer_http::redirect_refused(status)).into(),
            );
        }
        let body = crate::issuer_http::read_capped(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e {
                crate::issuer_http::ReadError::TooLarge(cap) => {
                    TokenError::InvalidResponse(format!("response larger than {cap} bytes"))
                }
                crate::issuer_http::ReadError::Transport(e) => {
                    TokenError::Transport(transport_reason(&e.into()))
                }
            })?;
        if !status.is_success() {
            return Err(match ErrorAnswer::parse(&body) {
                Some(e) if e.error == "use_dpop_nonce" && new_nonce => Attempt::NewNonce,
                Some(e) => Attempt::Failed(TokenError::Rejected {
                    status: status.as_u16(),
                    error: e.error,
                    description: e.error_description,
                }),
                None => Attempt::Failed(TokenError::Http {
                    status: status.as_u16(),
                }),
            });
        }
        if grant.wants_txn_token() {
            return Ok(parse_txn_token(&body)?);
        }
        Ok(parse_success(&body, client.dpop.is_some())?)
    }
}

fn transport_reason(e: &reqwest_middleware::Error) -> String {
    // reqwest's Display names the URL, which is fine; it never includes the form body.
    if e.is_timeout() {
        format!("timed out ({e})")
    } else if e.is_connect() {
        format!("{CONNECTION_FAILED} ({e})")
    } else {
        e.to_string()
    }
}

/// Parses a successful token response. `token_type` must be `Bearer` (or absent), or
/// `DPoP` when the client sent a proof (`dpop`): a DPoP-bound token is useless to a client
/// without the key, and an issuer may still answer a DPoP request with a bearer token
/// (RFC 9449 section 5).
pub(crate) fn parse_success(body: &[u8], dpop: bool) -> Result<TokenResponse, TokenError> {
    let parsed: SuccessBody = serde_json::from_slice(body)
        .map_err(|e| TokenError::InvalidResponse(format!("not a token response: {e}")))?;
    let token_type = match parsed.token_type.as_deref() {
        None => TokenType::Bearer,
        Some(kind) if kind.eq_ignore_ascii_case("bearer") => TokenType::Bearer,
        Some(kind) if dpop && kind.eq_ignore_ascii_case("dpop") => TokenType::DPoP,
        Some(kind) => {
            return Err(TokenError::InvalidResponse(format!(
                "token_type {kind:?} is not {}",
                if dpop { "Bearer or DPoP" } else { "Bearer" }
            )));
        }
    };
    let token = parsed.access_token;
    // It goes into an Authorization header: visible ASCII only.
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::InvalidResponse(
            "access_token is empty or not header-safe".into(),
        ));
    }
    let seconds = match parsed.expires_in {
        None => None,
        Some(Seconds::Number(n)) => n.as_f64(),
        Some(Seconds::Text(t)) => Some(t.trim().parse::<f64>().map_err(|_| {
            TokenError::InvalidResponse("expires_in is not a number of seconds".into())
        })?),
    };
    let expires_in = match seconds {
        None => {
            tracing::warn!("the token response has no expires_in; the default lifetime applies");
            None
        }
        Some(s) => Some(clamp_lifetime(s)),
    };
    Ok(TokenResponse {
        access_token: AccessToken::new(token),
        expires_in,
        token_type,
        refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
        id_token: parsed.id_token,
    })
}

/// Parses the answer to a Transaction Token request: `issued_token_type` must be the
/// Transaction Token type, and `token_type` `N_A` (RFC 8693 section 2.2.1), so that an
/// issuer that ignored the request and sent an access token is not taken at its word.
fn parse_txn_token(body: &[u8]) -> Result<TokenResponse, TokenError> {
    #[derive(Deserialize)]
    struct Issued {
        issued_token_type: Option<String>,
        token_type: Option<String>,
    }
    let issued: Issued = serde_json::from_slice(body)
        .map_err(|e| TokenError::InvalidResponse(format!("not a token response: {e}")))?;
    if issued.issued_token_type.as_deref() != Some(TXN_TOKEN_TYPE) {
        return Err(TokenError::InvalidResponse(format!(
            "issued_token_type is {:?}, not {TXN_TOKEN_TYPE}",
            issued.issued_token_type
        )));
    }
    if !issued
        .token_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("N_A"))
    {
        return Err(TokenError::InvalidResponse(
            "a Transaction Token's token_type must be N_A".into(),
        ));
    }
    let mut body: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| TokenError::InvalidResponse(format!("not a token response: {e}")))?;
    body["token_type"] = serde_json::Value::from("Bearer");
    parse_success(body.to_string().as_bytes(), false)
}

/// `expires_in` seconds as a lifetime within [MIN_LIFETIME, MAX_LIFETIME], in whole
/// seconds rounded down. Anything outside (zero, negative, NaN, below a second, more than
/// a day) is clamped with a warning: a huge lifetime would keep a revoked token for ever
/// and overflow time arithmetic. A zero one is harmless for single flight (callers share
/// the flight's outcome, not the cache entry) but would be useless to cache.
fn clamp_lifetime(seconds: f64) -> Duration {
    let min = MIN_LIFETIME.as_secs_f64();
    let max = MAX_LIFETIME.as_secs_f64();
    if seconds.is_finite() && (min..=max).contains(&seconds) {
        if seconds.fract() != 0.0 {
            tracing::warn!(
                expires_in = seconds,
                "expires_in is fractional; whole seconds used"
            );
        }
        return Duration::from_secs(seconds.trunc() as u64);
    }
    let clamped = if seconds.is_finite() && seconds > max {
        MAX_LIFETIME
    } else {
        MIN_LIFETIME
    };
    tracing::warn!(
        expires_in = seconds,
        used_secs = clamped.as_secs(),
        "expires_in out of range; clamped"
    );
    clamped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_is_clamped_into_a_sane_window() {
        let life = |body: &str| parse_success(body.as_bytes(), false).unwrap().expires_in;
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":0}"#),
            Some(MIN_LIFETIME)
        );
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":-5}"#),
            Some(MIN_LIFETIME)
        );
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":0.5}"#),
            Some(MIN_LIFETIME)
        );
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":3600.7}"#),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":1e300}"#),
            Some(MAX_LIFETIME)
        );
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":18446744073709551615}"#),
            Some(MAX_LIFETIME)
        );
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":"99999999999"}"#),
            Some(MAX_LIFETIME)
        );
        assert_eq!(life(r#"{"access_token":"a"}"#), None);
        assert!(parse_success_bearer(br#"{"access_token":"a","expires_in":"soon"}"#).is_err());
    }

    fn parse_success_bearer(body: &[u8]) -> Result<TokenResponse, TokenError> {
        parse_success(body, false)
    }

    #[test]
    fn extra_parameters_may_not_name_the_grants_own_in_any_case() {
        let params =
            |name: &str| std::collections::BTreeMap::from([(name.to_owned(), "x".to_owned())]);
        for name in [
            "scope",
            "Scope",
            "CLIENT_ID",
            "grant_type",
            "subject_token",
            "",
        ] {
            assert!(check_extra_params(&params(name)).is_err(), "{name:?}");
        }
        for name in ["tenant", "audience", "organization"] {
            assert!(check_extra_params(&params(name)).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn a_dpop_token_is_taken_only_by_a_client_that_sent_a_proof() {
        let body = br#"{"access_token":"abc","token_type":"DPoP","expires_in":60}"#;
        assert!(parse_success(body, false).is_err());
        assert_eq!(
            parse_success(body, true).unwrap().token_type,
            TokenType::DPoP
        );
        let bearer = br#"{"access_token":"abc","token_type":"Bearer","expires_in":60}"#;
        assert_eq!(
            parse_success(bearer, true).unwrap().token_type,
            TokenType::Bearer
        );
    }

    #[test]
    fn parses_success_bodies_leniently_and_safely() {
        let ok = parse_success_bearer(
            br#"{"access_token":"abc","token_type":"bearer","expires_in":"3600"}"#,
        )
        .unwrap();
        assert_eq!(ok.expires_in, Some(Duration::from_secs(3600)));
        assert!(
            parse_success_bearer(br#"{"access_token":"abc"}"#)
                .unwrap()
                .expires_in
                .is_none()
        );
        assert!(parse_success_bearer(br#"{"access_token":"abc","token_type":"mac"}"#).is_err());
        assert!(parse_success_bearer(br#"{"access_token":"a b"}"#).is_err());
        assert!(parse_success_bearer(br#"{"access_token":""}"#).is_err());
        assert!(parse_success_bearer(b"<html>").is_err());
    }

    #[test]
    fn retryable_errors_are_transient_ones() {
        assert!(TokenError::Transport("x".into()).is_retryable());
        assert!(TokenError::Http { status: 502 }.is_retryable());
        assert!(TokenError::Http { status: 429 }.is_retryable());
        let rejected = |status| TokenError::Rejected {
            status,
            error: "e".into(),
            description: None,
        };
        assert!(rejected(503).is_retryable());
        assert!(!rejected(400).is_retryable());
        assert!(!rejected(401).is_retryable());
    }
}
