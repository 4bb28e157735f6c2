//! Access-token validation: from a compact JWT to a [`Principal`], or a reason to refuse.
//!
//! The validator holds its issuers (`issuer`), routes each token to one, and checks it:
//! the header (`token_header`), the key (`jwks`), the signature, then the claims
//! (`claims`, the path introspected tokens share). Successes are remembered
//! (`validated_cache`).
//!
//! Order of checks, each failing closed:
//! 0. issuer (only with more than one configured): the payload's unverified `iss`, a
//!    string, chooses whose keys, profile and audience apply; a token that names no
//!    trusted issuer is refused here, before any key lookup (so without a fetch);
//! 1. header: JSON with a known `alg` (`none` does not parse); no `crit` (this validator
//!    understands no extension, RFC 7515 section 4.1.11); a `typ`, if any, that names an
//!    access token or a plain JWT: `at+jwt` under `rfc9068`, and under the other profiles
//!    none of the types of other JWTs (`logout+jwt`, `secevent+jwt`, `dpop+jwt`, ...;
//!    RFC 8725 section 3.11);
//! 2. key: found by `kid` in the issuer's JWKS (see `jwks`); the header's algorithm must
//!    be one the **key** admits (its `alg`, or for a key without one, the allowed
//!    algorithms of its family), and keys outside the allow-list are never loaded. HMAC
//!    keys are never loaded at all, so "HS256 signed with the RSA public key" cannot verify;
//! 3. signature, `exp` (required), `nbf`, `aud` when an audience is configured. An
//!    audience that is configured is also *required*: jsonwebtoken accepts a token with no
//!    `aud` unless told otherwise, a classic footgun;
//! 4. `iss`: one JSON string, exactly the expected issuer (RFC 7519 section 4.1.1; an
//!    array is refused, whatever it holds); `iat` a number not in the future (beyond the
//!    leeway); duplicate claim names refused (two parsers could read different values);
//! 5. profile: `cognito` needs `token_use: "access"` and checks the optional client
//!    allow-list; `rfc9068` needs every claim RFC 9068 section 2.2 makes required (`iss`,
//!    `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`); `generic` only what is configured.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::certificate::CertificateCheck;
use super::claims::TokenProfile;
use super::claims::{self, Context, Source, TokenClaims};
use super::config::{IssuerConfig, ValidatorConfig};
use super::dpop::DpopVerifier;
use super::error::{StartError, ValidationError};
use super::introspection::{self, Introspector};
use super::issuer::{IssuerState, issuer_label, start_issuer};
use super::principal::Principal;
use super::resource_metadata::Published;
use super::token_header::{TokenHeader, Typ};
use super::validated_cache::{Entry, ValidatedCache};
use crate::clock::Clock;
use crate::issuer_http;
use crate::jose::compact::{self, Compact, STACK_PART, decode_part};
use crate::jose::json;
use crate::jwks::{KeyCacheTiming, KeyLookupError, VerifyKey};
use crate::metrics::HotCounter;

struct Inner {
    /// The trusted issuers, the configuration's own first. Never empty.
    issuers: Box<[IssuerState]>,
    leeway: Duration,
    validated: Arc<ValidatedCache>,
    /// The auth layer's per-request counters. Here, behind the validator's one `Arc`,
    /// because axum clones the layered service on every request: each `Arc` in it is a
    /// refcount both cores bump.
    metrics: LayerMetrics,
    /// Checks DPoP proofs.
    dpop: DpopVerifier,
    /// Checks the client certificate of certificate-bound tokens.
    certificates: CertificateCheck,
    /// Bounds the signature verifications running at once; `None`: unbounded.
    verifications: Option<Semaphore>,
    verification_wait: Duration,
    /// The RFC 9728 metadata, when a protected resource is configured.
    resource: Option<Published>,
    /// Checks opaque tokens, when configured.
    introspector: Option<Introspector>,
    /// The validator's one clock.
    clock: Arc<dyn Clock>,
}

/// Counters the accepting paths of the auth layer bump on every request.
pub(crate) struct LayerMetrics {
    /// Accepted tokens, one counter per issuer (labelled with it), in issuer order.
    accepted: Box<[HotCounter]>,
    pub(crate) cache_hits: HotCounter,
}

impl LayerMetrics {
    fn new(issuers: &[String]) -> Self {
        use crate::metrics::{VALIDATED_CACHE_HITS, VALIDATIONS};
        LayerMetrics {
            accepted: issuers
                .iter()
                .map(|issuer| {
                    HotCounter::new(
                        VALIDATIONS,
                        &[
                            ("outcome", "accepted"),
                            ("reason", "ok"),
                            ("issuer", issuer),
                        ],
                    )
                })
                .collect(),
            cache_hits: HotCounter::new(VALIDATED_CACHE_HITS, &[]),
        }
    }

    /// The accepted-tokens counter of `principal`'s issuer.
    #[inline]
    pub(crate) fn accepted(&self, principal: &Principal) -> &HotCounter {
        let i = principal.issuer_index();
        // Never out of range: the index was this validator's. A principal from elsewhere
        // counts under the first issuer rather than panicking.
        self.accepted.get(i).unwrap_or(&self.accepted[0])
    }
}

/// Validates access tokens against one issuer. Cheap to clone; clones share the key cache.
#[derive(Clone)]
pub struct JwtValidator(Arc<Inner>);

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("JwtValidator");
        for issuer in &self.0.issuers {
            d.field("issuer", &issuer.keys.issuer())
                .field("profile", &issuer.rules.profile)
                .field("jwks_uri", &issuer.keys.jwks_uri());
        }
        d.finish_non_exhaustive()
    }
}

impl JwtValidator {
    /// Reads the metadata, loads the keys (unless lazy) and starts the background refresh,
    /// for each issuer. Must be called inside a Tokio runtime.
    pub async fn new(config: ValidatorConfig) -> Result<Self, StartError> {
        let http = issuer_http::client(None, config.http_timeout.min(Duration::from_secs(5)))
            .map_err(|e| StartError::Config(format!("HTTP client: {e}")))?;
        let certificates = CertificateCheck::new(&config.certificates)?;
        let dpop = DpopVerifier::new(
            config.dpop.clone(),
            config.resource.as_ref().map(|r| r.resource.as_str()),
            config.clock.clone(),
        )?;
        let resource = config
            .resource
            .as_ref()
            .map(|r| Published::new(r, &config.dpop, config.allow_insecure_http))
            .transpose()?;
        let validated = Arc::new(ValidatedCache::new(config.validated_cache_capacity));
        let timing = KeyCacheTiming {
            refresh_interval: config.refresh_interval,
            unknown_kid_min_interval: config.unknown_kid_min_interval,
            http_timeout: config.http_timeout,
        };
        let configs: Vec<IssuerConfig> = std::iter::once(config.primary_issuer())
            .chain(config.additional_issuers.iter().cloned())
            .collect();
        let mut issuers: Vec<IssuerState> = Vec::with_capacity(configs.len());
        let mut labels = Vec::with_capacity(configs.len());
        for issuer in &configs {
            let label = issuer_label(issuer);
            if configs.len() > 1 {
                // Tokens are routed by `iss`: two entries for one issuer would make the
                // route ambiguous, and an issuer known only after discovery can be
                // routed to only once discovered.
                if labels.contains(&label) {
                    return Err(StartError::Config(format!(
                        "the issuer {label} is configured twice"
                    )));
                }
            }
            let observer = validated.clone();
            let state = start_issuer(
                issuer,
                &http,
                Box::new(move || observer.clear()),
                timing,
                config.allow_insecure_http,
                &label,
            )
            .await?;
            issuers.push(state);
            labels.push(label);
        }
        // Opaque tokens name no issuer: they are the first (main) issuer's, introspected
        // at its endpoint and checked under its profile.
        let main = &issuers[0];
        let introspector = match config.introspection {
            None => None,
            Some(introspection) => {
                if main.rules.audience.is_none() {
                    if !introspection.any_audience {
                        return Err(StartError::Config(
                            "introspection without an audience would accept opaque tokens \
                             issued for any API: configure this API's audience (token profile \
                             generic or rfc9068), or accept any audience explicitly \
                             (IntrospectionConfig::any_audience)"
                                .into(),
                        ));
                    }
                    tracing::warn!(
                        "introspection accepts opaque tokens for any audience \
                         (any_audience): tokens issued for other APIs pass here"
                    );
                }
                let checks = introspection::Checks {
                    rules: main.rules.clone(),
                    leeway: config.leeway,
                    algorithms: main.algorithms.clone(),
                    discovery_url: match &config.metadata {
                        super::MetadataSource::Authority(authority) => {
                            Some(crate::discovery::authority_url(authority))
                        }
                        super::MetadataSource::MetadataAddress(url) => Some(url.clone()),
                        super::MetadataSource::Jwks { .. } => None,
                    },
                    allow_insecure_http: config.allow_insecure_http,
                    clock: config.clock.clone(),
                };
                Some(
                    Introspector::new(introspection, checks, main.keys.clone())
                        .map_err(StartError::Config)?,
                )
            }
        };
        Ok(JwtValidator(Arc::new(Inner {
            issuers: issuers.into_boxed_slice(),
            leeway: config.leeway,
            validated,
            metrics: LayerMetrics::new(&labels),
            dpop,
            certificates,
            verifications: (config.max_concurrent_verifications > 0)
                .then(|| Semaphore::new(config.max_concurrent_verifications)),
            verification_wait: config.verification_wait,
            resource,
            introspector,
            clock: config.clock,
        })))
    }

    pub(crate) fn metrics(&self) -> &LayerMetrics {
        &self.0.metrics
    }

    pub(crate) fn dpop(&self) -> &DpopVerifier {
        &self.0.dpop
    }

    /// Checks certificate-bound tokens' client certificates.
    pub(crate) fn certificates(&self) -> &CertificateCheck {
        &self.0.certificates
    }

    /// The expected `iss` (of the first issuer, when there are several); `None` only while
    /// a lazily started validator that takes the issuer from discovery has not discovered
    /// it yet.
    pub fn issuer(&self) -> Option<&str> {
        self.0.issuers[0].keys.issuer()
    }

    /// Every trusted issuer's expected `iss`, in configuration order; an issuer whose
    /// `iss` only discovery will tell, and which has not been discovered yet, is left out.
    pub fn issuers(&self) -> Vec<String> {
        self.0
            .issuers
            .iter()
            .filter_map(|i| {
                i.keys
                    .issuer()
                    .map(str::to_owned)
                    .or_else(|| i.hint.clone())
            })
            .collect()
    }

    /// The authorization servers whose tokens this validator accepts, as RFC 9728's
    /// `authorization_servers` lists them: every trusted issuer (see
    /// [`issuers`](Self::issuers): an issuer a lazily started validator has not discovered
    /// yet is listed as its configuration names or implies it).
    pub fn authorization_servers(&self) -> Vec<String> {
        self.issuers()
    }

    /// The published RFC 9728 metadata, when a protected resource is configured.
    pub(crate) fn resource_metadata(&self) -> Option<&Published> {
        self.0.resource.as_ref()
    }

    /// A router that serves this validator's protected resource metadata (RFC 9728) at its
    /// well-known path, without authentication, as `application/json` with
    /// `Cache-Control: public, max-age=3600`. Merge it into the service's router at the
    /// root: the path is absolute (`/.well-known/oauth-protected-resource` plus the resource
    /// identifier's path). Without [`ValidatorConfig::resource`] the router is empty, so a
    /// service can merge it unconditionally.
    pub fn resource_metadata_router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let Some(published) = self.resource_metadata() else {
            return axum::Router::new();
        };
        let validator = self.clone();
        published.router(move || validator.authorization_servers())
    }

    /// The (first) issuer's token endpoint, once discovery gave one (for OpenAPI
    /// documents).
    pub fn token_endpoint(&self) -> Option<&str> {
        self.0.issuers[0].keys.token_endpoint()
    }

    /// Whether signing keys are loaded (readiness): with several issuers, those of at
    /// least one, so one issuer's outage does not take the service out of rotation for the
    /// callers of the others. With introspection, also that the issuer has not refused this
    /// API's introspection credentials on the last call: while it does, every opaque token
    /// gets 503, and a call here probes the endpoint in the background (at most every
    /// 10 s) so that the fix is noticed without traffic.
    pub fn is_ready(&self) -> bool {
        if let Some(introspector) = &self.0.introspector
            && introspector.credentials_refused()
        {
            if introspector.probe_due()
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                let validator = self.clone();
                runtime.spawn(async move {
                    if let Some(introspector) = &validator.0.introspector {
                        introspector.probe().await;
                    }
                });
            }
            return false;
        }
        self.0.issuers.iter().any(|i| i.keys.key_count() > 0)
    }

    /// Validates a compact JWT and returns the caller.
    pub async fn validate(&self, token: &str) -> Result<Principal, ValidationError> {
        if let Some(introspector) = self.introspector_for(token) {
            return introspector.validate(token).await;
        }
        if let Some(result) = self.validate_now(token) {
            return result;
        }
        // The token names a key that is not loaded: wait for the (shared, rate-limited)
        // key refresh, then validate.
        let epoch = self.0.validated.epoch();
        let principal = self.uncached(token).await?;
        self.remember(token, &principal, epoch);
        Ok(principal)
    }

    /// Validates without waiting, which is every case but one: `None` means the token
    /// names a key that is not loaded, and only [`validate`](Self::validate) can fetch it.
    /// An opaque token, with introspection configured, is also `None`: it needs a call.
    pub fn validate_now(&self, token: &str) -> Option<Result<Principal, ValidationError>> {
        if self.introspector_for(token).is_some() {
            return None;
        }
        if let Some(principal) = self.validated(token.as_bytes()) {
            return Some(Ok(principal));
        }
        self.verify_now(token)
    }

    /// [`validate_now`](Self::validate_now) minus the validated-token lookup, for a caller
    /// that has just made it (the auth layer's fast path). A success is remembered.
    pub(crate) fn verify_now(&self, token: &str) -> Option<Result<Principal, ValidationError>> {
        if self.introspector_for(token).is_some() {
            return None;
        }
        let epoch = self.0.validated.epoch();
        let (index, header) = match self.route(token) {
            Ok(routed) => routed,
            Err(e) => return Some(Err(e)),
        };
        let issuer = &self.0.issuers[index];
        let key = issuer.keys.loaded(header.kid())?;
        // At the verification bound, the slow path waits for a slot.
        let permit = match &self.0.verifications {
            None => None,
            Some(bound) => Some(bound.try_acquire().ok()?),
        };
        let result = self.verify(index, token, &header, &key);
        drop(permit);
        // A bad signature under a known kid may be new material under that kid: worth one
        // (gated) refresh on the slow path. With the gate closed, answer now.
        if matches!(result, Err(ValidationError::Signature)) && issuer.keys.gate_open() {
            return None;
        }
        if let Ok(principal) = &result {
            self.remember(token, principal, epoch);
        }
        Some(result)
    }

    /// The introspector, when one is configured and `token` is not a compact JWS.
    fn introspector_for(&self, token: &str) -> Option<&Introspector> {
        self.0
            .introspector
            .as_ref()
            .filter(|_| !compact::is_compact_jws(token))
    }

    /// The principal of a token validated before and still within its time window, looked
    /// up by the token's exact bytes without parsing them. `None`: validate it.
    pub fn validated(&self, token: &[u8]) -> Option<Principal> {
        self.0.validated.get(
            token,
            self.0.clock.now_unix_ms() / 1000,
            self.0.leeway.as_secs(),
        )
    }

    /// Full validation, bypassing the validated-token cache (benchmarks compare the two;
    /// feature `internals`).
    #[cfg(feature = "internals")]
    pub async fn validate_uncached(&self, token: &str) -> Result<Principal, ValidationError> {
        self.uncached(token).await
    }

    /// Full validation, bypassing the validated-token cache: fetches the key if needed.
    async fn uncached(&self, token: &str) -> Result<Principal, ValidationError> {
        let (index, header) = self.route(token)?;
        let issuer = &self.0.issuers[index];
        let key = issuer
            .keys
            .key_for(header.kid())
            .await
            .map_err(|e| match e {
                KeyLookupError::UnknownKey => ValidationError::UnknownKey,
                KeyLookupError::NoKeys { retry_after } => ValidationError::KeysUnavailable {
                    retry_after: retry_after.as_secs(),
                },
            })?;
        match self.verify_gated(index, token, &header, &key).await {
            Err(ValidationError::Signature) => {
                match issuer.keys.changed_key(header.kid(), &key).await {
                    Some(new) => self.verify_gated(index, token, &header, &new).await,
                    None => Err(ValidationError::Signature),
                }
            }
            result => result,
        }
    }

    /// [`verify`](Self::verify) within the verification bound: waits up to
    /// `verification_wait` for a slot (the permit is held for the verification only,
    /// never across a key fetch).
    async fn verify_gated(
        &self,
        index: usize,
        token: &str,
        header: &TokenHeader,
        key: &VerifyKey,
    ) -> Result<Principal, ValidationError> {
        let _permit = match &self.0.verifications {
            None => None,
            Some(bound) => match bound.try_acquire() {
                Ok(permit) => Some(permit),
                // Only a wait needs a timer (and so a runtime).
                Err(_) => {
                    match tokio::time::timeout(self.0.verification_wait, bound.acquire()).await {
                        Ok(Ok(permit)) => Some(permit),
                        // Timed out (or, impossibly, closed): busy, not the caller's fault.
                        _ => return Err(ValidationError::Overloaded { retry_after: 1 }),
                    }
                }
            },
        };
        self.verify(index, token, header, key)
    }

    /// Caches a success of a validation that began in `epoch` (see `ValidatedCache`).
    fn remember(&self, token: &str, principal: &Principal, epoch: u64) {
        self.0.validated.insert(
            token.as_bytes(),
            Entry {
                exp: principal.expires_at(),
                nbf: principal.not_before(),
                principal: principal.clone(),
                epoch,
            },
        );
    }

    /// The header, the issuer the token claims to be from (by index), and that issuer's
    /// `typ` check. With one issuer, the payload is not looked at here; with several, its
    /// `iss` is read, unverified, to choose whose keys and rules apply, before any key
    /// lookup: a token that names no trusted issuer is refused without a fetch.
    fn route(&self, token: &str) -> Result<(usize, TokenHeader), ValidationError> {
        let header = TokenHeader::parse(token)?;
        let index = if self.0.issuers.len() == 1 {
            0
        } else {
            self.choose_issuer(token)?
        };
        let typ_ok = match self.0.issuers[index].rules.profile {
            TokenProfile::Rfc9068 { .. } => header.typ == Typ::AccessToken,
            _ => header.typ != Typ::Foreign,
        };
        if !typ_ok {
            return Err(ValidationError::TokenType);
        }
        Ok((index, header))
    }

    /// The issuer a token's unverified `iss` names, among several. The payload is read by
    /// the same strict reader as after the signature (a repeated `iss` is refused here as
    /// there), only `iss` is looked at.
    fn choose_issuer(&self, token: &str) -> Result<usize, ValidationError> {
        let parts = Compact::split(token).map_err(|_| ValidationError::Malformed)?;
        let payload = compact::decode(parts.payload).map_err(|_| ValidationError::Malformed)?;
        let claims: TokenClaims<'_> = json::parse(&payload).map_err(|_| ValidationError::Claims)?;
        let iss = claims.iss().ok_or(ValidationError::Claims)?;
        if let Some(index) = self.0.issuers.iter().position(|i| i.claims(iss)) {
            return Ok(index);
        }
        // An issuer whose `iss` only its (lazy, not yet run) discovery will tell may be
        // the one: busy, not wrong.
        if self
            .0
            .issuers
            .iter()
            .any(|i| i.keys.issuer().is_none() && i.hint.is_none())
        {
            return Err(ValidationError::KeysUnavailable { retry_after: 1 });
        }
        Err(ValidationError::Issuer)
    }

    /// Signature, then the claims: `exp` (required), `nbf`, `aud` when an audience is
    /// configured, `iss`, `iat`, then the profile's claims.
    ///
    /// Hand-rolled on aws-lc-rs rather than `jsonwebtoken::decode`, which decodes and
    /// parses the header again, verifies with a key rebuilt from its base64 components
    /// on every call, and parses the claims twice (once for its own checks, once into the
    /// caller's type). This is the first-seen path of every token, so each step is done
    /// once: the header was parsed by [`header`](Self::header), the key was parsed when
    /// the key set loaded, and the claims are parsed once into the few values read here;
    /// the full claims map is built only if a handler asks for it.
    fn verify(
        &self,
        index: usize,
        token: &str,
        header: &TokenHeader,
        key: &VerifyKey,
    ) -> Result<Principal, ValidationError> {
        let issuer = &self.0.issuers[index];
        if !issuer.algorithms.contains(&header.alg) || !key.accepts(header.alg) {
            return Err(ValidationError::Algorithm);
        }
        let parts = Compact::split(token).map_err(|_| ValidationError::Malformed)?;
        let mut buffer = [0u8; STACK_PART];
        let signature =
            decode_part(parts.signature, &mut buffer).map_err(|_| ValidationError::Malformed)?;
        if !key.verifies(header.alg, parts.signing_input.as_bytes(), &signature) {
            return Err(ValidationError::Signature);
        }
        let payload = compact::decode(parts.payload).map_err(|_| ValidationError::Malformed)?;
        let claims: TokenClaims<'_> = json::parse(&payload).map_err(|_| ValidationError::Claims)?;
        let context = Context {
            issuer: issuer.keys.shared_issuer(),
            index,
            now_ms: self.0.clock.now_unix_ms(),
            leeway: self.0.leeway,
        };
        let parts = claims::principal(&issuer.rules, &claims, &Source::Jwt, &context)?;
        // The claims borrow from the payload; the principal keeps it.
        drop(claims);
        Ok(Principal::from_token(parts, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The verification bound, with its one slot held by the test as a verification in
    /// progress would hold it: the interleaving is the test's, not the scheduler's.
    mod bound {
        use super::*;
        use crate::server::MetadataSource;
        use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as Profile};

        async fn setup(bound: usize) -> (IssuerHandle, JwtValidator) {
            let issuer = mock_issuer::start(
                IssuerConfig::new(Profile::Cognito)
                    .with_resource_server("Api", ["read"])
                    .with_client(ClientConfig::new(
                        "svc",
                        "svc-secret-0123456789",
                        ["Api/read"],
                    )),
            )
            .await
            .unwrap();
            let mut config = ValidatorConfig::new(
                MetadataSource::Authority(issuer.issuer().to_owned()),
                TokenProfile::Cognito {
                    allowed_client_ids: Vec::new(),
                },
            );
            config.max_concurrent_verifications = bound;
            config.verification_wait = Duration::from_millis(20);
            let validator = JwtValidator::new(config).await.unwrap();
            (issuer, validator)
        }

        fn mint(issuer: &IssuerHandle, jti: &str) -> String {
            let (header, mut claims) = issuer.token_template("svc", &["Api/read"]);
            claims["jti"] = Value::from(jti);
            issuer.sign(&header, &claims).unwrap()
        }

        /// A token of a known key with another token's signature: a full verification
        /// to find it bad.
        fn forged(issuer: &IssuerHandle) -> String {
            let (good, other) = (mint(issuer, "a"), mint(issuer, "b"));
            let (message, _) = good.rsplit_once('.').unwrap();
            let (_, signature) = other.rsplit_once('.').unwrap();
            format!("{message}.{signature}")
        }

        #[tokio::test]
        async fn over_the_bound_first_seen_tokens_get_overloaded_and_cached_ones_pass() {
            let (issuer, validator) = setup(1).await;
            let cached = mint(&issuer, "cached");
            validator.validate(&cached).await.unwrap();
            let bound = validator.0.verifications.as_ref().unwrap();
            let slot = bound.try_acquire().unwrap(); // a verification in progress

            assert!(validator.validate_now(&cached).unwrap().is_ok(), "cached");
            let fresh = mint(&issuer, "fresh");
            assert!(validator.validate_now(&fresh).is_none(), "no slot: wait");
            assert_eq!(
                validator.validate(&fresh).await.unwrap_err(),
                ValidationError::Overloaded { retry_after: 1 }
            );
            // A forged token is not verified either: busy, not "bad signature".
            assert_eq!(
                validator.validate(&forged(&issuer)).await.unwrap_err(),
                ValidationError::Overloaded { retry_after: 1 }
            );
            assert!(validator.validated(fresh.as_bytes()).is_none());
            // Through the auth layer: 503 with Retry-After and a problem body for the
            // first-seen token, 200 for the cached one.
            let (status, retry, content_type) = through_layer(&validator, &fresh).await;
            assert_eq!(status, 503);
            assert_eq!(retry.as_deref(), Some("1"));
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
            assert_eq!(through_layer(&validator, &cached).await.0, 200);

            drop(slot);
            assert!(validator.validate(&fresh).await.is_ok(), "the slot is free");
            assert_eq!(
                validator.validate(&forged(&issuer)).await.unwrap_err(),
                ValidationError::Signature
            );
            assert_eq!(bound.available_permits(), 1, "every permit came back");
        }

        async fn through_layer(
            validator: &JwtValidator,
            token: &str,
        ) -> (u16, Option<String>, Option<String>) {
            use tower::{Layer, ServiceExt};
            let inner = tower::service_fn(|_: axum::http::Request<axum::body::Body>| async {
                Ok::<_, std::convert::Infallible>(axum::response::Response::new(
                    axum::body::Body::empty(),
                ))
            });
            let request = axum::http::Request::get("/x")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let response = crate::server::JwtAuthLayer::new(validator.clone())
                .layer(inner)
                .oneshot(request)
                .await
                .unwrap();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            (
                response.status().as_u16(),
                header("retry-after"),
                header("content-type"),
            )
        }

        #[tokio::test]
        async fn a_token_waiting_for_a_slot_gets_it_when_one_frees() {
            let (issuer, validator) = setup(1).await;
            let bound = validator.0.verifications.as_ref().unwrap();
            let slot = bound.try_acquire().unwrap();
            let fresh = mint(&issuer, "fresh");
            let mut waiting = std::pin::pin!(validator.validate(&fresh));
            // Polled until it waits on the semaphore (the key is loaded, so nothing else
            // can keep it pending), then the slot frees.
            assert!(futures_poll_once(&mut waiting).is_none());
            drop(slot);
            assert!(waiting.await.is_ok());
        }

        fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::pin::Pin::new(f).poll(&mut cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            }
        }

        #[tokio::test]
        async fn zero_means_no_bound() {
            let (issuer, validator) = setup(0).await;
            assert!(validator.0.verifications.is_none());
            assert!(validator.validate_now(&mint(&issuer, "x")).unwrap().is_ok());
        }
    }
}
