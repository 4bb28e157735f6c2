//! User login (OpenID Connect authorization code flow with PKCE), for a backend-for-frontend
//! that keeps its users' tokens on the server.
//!
//! `UserLogin` is one confidential OIDC client of one issuer, found by discovery (behind
//! [`UserSessions`](super::UserSessions), which is what a BFF uses):
//! - `begin` makes the authorization request: PKCE with S256 (RFC 7636;
//!   `plain` is never used), a fresh `state` and `nonce`, and the exact `redirect_uri`. The
//!   `PendingLogin` it returns is kept by the caller on the server side, bound to the
//!   browser that started the login (see [`UserSessions`](super::UserSessions)), so a
//!   callback from another browser (login CSRF) finds nothing to complete;
//! - `complete` checks the callback (`state`, and `iss` when the
//!   issuer sends it, RFC 9207), redeems the code once at the token endpoint with the
//!   client's own authentication and the PKCE verifier, and checks the ID token: its
//!   signature with the issuer's keys (the same key cache that verifies access tokens in the
//!   server half), `iss`, `aud` (this client), `azp` when present (this client; required
//!   when `aud` names several), `exp`, `iat` and the `nonce` of this login;
//! - `refresh` uses the refresh token (RFC 6749 section 6), never
//!   twice: a rotating issuer takes a second use of one refresh token for theft and ends
//!   the user's session everywhere;
//! - `revoke` (RFC 7009) and `end_session_url`
//!   (OpenID Connect RP-Initiated Logout) sign the user out at the issuer.
//!
//! Built on the crate's own JOSE core, discovery, transport policy and client
//! authentication rather than the `openidconnect` crate: that crate brings a second JOSE
//! implementation and HTTP stack, and the ID token would then be read by another parser than
//! the access tokens the server half checks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::credentials::ClientCredentialsClient;
use super::error::TokenError;
use super::token_endpoint::{Grant, RetryPolicy, TokenType, request_token};
use crate::clock::{Clock, SystemClock};
use crate::endpoint_auth::{ClientCredential, ClientId, CredentialStyle, printable};
use crate::jose::SignatureAlgorithm;
use crate::jose::compact::{self, Compact};
use crate::jose::json::{self, Claim};
use crate::jwks::{KeyCache, KeyCacheTiming, KeySource};
use crate::scope::ScopeSet;

/// How long a login may take between its start and the callback.
pub(crate) const LOGIN_WINDOW: Duration = Duration::from_secs(600);

/// The ID token algorithms accepted (asymmetric only: a client secret never verifies one).
const ID_TOKEN_ALGORITHMS: [SignatureAlgorithm; 7] = [
    SignatureAlgorithm::RS256,
    SignatureAlgorithm::RS384,
    SignatureAlgorithm::RS512,
    SignatureAlgorithm::PS256,
    SignatureAlgorithm::ES256,
    SignatureAlgorithm::ES384,
    SignatureAlgorithm::EdDSA,
];

/// What a backend-for-frontend configures to log its users in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UserLoginConfig {
    /// The issuer; discovery at `{authority}/.well-known/openid-configuration`.
    pub authority: String,
    /// This application's client id at the issuer.
    pub client_id: ClientId,
    /// How it authenticates at the token endpoint (a confidential client).
    pub credential: ClientCredential,
    /// How a secret is sent.
    pub credential_style: CredentialStyle,
    /// The callback URL, registered at the issuer (matched exactly there).
    pub redirect_uri: String,
    /// Scopes to ask for; `openid` is always added (and `offline_access` when
    /// refresh should work: most issuers only give refresh tokens
    /// then).
    pub scope: ScopeSet,
    /// Where the issuer sends the browser after sign-out (registered at the issuer).
    pub post_logout_redirect_uri: Option<String>,
    /// Plain http to a non-loopback issuer (test networks only).
    pub allow_insecure_http: bool,
    /// Timeout of each request to the issuer (default 10 s).
    pub http_timeout: Duration,
    /// Clock skew allowed on the ID token's `exp` and `iat` (default 60 s).
    pub leeway: Duration,
    /// The clock (tests move a `ManualClock`, feature `test-util`).
    pub clock: Arc<dyn Clock>,
}

impl UserLoginConfig {
    /// The defaults for everything but the issuer, the client and its callback.
    pub fn new(
        authority: impl Into<String>,
        client_id: ClientId,
        credential: impl Into<ClientCredential>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        UserLoginConfig {
            authority: authority.into(),
            client_id,
            credential: credential.into(),
            credential_style: CredentialStyle::default(),
            redirect_uri: redirect_uri.into(),
            scope: ScopeSet::new(),
            post_logout_redirect_uri: None,
            allow_insecure_http: false,
            http_timeout: Duration::from_secs(10),
            leeway: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why a login could not be completed. The text is safe to log; it never holds a token,
/// a code or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The issuer's metadata could not be read or does not allow a login.
    #[error("the issuer cannot be used for login: {0}")]
    Discovery(String),
    /// The callback does not belong to a login this browser started (no pending login,
    /// another `state`, another issuer, or too late).
    #[error("the login callback does not match a login started here: {0}")]
    Callback(&'static str),
    /// The issuer sent the user back with an error (RFC 6749 section 4.1.2.1), e.g.
    /// `access_denied`.
    #[error("the issuer refused the login: {error}")]
    Refused {
        /// The `error` code.
        error: String,
        /// `error_description`, if any.
        description: Option<String>,
    },
    /// The code could not be redeemed.
    #[error("the code could not be redeemed: {0}")]
    Token(TokenError),
    /// The ID token is not one this login can accept.
    #[error("the ID token is refused: {0}")]
    IdToken(&'static str),
}

/// A login in progress: what the callback is checked against. Kept on the server (never
/// in the browser), for at most ten minutes. Never printed.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PendingLogin {
    state: String,
    nonce: String,
    verifier: String,
    /// The local path to go back to after the login.
    pub(crate) return_to: String,
    /// When the login began (Unix ms).
    started_ms: u64,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// The query of the redirect back from the issuer (RFC 6749 section 4.1.2). Its `Debug`
/// shows no code.
#[derive(Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` sent.
    pub state: Option<String>,
    /// The issuer (RFC 9207), when it says.
    pub iss: Option<String>,
    /// An error code instead of a code.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("code", &self.code.as_ref().map(|_| "[REDACTED]"))
            .field("state", &self.state)
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A user's tokens and who the user is, as kept in the session. Never printed.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct UserTokens {
    pub(crate) access_token: String,
    pub(crate) token_type: TokenType,
    /// When the access token expires (Unix ms).
    pub(crate) expires_at_ms: u64,
    pub(crate) refresh_token: Option<String>,
    pub(crate) id_token: String,
    /// The ID token's claims (the user: `sub`, `name`, `email`, `sid`, ...).
    pub(crate) claims: Map<String, Value>,
}

impl UserTokens {
    /// The user's claims, from the ID token.
    pub(crate) fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The user's `sub`.
    pub(crate) fn subject(&self) -> &str {
        self.claims.get("sub").and_then(Value::as_str).unwrap_or("")
    }
}

impl fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserTokens")
            .field("subject", &self.subject())
            .field("expires_at_ms", &self.expires_at_ms)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

crate::jose::json::claims! {
    /// The claims of an ID token that are checked.
    struct IdTokenClaims {
        iss = "iss",
        aud = "aud",
        azp = "azp",
        exp = "exp",
        iat = "iat",
        nonce = "nonce",
        sub = "sub",
    }
}

/// One confidential OIDC client of one issuer. Cheap to clone. See the module
/// documentation.
#[derive(Clone)]
pub(crate) struct UserLogin(Arc<Inner>);

struct Inner {
    client: ClientCredentialsClient,
    issuer: String,
    authorization_endpoint: String,
    revocation_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    redirect_uri: String,
    post_logout_redirect_uri: Option<String>,
    scope: ScopeSet,
    keys: KeyCache,
    http: reqwest::Client,
    policy: RetryPolicy,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for UserLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserLogin")
            .field("issuer", &self.0.issuer)
            .field("client_id", &self.0.client.client_id)
            .finish_non_exhaustive()
    }
}

/// The longest return path kept for a login (bytes): pending logins are held for anyone
/// who asks, so each is small.
const MAX_RETURN_PATH: usize = 2048;

/// `return_to` when it is a path on this site (`/x`, not `//host` or `/\host`, no scheme)
/// of at most 2 KiB: anything else would make the login an open redirect.
pub(crate) fn local_path(return_to: &str) -> Option<&str> {
    let ok = return_to.len() <= MAX_RETURN_PATH
        && return_to.starts_with('/')
        && !return_to.starts_with("//")
        && !return_to.starts_with("/\\")
        && !return_to.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(return_to)
}

impl UserLogin {
    /// Discovers the issuer (its `issuer` must equal the authority, RFC 8414 section 3.3)
    /// and checks its endpoints against the transport policy.
    pub(crate) async fn discover(config: UserLoginConfig) -> Result<Self, LoginError> {
        let fail = |e: String| LoginError::Discovery(e);
        crate::issuer_http::check_url(&config.authority, config.allow_insecure_http)
            .map_err(|e| fail(e.to_string()))?;
        crate::issuer_http::check_url(&config.redirect_uri, config.allow_insecure_http)
            .map_err(|e| fail(format!("redirect URI: {e}")))?;
        let http = crate::issuer_http::client(Some(config.http_timeout), config.http_timeout)
            .map_err(|e| fail(e.to_string()))?;
        let url = crate::discovery::authority_url(&config.authority);
        let expected = crate::discovery::trim_slash(&config.authority).to_owned();
        let metadata = crate::discovery::fetch(
            &http,
            &url,
            Some(&expected),
            config.allow_insecure_http,
            config.http_timeout,
            crate::discovery::Need::Login,
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        let missing = |field: &str| fail(format!("the discovery document at {url} has no {field}"));
        let authorization_endpoint = metadata
            .authorization_endpoint
            .ok_or_else(|| missing("authorization_endpoint"))?;
        let token_endpoint = metadata
            .token_endpoint
            .ok_or_else(|| missing("token_endpoint"))?;
        let jwks_uri = metadata.jwks_uri.ok_or_else(|| missing("jwks_uri"))?;
        let keys = KeyCache::new(
            http.clone(),
            KeySource::Jwks(jwks_uri),
            Some(metadata.issuer.clone()),
            ID_TOKEN_ALGORITHMS.to_vec(),
            config.allow_insecure_http,
            KeyCacheTiming {
                refresh_interval: Duration::from_secs(3600),
                unknown_kid_min_interval: Duration::from_secs(10),
                http_timeout: config.http_timeout,
            },
            Box::new(|| {}),
        );
        let mut client =
            ClientCredentialsClient::new(token_endpoint, config.client_id, config.credential)
                .with_credential_style(config.credential_style);
        client.issuer = Some(metadata.issuer.clone());
        let mut scope = config.scope;
        scope.insert(crate::scope::Scope::new("openid").map_err(|e| fail(e.to_string()))?);
        let policy = RetryPolicy {
            attempt_timeout: config.http_timeout,
            total_budget: config.http_timeout,
            ..RetryPolicy::default()
        };
        Ok(UserLogin(Arc::new(Inner {
            client,
            issuer: metadata.issuer,
            authorization_endpoint,
            revocation_endpoint: metadata.revocation_endpoint,
            end_session_endpoint: metadata.end_session_endpoint,
            redirect_uri: config.redirect_uri,
            post_logout_redirect_uri: config.post_logout_redirect_uri,
            scope,
            keys,
            http,
            policy,
            leeway: config.leeway,
            clock: config.clock,
        })))
    }

    /// The issuer identifier.
    pub(crate) fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// Starts a login: the URL to send the browser to, and what its callback must match.
    /// `return_to` must be a local path (`/`, `/orders?id=1`): anything else is refused, so
    /// the login is never an open redirect.
    pub(crate) fn begin(&self, return_to: &str) -> Result<(String, PendingLogin), LoginError> {
        let return_to = local_path(return_to)
            .ok_or(LoginError::Callback("the return URL is not a local path"))?
            .to_owned();
        let pending = PendingLogin {
            state: compact::random(24),
            nonce: compact::random(24),
            verifier: compact::random(32),
            return_to,
            started_ms: self.0.clock.now_unix_ms(),
        };
        let challenge = compact::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            pending.verifier.as_bytes(),
        ));
        let mut url = url::Url::parse(&self.0.authorization_endpoint)
            .map_err(|e| LoginError::Discovery(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.0.client.client_id.as_str())
            .append_pair("redirect_uri", &self.0.redirect_uri)
            .append_pair("scope", &self.0.scope.to_string())
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), pending))
    }

    /// Completes the login that `pending` began, from the issuer's redirect back.
    pub(crate) async fn complete(
        &self,
        pending: &PendingLogin,
        callback: &Callback,
    ) -> Result<UserTokens, LoginError> {
        let now = self.0.clock.now_unix_ms();
        if now.saturating_sub(pending.started_ms) > LOGIN_WINDOW.as_millis() as u64 {
            return Err(LoginError::Callback("the login took too long"));
        }
        // The state first: an error sent to this callback by someone else is not ours.
        if callback.state.as_deref() != Some(pending.state.as_str()) {
            return Err(LoginError::Callback("the state is not this login's"));
        }
        if let Some(iss) = &callback.iss
            && crate::discovery::trim_slash(iss) != crate::discovery::trim_slash(&self.0.issuer)
        {
            return Err(LoginError::Callback("the callback names another issuer"));
        }
        if let Some(error) = &callback.error {
            return Err(LoginError::Refused {
                error: printable(error),
                description: callback.error_description.as_deref().map(printable),
            });
        }
        let code = callback
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(LoginError::Callback("the callback has no code"))?;
        let response = request_token(
            &self.0.http,
            &self.0.client,
            Grant::AuthorizationCode {
                code,
                redirect_uri: &self.0.redirect_uri,
                verifier: &pending.verifier,
            },
            &self.0.policy,
            "user-login",
            self.0.clock.as_ref(),
        )
        .await
        .map_err(LoginError::Token)?;
        let id_token = response
            .id_token
            .clone()
            .ok_or(LoginError::IdToken("the token response has no id_token"))?;
        let claims = self.check_id_token(&id_token, Some(&pending.nonce)).await?;
        Ok(self.tokens(response, id_token, claims))
    }

    /// New tokens for the user from `refresh_token` (which a rotating issuer then
    /// invalidates: never call this twice with one refresh token). `params`: a narrower
    /// scope than the login's, a resource, extra parameters, if wanted. A new ID token, when the issuer sends one, must name
    /// the same user.
    pub(crate) async fn refresh(
        &self,
        tokens: &UserTokens,
        params: &super::TokenRequestParams,
    ) -> Result<UserTokens, TokenError> {
        let refresh_token = tokens
            .refresh_token
            .as_deref()
            .ok_or_else(|| TokenError::Credential("the session has no refresh token".into()))?;
        let empty = ScopeSet::new();
        let extra = params.merged_extra(&self.0.client.extra_params);
        let response = request_token(
            &self.0.http,
            &self.0.client,
            Grant::RefreshToken {
                refresh_token,
                scope: params.scope.as_ref().unwrap_or(&empty),
                resource: params.resource.as_deref(),
                extra: &extra,
            },
            &self.0.policy,
            "user-refresh",
            self.0.clock.as_ref(),
        )
        .await?;
        let (id_token, claims) = match response.id_token.clone() {
            Some(new) => {
                let claims = self
                    .check_id_token(&new, None)
                    .await
                    .map_err(|e| TokenError::InvalidResponse(e.to_string()))?;
                if claims.get("sub") != tokens.claims.get("sub") {
                    return Err(TokenError::InvalidResponse(
                        "the refreshed ID token names another user".into(),
                    ));
                }
                (new, claims)
            }
            None => (tokens.id_token.clone(), tokens.claims.clone()),
        };
        let mut renewed = self.tokens(response, id_token, claims);
        // An issuer that does not rotate sends no new refresh token: keep the old one.
        if renewed.refresh_token.is_none() {
            renewed.refresh_token = tokens.refresh_token.clone();
        }
        Ok(renewed)
    }

    /// Revokes the user's refresh token at the issuer (RFC 7009), when it has a revocation
    /// endpoint and the tokens a refresh token. Bounded by the HTTP timeout.
    pub(crate) async fn revoke(&self, tokens: &UserTokens) -> Result<(), TokenError> {
        let (Some(endpoint), Some(refresh_token)) =
            (&self.0.revocation_endpoint, &tokens.refresh_token)
        else {
            return Ok(());
        };
        let mut form: Vec<(&str, String)> = vec![
            ("token", refresh_token.clone()),
            ("token_type_hint", "refresh_token".to_owned()),
        ];
        let client = &self.0.client;
        let caller = crate::endpoint_auth::Caller {
            client_id: &client.client_id,
            credential: &client.credential,
            style: client.credential_style,
            audience: client.assertion_audience(),
        };
        // Mutual TLS: the revocation goes with the certificate too (RFC 8705 section 2).
        let http = client
            .credential
            .http(&self.0.http, std::time::Duration::from_secs(10))
            .await
            .map_err(TokenError::Credential)?;
        let request = crate::endpoint_auth::authenticate(
            http.post(endpoint),
            &mut form,
            &caller,
            "user-logout",
            self.0.clock.now_unix_ms(),
        )
        .await
        .map_err(|e| TokenError::Credential(format!("{e:?}")))?;
        let response = crate::issuer_http::send(request.form(&form))
            .await
            .map_err(|e| TokenError::Transport(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(TokenError::Http {
                status: response.status().as_u16(),
            })
        }
    }

    /// The issuer's end-session URL for this user (RP-Initiated Logout 1.0), with the ID
    /// token as hint and the configured post-logout redirect; `None` when the issuer has
    /// no end-session endpoint.
    pub(crate) fn end_session_url(
        &self,
        tokens: &UserTokens,
        state: Option<&str>,
    ) -> Option<String> {
        let mut url = url::Url::parse(self.0.end_session_endpoint.as_deref()?).ok()?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("id_token_hint", &tokens.id_token)
                .append_pair("client_id", self.0.client.client_id.as_str());
            if let Some(uri) = &self.0.post_logout_redirect_uri {
                query.append_pair("post_logout_redirect_uri", uri);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
        }
        Some(url.into())
    }

    fn tokens(
        &self,
        response: super::token_endpoint::TokenResponse,
        id_token: String,
        claims: Map<String, Value>,
    ) -> UserTokens {
        let now = self.0.clock.now_unix_ms();
        let lifetime = response.expires_in.unwrap_or(Duration::from_secs(300));
        UserTokens {
            access_token: response.access_token.secret().to_owned(),
            token_type: response.token_type,
            expires_at_ms: now.saturating_add(lifetime.as_millis() as u64),
            refresh_token: response.refresh_token,
            id_token,
            claims,
        }
    }

    /// Checks an ID token (OpenID Connect Core section 3.1.3.7) and returns its claims.
    /// `nonce`: the login's, required to match; `None` on refresh (section 12.2: a
    /// refreshed ID token need not carry one).
    async fn check_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, LoginError> {
        let refuse = LoginError::IdToken;
        let parts = Compact::split(id_token).map_err(|_| refuse("not a compact JWS"))?;
        let header_bytes = compact::decode(parts.header).map_err(|_| refuse("not base64url"))?;
        let header = json::parse_header(&header_bytes).map_err(|_| refuse("header is not JSON"))?;
        if header.crit {
            return Err(refuse("critical header extensions"));
        }
        let alg = header
            .alg()
            .and_then(SignatureAlgorithm::from_name)
            .filter(|a| ID_TOKEN_ALGORITHMS.contains(a))
            .ok_or(refuse("alg is not accepted"))?;
        let key = self
            .0
            .keys
            .key_for(header.kid())
            .await
            .map_err(|_| refuse("signed with an unknown key"))?;
        let signature = compact::decode(parts.signature).map_err(|_| refuse("not base64url"))?;
        if !key.accepts(alg) || !key.verifies(alg, parts.signing_input.as_bytes(), &signature) {
            return Err(refuse(
                "the signature does not verify with the issuer's keys",
            ));
        }
        let payload = compact::decode(parts.payload).map_err(|_| refuse("not base64url"))?;
        let claims: IdTokenClaims<'_> =
            json::parse(&payload).map_err(|_| refuse("the claims are not a JSON object"))?;
        if claims.iss.as_ref().and_then(Claim::as_str) != Some(self.0.issuer.as_str()) {
            return Err(refuse("iss is not the issuer"));
        }
        let me = self.0.client.client_id.as_str();
        let audiences: Vec<&str> = match &claims.aud {
            Some(Claim::Str(one)) => vec![one.as_ref()],
            Some(Claim::Other(Value::Array(many))) => {
                many.iter().filter_map(Value::as_str).collect()
            }
            _ => Vec::new(),
        };
        if !audiences.contains(&me) {
            return Err(refuse("aud is not this client"));
        }
        match claims.azp.as_ref().map(Claim::as_str) {
            Some(Some(azp)) if azp == me => {}
            None if audiences.len() == 1 => {}
            _ => return Err(refuse("azp is not this client")),
        }
        let now = self.0.clock.now_unix_ms() as f64 / 1000.0;
        let leeway = self.0.leeway.as_secs_f64();
        let exp = claims
            .exp
            .as_ref()
            .and_then(Claim::numeric_date)
            .ok_or(refuse("exp is missing"))?;
        if exp + leeway < now {
            return Err(refuse("expired"));
        }
        let iat = claims
            .iat
            .as_ref()
            .and_then(Claim::numeric_date)
            .ok_or(refuse("iat is missing"))?;
        if iat > now + leeway {
            return Err(refuse("issued in the future"));
        }
        if claims
            .sub
            .as_ref()
            .and_then(Claim::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(refuse("sub is missing"));
        }
        if let Some(expected) = nonce
            && claims.nonce.as_ref().and_then(Claim::as_str) != Some(expected)
        {
            return Err(refuse("the nonce is not this login's"));
        }
        json::parse_map(&payload).map_err(|_| refuse("the claims are not a JSON object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each ID token check refuses what it should, against a real issuer's keys: the
    /// issuer signs every variant, so only the named check can refuse it.
    #[tokio::test]
    async fn an_id_token_is_refused_for_each_check_it_fails() {
        let issuer = mock_issuer::start(
            mock_issuer::IssuerConfig::new(mock_issuer::TokenProfile::Cognito).with_client(
                mock_issuer::ClientConfig::new(
                    "web",
                    "web-secret-0123456789",
                    Vec::<String>::new(),
                )
                .with_grant_types(["authorization_code"])
                .with_redirect_uris(["http://127.0.0.1:9/cb"]),
            ),
        )
        .await
        .unwrap();
        let login = UserLogin::discover(UserLoginConfig::new(
            issuer.issuer(),
            ClientId::new("web"),
            crate::endpoint_auth::ClientSecret::new("web-secret-0123456789"),
            "http://127.0.0.1:9/cb",
        ))
        .await
        .unwrap();
        let (header, _) = issuer.token_template("web", &[]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let good = serde_json::json!({
            "iss": issuer.issuer(), "sub": "alice", "aud": "web", "exp": now + 300,
            "iat": now, "nonce": "n-1",
        });
        let signed = |edit: &dyn Fn(&mut Value)| {
            let mut claims = good.clone();
            edit(&mut claims);
            issuer.sign(&header, &claims).unwrap()
        };
        let check = |token: String| {
            let login = login.clone();
            async move { login.check_id_token(&token, Some("n-1")).await }
        };
        assert!(check(signed(&|_| {})).await.is_ok());
        let refused = [
            (
                signed(&|c| c["nonce"] = "n-2".into()),
                "the nonce is not this login's",
            ),
            (
                signed(&|c| c["aud"] = "other".into()),
                "aud is not this client",
            ),
            (
                signed(&|c| c["aud"] = serde_json::json!(["web", "other"])),
                "azp is not this client",
            ),
            (
                signed(&|c| c["azp"] = "other".into()),
                "azp is not this client",
            ),
            (
                signed(&|c| c["iss"] = "https://elsewhere.example".into()),
                "iss is not the issuer",
            ),
            (signed(&|c| c["exp"] = (now - 3600).into()), "expired"),
            (
                signed(&|c| c["iat"] = (now + 3600).into()),
                "issued in the future",
            ),
            (signed(&|c| c["sub"] = "".into()), "sub is missing"),
        ];
        for (token, reason) in refused {
            assert_eq!(
                check(token).await.unwrap_err(),
                LoginError::IdToken(reason),
                "{reason}"
            );
        }
        // Several audiences with azp naming this client: accepted.
        let several = signed(&|c| {
            c["aud"] = serde_json::json!(["web", "other"]);
            c["azp"] = "web".into();
        });
        assert!(check(several).await.is_ok());
        // Not signed by the issuer's key.
        let mut forged = signed(&|_| {});
        forged.push('A');
        assert!(check(forged).await.is_err());
    }

    #[test]
    fn only_local_paths_are_return_urls() {
        for ok in ["/", "/orders?id=1", "/a/b#c"] {
            assert_eq!(local_path(ok), Some(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "",
            "/a\nb",
            "javascript:alert(1)",
            &format!("/{}", "a".repeat(MAX_RETURN_PATH)),
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }
}
