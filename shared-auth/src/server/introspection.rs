//! Opaque access tokens, checked at the issuer's introspection endpoint (RFC 7662), with
//! the optional signed JWT answer of RFC 9701.
//!
//! With an [`IntrospectionConfig`] in [`ValidatorConfig::introspection`], a token that is
//! not a compact JWS goes to the introspection endpoint instead of being refused as
//! malformed; JWTs are validated locally exactly as without it, and never introspected.
//!
//! - **Endpoint**: configured, or the `introspection_endpoint` of the issuer's discovery
//!   document (discovered on first use, then kept).
//! - **Caller authentication**: the base layer's client authentication (`endpoint_auth`,
//!   the same the token endpoint uses) with a [`ClientCredential`]:
//!   `client_secret_basic` / `client_secret_post` (per [`CredentialStyle`]),
//!   `private_key_jwt` (audience: the issuer) or an assertion file.
//! - **Cache** (moka, keyed by the SHA-256 of the token, never the token): an active answer
//!   is kept until `min(exp, max_cache)`, an inactive one (or one this API refuses: wrong
//!   issuer, audience, client) for `negative_cache`. **The cache window**: a token revoked
//!   at the issuer is still accepted for up to `max_cache` (default 5 minutes) after it
//!   was last introspected; set `max_cache` to what the API can afford. Concurrent checks
//!   of one token share one call (moka's `or_try_insert_with`); failures are not cached.
//! - **Bound**: at most `max_concurrent` calls at once; a check that finds them all busy
//!   waits up to `wait`, then is refused 503 with `Retry-After`
//!   ([`ValidationError::Overloaded`]), like the validator's signature bound. A flood of
//!   random opaque tokens thus costs at most one call per distinct token per
//!   `negative_cache`, never more than `max_concurrent` at a time.
//! - **Answers**: `active: true` becomes a [`Principal`] after the checks that apply to an
//!   introspection answer (`iss`, when present, equals the validator's issuer; the
//!   configured audience; `exp`/`nbf` with the leeway; the profile's client allow-list;
//!   `scope` parsing; `cnf.jkt`, so the DPoP proof check applies). Inactive:
//!   [`ValidationError::Inactive`] (401 `invalid_token`). Endpoint down, a timeout, an
//!   error status, a malformed answer or an RFC 9701 answer that does not verify:
//!   [`ValidationError::IntrospectionUnavailable`] (503 with `Retry-After`, never 200,
//!   never 401).
//!
//! [`ValidatorConfig::introspection`]: super::ValidatorConfig::introspection
//! [`Principal`]: super::Principal

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::{OnceCell, Semaphore};

use super::claims::{self, Context, Rules, Source, TokenClaims};
use super::error::ValidationError;
use super::principal::Principal;
use super::token_header::is_media_type;
use crate::clock::Clock;
use crate::endpoint_auth::{ClientCredential, ClientId, CredentialStyle, printable};
use crate::jose::SignatureAlgorithm;
use crate::jose::compact::{self, Compact};
use crate::jose::json::{self, Claim};
use crate::jwks::KeyCache;

/// The media type of an RFC 9701 answer.
const INTROSPECTION_JWT: &str = "application/token-introspection+jwt";
/// Largest introspection answer read (real ones are well under 4 KiB).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// `Retry-After` when the endpoint cannot be used.
const RETRY_AFTER_SECS: u64 = 2;
/// An RFC 9701 answer older than this (beyond the leeway) is refused as stale.
const MAX_ANSWER_AGE_SECS: u64 = 60;

/// How opaque tokens are introspected. Built with [`IntrospectionConfig::new`]; every
/// other field has a default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IntrospectionConfig {
    /// The introspection endpoint. `None`: the `introspection_endpoint` of the issuer's
    /// discovery document (a validator configured with a JWKS URL must set it).
    pub endpoint: Option<String>,
    /// This API's client id at the issuer (RFC 7662 section 2.1: the caller authenticates).
    pub client_id: ClientId,
    /// How it authenticates.
    pub credential: ClientCredential,
    /// How a secret is sent (HTTP Basic by default).
    pub credential_style: CredentialStyle,
    /// An active answer is cached until `min(exp, max_cache)` (default 5 minutes). This is
    /// the revocation window: a revoked token stays accepted for up to this long.
    pub max_cache: Duration,
    /// An inactive (or refused) answer is cached this long (default 10 s).
    pub negative_cache: Duration,
    /// Ask for the signed RFC 9701 answer and verify it with the issuer's keys (from the
    /// validator's key cache): `typ`, `iss`, `aud` = [`client_id`](Self::client_id), a
    /// fresh `iat` (default false).
    pub jwt_response: bool,
    /// At most this many introspection calls at once (default 8; at least 1).
    pub max_concurrent: usize,
    /// How long a check waits for a free call before 503 (default 50 ms).
    pub wait: Duration,
    /// Timeout of one introspection call (default 5 s).
    pub http_timeout: Duration,
    /// Entries the cache holds at most (default 10,000).
    pub cache_capacity: u64,
    /// Accept introspected tokens whatever their audience (default false). An answer says
    /// `active` for any token the issuer issued, to any API; without an audience to check,
    /// a token meant for another API passes here. So a validator with introspection and no
    /// audience does not start unless this is set (and then it says so in the log).
    pub any_audience: bool,
}

impl IntrospectionConfig {
    /// Introspect as `client_id` with `credential`, at the discovered endpoint, with the
    /// defaults.
    pub fn new(client_id: ClientId, credential: impl Into<ClientCredential>) -> Self {
        IntrospectionConfig {
            endpoint: None,
            client_id,
            credential: credential.into(),
            credential_style: CredentialStyle::default(),
            max_cache: Duration::from_secs(300),
            negative_cache: Duration::from_secs(10),
            jwt_response: false,
            max_concurrent: 8,
            wait: Duration::from_millis(50),
            http_timeout: Duration::from_secs(5),
            cache_capacity: 10_000,
            any_audience: false,
        }
    }

    /// Uses `endpoint` instead of discovering it.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

/// What an introspection said of one token.
#[derive(Clone)]
enum Outcome {
    Active(Principal),
    Refused(ValidationError),
}

/// What the cache holds for one token: the outcome, and until when (Unix ms, by the
/// validator's clock) it may be served: positive until `min(exp, max_cache)`, negative
/// for `negative_cache`. The window is judged by the validator's clock on every read, so
/// tests move it instead of waiting; moka's own timer (the same lifetimes, in real time)
/// only bounds how long memory is held.
#[derive(Clone)]
struct Cached {
    outcome: Outcome,
    until_ms: u64,
}

/// moka's per-entry lifetime: the entry's window, in real time from its insertion.
struct CachedExpiry {
    clock: Arc<dyn Clock>,
}

impl moka::Expiry<[u8; 32], Cached> for CachedExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Cached,
        _created_at: Instant,
    ) -> Option<Duration> {
        let now = self.clock.now_unix_ms();
        Some(Duration::from_millis(value.until_ms.saturating_sub(now)))
    }
}

/// The checks an answer must pass, from the validator's configuration.
pub(crate) struct Checks {
    /// The main issuer's rules: audience, client allow-list, scope aliases (the same
    /// claims-to-principal path as its JWTs).
    pub(crate) rules: Rules,
    pub(crate) leeway: Duration,
    /// Algorithms an RFC 9701 answer may be signed with.
    pub(crate) algorithms: Vec<SignatureAlgorithm>,
    /// The discovery document to take the endpoint from, when none is configured.
    pub(crate) discovery_url: Option<String>,
    pub(crate) allow_insecure_http: bool,
    /// The validator's clock.
    pub(crate) clock: Arc<dyn Clock>,
}

/// Introspects opaque tokens, with the cache, single flight and the call bound.
pub(crate) struct Introspector {
    config: IntrospectionConfig,
    checks: Checks,
    http: reqwest::Client,
    keys: Arc<KeyCache>,
    endpoint: OnceCell<String>,
    cache: moka::future::Cache<[u8; 32], Cached>,
    calls: Semaphore,
    /// Since when (Unix ms, validator clock) the issuer has refused this API's credentials
    /// on every call; 0 while it accepts them.
    refused_since_ms: AtomicU64,
    /// When readiness last probed the endpoint (Unix ms), while the credentials are refused.
    probed_ms: AtomicU64,
}

/// Why an introspection call gave no answer.
enum Failure {
    /// Down, timed out, an error status, an answer that cannot be read or verified.
    Unavailable(String),
    /// The issuer refused this API's client authentication (401, or `invalid_client`):
    /// no call will succeed until the credentials are fixed.
    ClientRefused(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure::Unavailable(reason)
    }
}

/// How often readiness probes an endpoint that refuses the credentials.
const PROBE_INTERVAL_MS: u64 = 10_000;

fn unavailable() -> ValidationError {
    ValidationError::IntrospectionUnavailable {
        retry_after: RETRY_AFTER_SECS,
    }
}

fn counted(outcome: &'static str) {
    metrics::counter!(crate::metrics::INTROSPECTIONS, "outcome" => outcome).increment(1);
}

impl Introspector {
    pub(crate) fn new(
        config: IntrospectionConfig,
        checks: Checks,
        keys: Arc<KeyCache>,
    ) -> Result<Self, String> {
        if matches!(config.credential, ClientCredential::TlsClientCertificate(_)) {
            // Its calls would go without the certificate: refused, not sent bare.
            return Err(
                "introspection does not authenticate with a client certificate; use a secret,                  private_key_jwt or an assertion file"
                    .into(),
            );
        }
        if let Some(endpoint) = &config.endpoint {
            crate::issuer_http::check_url(endpoint, checks.allow_insecure_http)
                .map_err(|e| format!("introspection endpoint: {e}"))?;
        } else if checks.discovery_url.is_none() {
            return Err(
                "the introspection endpoint must be configured when the issuer is given by a \
                 JWKS URL (no discovery document to find it in)"
                    .into(),
            );
        }
        let http = crate::issuer_http::client(
            Some(config.http_timeout),
            config.http_timeout.min(Duration::from_secs(5)),
        )
        .map_err(|e| format!("HTTP client for introspection: {e}"))?;
        let cache = moka::future::Cache::builder()
            .max_capacity(config.cache_capacity)
            .expire_after(CachedExpiry {
                clock: checks.clock.clone(),
            })
            .build();
        let endpoint = OnceCell::new();
        if let Some(configured) = &config.endpoint {
            let _ = endpoint.set(configured.clone());
        }
        Ok(Introspector {
            calls: Semaphore::new(config.max_concurrent.max(1)),
            config,
            checks,
            http,
            keys,
            endpoint,
            cache,
            refused_since_ms: AtomicU64::new(0),
            probed_ms: AtomicU64::new(0),
        })
    }

    /// Whether the issuer refused this API's credentials on the last call (readiness: every
    /// opaque token would get 503).
    pub(crate) fn credentials_refused(&self) -> bool {
        self.refused_since_ms.load(Ordering::Relaxed) != 0
    }

    /// Whether readiness should probe the endpoint now (at most every 10 s by the
    /// validator's clock, and only while the credentials are refused): a replica out of
    /// rotation gets no traffic, so no call of its own would notice the fix.
    pub(crate) fn probe_due(&self) -> bool {
        let now = self.checks.clock.now_unix_ms();
        let last = self.probed_ms.load(Ordering::Relaxed);
        self.credentials_refused()
            && now.saturating_sub(last) >= PROBE_INTERVAL_MS
            && self
                .probed_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Introspects a random token (RFC 7662: an unknown token is `active: false`, with
    /// the credentials accepted), to learn whether the credentials are accepted again.
    pub(crate) async fn probe(&self) {
        let token = crate::jose::compact::random(16);
        let result = self.request(&format!("readiness-probe-{token}")).await;
        self.account(result.as_ref().map(|_| ()));
    }

    /// Keeps the credentials' state from a call's result, and logs when it changes: once
    /// when the issuer starts refusing them (with its `error` and `error_description`),
    /// once when it accepts them again.
    fn account(&self, result: Result<(), &Failure>) {
        match result {
            Err(Failure::ClientRefused(reason)) => {
                let now = self.checks.clock.now_unix_ms().max(1);
                if self
                    .refused_since_ms
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    // The first probe comes an interval after the refusal.
                    self.probed_ms.store(now, Ordering::Relaxed);
                    tracing::error!(
                        %reason,
                        "the issuer refuses this API's introspection credentials: opaque \
                         tokens get 503 and the service is not ready until they are fixed"
                    );
                }
            }
            Ok(()) => {
                if self.refused_since_ms.swap(0, Ordering::Relaxed) != 0 {
                    tracing::info!("the issuer accepts this API's introspection credentials again");
                }
            }
            Err(Failure::Unavailable(_)) => {}
        }
    }

    /// The caller for an opaque token: from the cache, from a call another check has in
    /// flight, or from a new call.
    pub(crate) async fn validate(&self, token: &str) -> Result<Principal, ValidationError> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        // At most twice: an entry found past its window by the validator's clock is
        // dropped and the token introspected again (one shared call, as on a miss).
        let mut cached = None;
        for _ in 0..2 {
            let entry = self
                .cache
                .entry(key)
                .or_try_insert_with(self.call(token))
                .await
                .map_err(|e| *e)?;
            let fresh = entry.is_fresh();
            let value = entry.into_value();
            if !fresh && value.until_ms <= self.checks.clock.now_unix_ms() {
                self.cache.invalidate(&key).await;
                continue;
            }
            if !fresh {
                metrics::counter!(crate::metrics::INTROSPECTION_CACHE_HITS).increment(1);
            }
            cached = Some(value);
            break;
        }
        let Some(Cached { outcome, .. }) = cached else {
            return Err(unavailable());
        };
        match outcome {
            Outcome::Active(principal)
                if principal
                    .expires_at()
                    .saturating_add(self.checks.leeway.as_secs())
                    < self.checks.clock.now_unix_ms() / 1000 =>
            {
                Err(ValidationError::Expired)
            }
            Outcome::Active(principal) => Ok(principal),
            Outcome::Refused(error) => Err(error),
        }
    }

    /// One introspection call within the bound. `Err`: not cached (try again).
    async fn call(&self, token: &str) -> Result<Cached, ValidationError> {
        let _permit = match self.calls.try_acquire() {
            Ok(permit) => permit,
            Err(_) => match tokio::time::timeout(self.config.wait, self.calls.acquire()).await {
                Ok(Ok(permit)) => permit,
                _ => {
                    counted("overloaded");
                    return Err(ValidationError::Overloaded { retry_after: 1 });
                }
            },
        };
        let result = self.request(token).await;
        self.account(result.as_ref().map(|_| ()));
        let answer = match result {
            Ok(answer) => answer,
            Err(Failure::ClientRefused(_)) => {
                // Logged once by `account`, while it lasts; counted every time.
                counted("unauthenticated");
                return Err(unavailable());
            }
            Err(Failure::Unavailable(reason)) => {
                // The reason names the endpoint's fault, never the token.
                tracing::warn!(%reason, "token introspection failed");
                counted("error");
                return Err(unavailable());
            }
        };
        let outcome = self.outcome(answer)?;
        counted(match outcome {
            Outcome::Active(_) => "active",
            Outcome::Refused(_) => "inactive",
        });
        let now = self.checks.clock.now_unix_ms();
        let window = match &outcome {
            Outcome::Active(p) => {
                let left = p.expires_at().saturating_mul(1000).saturating_sub(now);
                Duration::from_millis(left).min(self.config.max_cache)
            }
            Outcome::Refused(_) => self.config.negative_cache,
        };
        let until_ms = now.saturating_add(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        Ok(Cached { outcome, until_ms })
    }

    async fn endpoint(&self) -> Result<&str, String> {
        self.endpoint
            .get_or_try_init(|| async {
                let url = self.checks.discovery_url.as_deref().unwrap_or_default();
                // The key cache knows the issuer once its own discovery ran; until then the
                // document cannot be checked, so wait for that.
                let issuer = self
                    .keys
                    .issuer()
                    .ok_or_else(|| "the issuer is not known yet (discovery pending)".to_owned())?;
                let metadata = crate::discovery::fetch(
                    &self.http,
                    url,
                    Some(issuer),
                    self.checks.allow_insecure_http,
                    self.config.http_timeout,
                    crate::discovery::Need::Introspection,
                )
                .await
                .map_err(|e| e.to_string())?;
                metadata.introspection_endpoint.ok_or_else(|| {
                    format!("the discovery document at {url} has no introspection_endpoint")
                })
            })
            .await
            .map(String::as_str)
    }

    /// Sends the request; the answer's RFC 7662 object, verified if signed.
    async fn request(&self, token: &str) -> Result<Map<String, Value>, Failure> {
        let endpoint = self.endpoint().await?;
        let config = &self.config;
        let mut form: Vec<(&str, String)> = vec![
            ("token", token.to_owned()),
            ("token_type_hint", "access_token".to_owned()),
        ];
        let accept = if config.jwt_response {
            INTROSPECTION_JWT
        } else {
            "application/json"
        };
        let request = self
            .http
            .post(endpoint)
            .header(reqwest::header::ACCEPT, accept);
        // private_key_jwt's audience: the issuer when known, else the endpoint.
        let audience = match &config.credential {
            ClientCredential::PrivateKeyJwt {
                audience: Some(audience),
                ..
            } => audience.as_str(),
            _ => self.keys.issuer().unwrap_or(endpoint),
        };
        let caller = crate::endpoint_auth::Caller {
            client_id: &config.client_id,
            credential: &config.credential,
            style: config.credential_style,
            audience,
        };
        let request = crate::endpoint_auth::authenticate(
            request,
            &mut form,
            &caller,
            "introspection",
            self.checks.clock.now_unix_ms(),
        )
        .await
        .map_err(|e| match e {
            crate::endpoint_auth::AuthError::Unencodable => {
                "unencodable client credentials".to_owned()
            }
            crate::endpoint_auth::AuthError::Assertion(reason) => {
                format!("client assertion: {reason}")
            }
        })?;
        let response = crate::issuer_http::send(request.form(&form))
            .await
            .map_err(|e| format!("POST {endpoint}: {}", without_url(&e)))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        let body = crate::issuer_http::read_capped(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| format!("POST {endpoint}: {e}"))?;
        if !status.is_success() {
            return Err(refusal(endpoint, status, &body));
        }
        if config.jwt_response {
            let jwt = std::str::from_utf8(&body)
                .map_err(|_| "the RFC 9701 answer is not text".to_owned())?;
            // RFC 9701 section 5: the signed answer has its own media type. An answer of
            // another type that is not a JWS is most likely the plain JSON answer of an
            // issuer that does not sign answers for this client: say so.
            match self.verified_answer(jwt.trim()).await {
                Err(reason)
                    if !is_media_type(&content_type, "token-introspection+jwt")
                        && Compact::split(jwt.trim()).is_err() =>
                {
                    Err(Failure::Unavailable(format!(
                        "POST {endpoint}: a signed answer ({INTROSPECTION_JWT}, RFC 9701) was \
                         expected, and the answer has content type {content_type:?} ({reason}); \
                         does the issuer sign introspection answers for this client?"
                    )))
                }
                answer => Ok(answer?),
            }
        } else {
            Ok(json::parse_map(&body)
                .map_err(|_| format!("POST {endpoint}: the answer is not a JSON object"))?)
        }
    }

    /// Verifies an RFC 9701 answer (section 5) with the issuer's keys; its
    /// `token_introspection` object.
    async fn verified_answer(&self, jwt: &str) -> Result<Map<String, Value>, String> {
        let bad = |what: &str| format!("the RFC 9701 answer {what}");
        let parts = Compact::split(jwt).map_err(|_| bad("is not a JWS"))?;
        let decode = |part: &str| compact::decode(part).map_err(|_| bad("is not base64url"));
        let header_bytes = decode(parts.header)?;
        let header = json::parse_header(&header_bytes).map_err(|_| bad("header is not JSON"))?;
        if !header
            .typ()
            .is_some_and(|t| is_media_type(t, "token-introspection+jwt"))
        {
            return Err(bad("typ is not token-introspection+jwt"));
        }
        if header.crit {
            return Err(bad("has critical header extensions"));
        }
        let alg = header
            .alg()
            .and_then(SignatureAlgorithm::from_name)
            .filter(|a| self.checks.algorithms.contains(a))
            .ok_or_else(|| bad("alg is not accepted"))?;
        let key = self
            .keys
            .key_for(header.kid())
            .await
            .map_err(|_| bad("is signed with an unknown key"))?;
        let signature = decode(parts.signature)?;
        if !key.accepts(alg) || !key.verifies(alg, parts.signing_input.as_bytes(), &signature) {
            return Err(bad("signature does not verify with the issuer's keys"));
        }
        let payload = decode(parts.payload)?;
        let claims: AnswerClaims<'_> =
            json::parse(&payload).map_err(|_| bad("payload is not JSON"))?;
        let issuer = self
            .keys
            .issuer()
            .ok_or_else(|| bad("cannot be checked yet"))?;
        if claims.iss.as_ref().and_then(Claim::as_str) != Some(issuer) {
            return Err(bad("iss is not the issuer"));
        }
        let me = self.config.client_id.as_str();
        let for_me = match &claims.aud {
            Some(Claim::Str(aud)) => aud == me,
            Some(Claim::Other(Value::Array(auds))) => auds.iter().any(|a| a.as_str() == Some(me)),
            _ => false,
        };
        if !for_me {
            return Err(bad("aud is not this API's client id"));
        }
        let now = self.checks.clock.now_unix_ms() as f64 / 1000.0;
        let leeway = self.checks.leeway.as_secs_f64();
        let iat = claims
            .iat
            .as_ref()
            .and_then(Claim::numeric_date)
            .ok_or_else(|| bad("has no iat"))?;
        if iat > now + leeway || iat + MAX_ANSWER_AGE_SECS as f64 + leeway < now {
            return Err(bad("iat is not fresh"));
        }
        match claims.token_introspection {
            Some(Claim::Other(Value::Object(answer))) => Ok(answer),
            _ => Err(bad("has no token_introspection object")),
        }
    }

    /// The checks of an RFC 7662 object. `Err` only when the validator cannot check now.
    fn outcome(&self, answer: Map<String, Value>) -> Result<Outcome, ValidationError> {
        if answer.get("active") != Some(&Value::Bool(true)) {
            return Ok(Outcome::Refused(ValidationError::Inactive));
        }
        match self.principal(&answer) {
            Ok(parts) => {
                // The answer is the claims a handler sees (`Principal::claims`).
                let payload = serde_json::to_vec(&answer).unwrap_or_default();
                Ok(Outcome::Active(Principal::from_token(parts, payload)))
            }
            Err(ValidationError::IntrospectionUnavailable { retry_after }) => {
                Err(ValidationError::IntrospectionUnavailable { retry_after })
            }
            Err(refused) => Ok(Outcome::Refused(refused)),
        }
    }

    fn principal(
        &self,
        answer: &Map<String, Value>,
    ) -> Result<super::principal::PrincipalParts, ValidationError> {
        let source = Source::Introspection {
            max_cache: self.config.max_cache,
            retry_after: RETRY_AFTER_SECS,
        };
        let context = Context {
            issuer: self.keys.shared_issuer(),
            // The main issuer's (see `JwtValidator::new`).
            index: 0,
            now_ms: self.checks.clock.now_unix_ms(),
            leeway: self.checks.leeway,
        };
        claims::principal(
            &self.checks.rules,
            &TokenClaims::from_map(answer),
            &source,
            &context,
        )
    }
}

crate::jose::json::claims! {
    /// The claims of an RFC 9701 answer that are checked.
    struct AnswerClaims {
        iss = "iss",
        aud = "aud",
        iat = "iat",
        token_introspection = "token_introspection",
    }
}

/// Why the endpoint answered `status`: the issuer's own `error` and `error_description`
/// (RFC 6749 section 5.2, which introspection endpoints use for client authentication)
/// when the body has them, printable and bounded. 401, or `invalid_client`, is a refusal
/// of this API's credentials.
fn refusal(endpoint: &str, status: reqwest::StatusCode, body: &[u8]) -> Failure {
    let answer = crate::endpoint_auth::ErrorAnswer::parse(body);
    let error = answer.as_ref().map(|a| printable(&a.error));
    let mut reason = format!("POST {endpoint}: status {status}");
    if let Some(error) = &error {
        reason.push_str(&format!(", error {error:?}"));
    }
    if let Some(description) = answer.as_ref().and_then(|a| a.error_description.as_deref()) {
        reason.push_str(&format!(" ({})", printable(description)));
    }
    if status == reqwest::StatusCode::UNAUTHORIZED || error.as_deref() == Some("invalid_client") {
        Failure::ClientRefused(reason)
    } else {
        Failure::Unavailable(reason)
    }
}

/// A transport error's text without the URL reqwest puts in it (the caller names the
/// endpoint once).
fn without_url(e: &reqwest_middleware::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "transport error".to_owned()
    }
}
