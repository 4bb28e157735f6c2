//! Access-token validation: from a compact JWT to a [`Principal`], or a reason to refuse.
//!
//! Order of checks, each failing closed:
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

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};

use super::error::SignatureAlgorithm;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::dpop::{DpopConfig, DpopVerifier};
use super::error::{StartError, ValidationError};
use super::jwks::{KeyCache, KeyCacheTiming, KeyLookupError, KeySource, RefreshError, VerifyKey};
use super::principal::Principal;
use super::validated_cache::{Entry, ValidatedCache};
use crate::discovery;
use crate::issuer_http;
use crate::metrics::HotCounter;
use crate::scope::{Scope, ScopeSet};

/// Where the issuer's metadata and keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataSource {
    /// An authority URL: discovery at `{authority}/.well-known/openid-configuration`, and
    /// the discovered `issuer` must equal the authority (trailing slash ignored).
    Authority(String),
    /// An explicit discovery document URL (Cognito:
    /// `https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/openid-configuration`).
    /// The discovered `issuer` must equal the expected one (RFC 8414 section 3.3): what
    /// precedes `/.well-known/openid-configuration`, or for
    /// `{origin}/.well-known/oauth-authorization-server{path}` it is `{origin}{path}`. For
    /// any other URL shape, [`ValidatorConfig::issuer`] must be set.
    MetadataAddress(String),
    /// A JWKS URL and the expected `iss`, with no discovery.
    Jwks {
        /// The JWKS URL.
        jwks_uri: String,
        /// The expected `iss` claim.
        issuer: String,
    },
}

impl MetadataSource {
    /// The issuer this source implies without configuration: the authority; what precedes
    /// `/.well-known/openid-configuration`; `{origin}{path}` for
    /// `{origin}/.well-known/oauth-authorization-server{path}` (RFC 8414 section 3.1); the
    /// JWKS source's configured issuer. `None` for a metadata address of any other shape:
    /// then [`ValidatorConfig::issuer`] must be set.
    pub fn implied_issuer(&self) -> Option<String> {
        match self {
            MetadataSource::Authority(authority) => {
                Some(discovery::trim_slash(authority).to_owned())
            }
            MetadataSource::MetadataAddress(url) => discovery::expected_issuer(url),
            MetadataSource::Jwks { issuer, .. } => Some(issuer.clone()),
        }
    }
}

/// The shape of access token the API expects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenProfile {
    /// AWS Cognito: `token_use` must be `access`, no audience check; optionally only the
    /// listed `client_id`s are accepted.
    Cognito {
        /// Accepted `client_id`s; empty accepts any client of the issuer.
        allowed_client_ids: Vec<String>,
    },
    /// RFC 9068 JWT access tokens: `typ` is `at+jwt`, `aud` is required and must contain
    /// the audience.
    Rfc9068 {
        /// This API's audience (resource identifier).
        audience: String,
    },
    /// Any JWT access token; the audience is checked (and then required) only if set.
    Generic {
        /// This API's audience, if any.
        audience: Option<String>,
    },
}

/// Everything [`JwtValidator::new`] needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ValidatorConfig {
    /// Metadata and keys.
    pub metadata: MetadataSource,
    /// Token profile.
    pub profile: TokenProfile,
    /// Accepted signature algorithms (default RS256, RS384, RS512, PS256, ES256, ES384,
    /// EdDSA). Only asymmetric ones exist in [`SignatureAlgorithm`]: HMAC cannot be listed.
    pub algorithms: Vec<SignatureAlgorithm>,
    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 60 s).
    pub leeway: Duration,
    /// Background JWKS refresh interval (default 1 h, jittered up to 10 %).
    pub refresh_interval: Duration,
    /// Minimum time between refreshes triggered by unknown `kid`s (default 10 s).
    pub unknown_kid_min_interval: Duration,
    /// Timeout of each metadata or JWKS request (default 10 s).
    pub http_timeout: Duration,
    /// Start without metadata or keys, and load them in the background and on first use,
    /// instead of failing at start when the issuer is unreachable (default false). Until
    /// keys are loaded, requests get 503 with `Retry-After`.
    pub lazy: bool,
    /// The expected `iss` for a [`MetadataSource::MetadataAddress`] whose shape does not
    /// say it (required then), or to state it explicitly. Ignored for the other sources.
    pub issuer: Option<String>,
    /// Skip the check that the discovered issuer equals the expected one (default false).
    /// The discovered issuer is then the expected `iss`.
    pub allow_issuer_mismatch: bool,
    /// Allow plain `http` to non-loopback hosts for discovery and JWKS, configured or
    /// discovered (default false: `https`, or `http` to loopback only).
    pub allow_insecure_http: bool,
    /// Tokens remembered after a successful validation, so a repeated token is not
    /// verified again (default 10,000; 0 disables). See the `validated_cache` module for
    /// why this is safe.
    pub validated_cache_capacity: usize,
    /// DPoP (RFC 9449): off, allowed (the default) or required, and how proofs are checked.
    pub dpop: DpopConfig,
}

impl ValidatorConfig {
    /// Defaults for everything but the metadata source and the profile.
    pub fn new(metadata: MetadataSource, profile: TokenProfile) -> Self {
        ValidatorConfig {
            metadata,
            profile,
            algorithms: vec![
                SignatureAlgorithm::RS256,
                SignatureAlgorithm::RS384,
                SignatureAlgorithm::RS512,
                SignatureAlgorithm::PS256,
                SignatureAlgorithm::ES256,
                SignatureAlgorithm::ES384,
                SignatureAlgorithm::EdDSA,
            ],
            leeway: Duration::from_secs(60),
            refresh_interval: Duration::from_secs(3600),
            unknown_kid_min_interval: Duration::from_secs(10),
            http_timeout: Duration::from_secs(10),
            lazy: false,
            issuer: None,
            allow_issuer_mismatch: false,
            allow_insecure_http: false,
            validated_cache_capacity: 10_000,
            dpop: DpopConfig::default(),
        }
    }
}

/// A claims object whose top-level names are unique. serde_json keeps the last of
/// duplicate keys; another parser may keep the first, so a token with duplicates is refused.
struct StrictClaims(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictClaims;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictClaims, A::Error> {
                let mut out = Map::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate claim {k:?}"
                        )));
                    }
                    out.insert(k, v);
                }
                Ok(StrictClaims(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Inner {
    profile: TokenProfile,
    leeway: Duration,
    keys: Arc<KeyCache>,
    validated: Arc<ValidatedCache>,
    /// One prepared `Validation` per allowed algorithm.
    validations: HashMap<Algorithm, Validation>,
    /// The auth layer's per-request counters. Here, behind the validator's one `Arc`,
    /// because axum clones the layered service on every request: each `Arc` in it is a
    /// refcount both cores bump.
    metrics: LayerMetrics,
    /// Checks DPoP proofs.
    dpop: DpopVerifier,
}

/// Counters the accepting paths of the auth layer bump on every request.
pub(crate) struct LayerMetrics {
    pub(crate) accepted: HotCounter,
    pub(crate) cache_hits: HotCounter,
}

impl LayerMetrics {
    fn new() -> Self {
        use crate::metrics::{VALIDATED_CACHE_HITS, VALIDATIONS};
        LayerMetrics {
            accepted: HotCounter::new(VALIDATIONS, &[("outcome", "accepted"), ("reason", "ok")]),
            cache_hits: HotCounter::new(VALIDATED_CACHE_HITS, &[]),
        }
    }
}

/// Validates access tokens against one issuer. Cheap to clone; clones share the key cache.
#[derive(Clone)]
pub struct JwtValidator(Arc<Inner>);

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("issuer", &self.0.keys.issuer())
            .field("profile", &self.0.profile)
            .field("jwks_uri", &self.0.keys.jwks_uri())
            .finish_non_exhaustive()
    }
}

/// The `typ` values of JWTs that are not access tokens but could carry the same claims
/// (RFC 8725 section 3.11: explicit typing keeps them apart). Checked without the
/// `application/` prefix, case-insensitively.
const FOREIGN_TYPES: &[&str] = &[
    "logout+jwt",
    "secevent+jwt",
    "dpop+jwt",
    "id_token+jwt",
    "client-authentication+jwt",
    "oauth-authz-req+jwt",
    "token-introspection+jwt",
    "jwk-set+jwt",
    "kb+jwt",
    "vc+jwt",
    "vp+jwt",
    "dc+sd-jwt",
    "entity-statement+jwt",
    "trust-mark+jwt",
];

fn media_type(typ: &str) -> String {
    let typ = typ.to_ascii_lowercase();
    match typ.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => typ,
    }
}

/// Whether a `typ` names some JWT other than an access token. Anything ending in `+jwt`
/// but `at+jwt` is another kind, as are the listed ones.
fn is_foreign_type(typ: &str) -> bool {
    let typ = media_type(typ);
    (typ.ends_with("+jwt") && typ != "at+jwt")
        || typ.ends_with("+sd-jwt")
        || FOREIGN_TYPES.contains(&typ.as_str())
}

impl JwtValidator {
    /// Reads the metadata, loads the keys (unless lazy) and starts the background refresh.
    /// Must be called inside a Tokio runtime.
    pub async fn new(config: ValidatorConfig) -> Result<Self, StartError> {
        let http = issuer_http::client(None, config.http_timeout.min(Duration::from_secs(5)))
            .map_err(|e| StartError::Config(format!("HTTP client: {e}")))?;
        let algorithms: Vec<Algorithm> = config.algorithms.iter().map(|a| a.jose()).collect();
        if algorithms.is_empty() {
            return Err(StartError::Config(
                "no asymmetric signature algorithm allowed".into(),
            ));
        }
        let check = |url: &str| {
            issuer_http::check_url(url, config.allow_insecure_http)
                .map_err(|e| StartError::Config(e.to_string()))
        };
        let (source, issuer) = match &config.metadata {
            MetadataSource::Jwks { jwks_uri, issuer } => {
                check(jwks_uri)?;
                (KeySource::Jwks(jwks_uri.clone()), Some(issuer.clone()))
            }
            MetadataSource::Authority(authority) => {
                check(authority)?;
                let expected = discovery::trim_slash(authority).to_owned();
                let source = KeySource::Discovery {
                    url: discovery::authority_url(authority),
                    expected_issuer: (!config.allow_issuer_mismatch).then_some(expected),
                };
                // The exact `iss` is the discovered one (checked against the expected one,
                // trailing slash aside), known once discovery ran.
                (source, None)
            }
            MetadataSource::MetadataAddress(url) => {
                check(url)?;
                let expected = match (&config.issuer, config.metadata.implied_issuer()) {
                    (Some(configured), _) => Some(configured.clone()),
                    (None, Some(derived)) => Some(derived),
                    (None, None) if config.allow_issuer_mismatch => None,
                    (None, None) => {
                        return Err(StartError::IssuerRequired { url: url.clone() });
                    }
                };
                let source = KeySource::Discovery {
                    url: url.clone(),
                    expected_issuer: expected.filter(|_| !config.allow_issuer_mismatch),
                };
                (source, None)
            }
        };
        let dpop = DpopVerifier::new(config.dpop.clone())?;
        let validations = algorithms
            .iter()
            .map(|&alg| (alg, base_validation(alg, &config)))
            .collect();
        let validated = Arc::new(ValidatedCache::new(config.validated_cache_capacity));
        let observer = validated.clone();
        let keys = Arc::new(KeyCache::new(
            http,
            source,
            issuer,
            algorithms,
            config.allow_insecure_http,
            KeyCacheTiming {
                refresh_interval: config.refresh_interval,
                unknown_kid_min_interval: config.unknown_kid_min_interval,
                http_timeout: config.http_timeout,
            },
            Box::new(move || observer.clear()),
        ));
        if config.lazy {
            // Discovery and the first key load happen in the background (and on demand):
            // the service starts whatever state the issuer is in.
            keys.spawn_background_refresh(true);
        } else {
            keys.refresh_now("start").await.map_err(|e| match e {
                RefreshError::Discovery(d) => StartError::from(d),
                RefreshError::Keys(k) => StartError::Keys(k),
            })?;
            keys.spawn_background_refresh(false);
        }
        Ok(JwtValidator(Arc::new(Inner {
            profile: config.profile,
            leeway: config.leeway,
            keys,
            validated,
            validations,
            metrics: LayerMetrics::new(),
            dpop,
        })))
    }

    pub(crate) fn metrics(&self) -> &LayerMetrics {
        &self.0.metrics
    }

    pub(crate) fn dpop(&self) -> &DpopVerifier {
        &self.0.dpop
    }

    /// The expected `iss`; `None` only while a lazily started validator that takes the
    /// issuer from discovery has not discovered it yet.
    pub fn issuer(&self) -> Option<&str> {
        self.0.keys.issuer()
    }

    /// The issuer's token endpoint, once discovery gave one (for OpenAPI documents).
    pub fn token_endpoint(&self) -> Option<&str> {
        self.0.keys.token_endpoint()
    }

    /// Whether signing keys are loaded (readiness).
    pub fn is_ready(&self) -> bool {
        self.0.keys.key_count() > 0
    }

    /// Validates a compact JWT and returns the caller.
    pub async fn validate(&self, token: &str) -> Result<Principal, ValidationError> {
        if let Some(result) = self.validate_now(token) {
            return result;
        }
        // The token names a key that is not loaded: wait for the (shared, rate-limited)
        // key refresh, then validate.
        let epoch = self.0.validated.epoch();
        let principal = self.validate_uncached(token).await?;
        self.remember(token, &principal, epoch);
        Ok(principal)
    }

    /// Validates without waiting, which is every case but one: `None` means the token
    /// names a key that is not loaded, and only [`validate`](Self::validate) can fetch it.
    pub fn validate_now(&self, token: &str) -> Option<Result<Principal, ValidationError>> {
        if let Some(principal) = self.validated(token.as_bytes()) {
            return Some(Ok(principal));
        }
        self.verify_now(token)
    }

    /// [`validate_now`](Self::validate_now) minus the validated-token lookup, for a caller
    /// that has just made it (the auth layer's fast path). A success is remembered.
    pub(crate) fn verify_now(&self, token: &str) -> Option<Result<Principal, ValidationError>> {
        let epoch = self.0.validated.epoch();
        let header = match self.header(token) {
            Ok(header) => header,
            Err(e) => return Some(Err(e)),
        };
        let key = self.0.keys.loaded(header.kid.as_deref())?;
        let result = self.verify(token, &header, &key);
        // A bad signature under a known kid may be new material under that kid: worth one
        // (gated) refresh on the slow path. With the gate closed, answer now.
        if matches!(result, Err(ValidationError::Signature)) && self.0.keys.gate_open() {
            return None;
        }
        if let Ok(principal) = &result {
            self.remember(token, principal, epoch);
        }
        Some(result)
    }

    /// The principal of a token validated before and still within its time window, looked
    /// up by the token's exact bytes without parsing them. `None`: validate it.
    pub fn validated(&self, token: &[u8]) -> Option<Principal> {
        self.0
            .validated
            .get(token, now_secs(), self.0.leeway.as_secs())
    }

    /// Full validation, bypassing the validated-token cache (benchmarks compare the two).
    pub async fn validate_uncached(&self, token: &str) -> Result<Principal, ValidationError> {
        let header = self.header(token)?;
        let key = self
            .0
            .keys
            .key_for(header.kid.as_deref())
            .await
            .map_err(|e| match e {
                KeyLookupError::UnknownKey => ValidationError::UnknownKey,
                KeyLookupError::NoKeys { retry_after } => ValidationError::KeysUnavailable {
                    retry_after: retry_after.as_secs(),
                },
            })?;
        match self.verify(token, &header, &key) {
            Err(ValidationError::Signature) => {
                match self.0.keys.changed_key(header.kid.as_deref(), &key).await {
                    Some(new) => self.verify(token, &header, &new),
                    None => Err(ValidationError::Signature),
                }
            }
            result => result,
        }
    }

    /// Caches a success of a validation that began in `epoch` (see `ValidatedCache`).
    fn remember(&self, token: &str, principal: &Principal, epoch: u64) {
        self.0.validated.insert(
            token.as_bytes(),
            Entry {
                exp: principal.expires_at(),
                nbf: principal.claims().get("nbf").and_then(Value::as_u64),
                principal: principal.clone(),
                epoch,
            },
        );
    }

    /// The JOSE header, with the checks that need nothing else.
    fn header(&self, token: &str) -> Result<jsonwebtoken::Header, ValidationError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => ValidationError::Algorithm,
            _ => ValidationError::Malformed,
        })?;
        if header.crit.is_some() {
            return Err(ValidationError::CriticalHeader);
        }
        let typ = header.typ.as_deref();
        let ok = match self.0.profile {
            TokenProfile::Rfc9068 { .. } => typ.is_some_and(|t| media_type(t) == "at+jwt"),
            _ => !typ.is_some_and(is_foreign_type),
        };
        if !ok {
            return Err(ValidationError::TokenType);
        }
        Ok(header)
    }

    /// Signature, time window, issuer, audience, then the profile's claims.
    fn verify(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        key: &VerifyKey,
    ) -> Result<Principal, ValidationError> {
        let inner = &*self.0;
        if !key.accepts(header.alg) {
            return Err(ValidationError::Algorithm);
        }
        let validation = inner
            .validations
            .get(&header.alg)
            .ok_or(ValidationError::Algorithm)?;
        let data = jsonwebtoken::decode::<StrictClaims>(token, &key.key, validation)
            .map_err(|e| map_jwt_error(&e))?;
        let claims = data.claims.0;
        // `iss` is one string, exactly the expected issuer. Checked here rather than by
        // jsonwebtoken, which accepts an array of issuers.
        match (claims.get("iss"), inner.keys.issuer()) {
            (Some(Value::String(iss)), Some(expected)) if iss == expected => {}
            (None, _) => return Err(ValidationError::Claims),
            _ => return Err(ValidationError::Issuer),
        }
        let now = now_secs();
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_u64().ok_or(ValidationError::Claims)?;
            if iat > now + inner.leeway.as_secs() {
                return Err(ValidationError::IssuedInFuture);
            }
        }
        self.principal(claims)
    }

    fn principal(&self, claims: Map<String, Value>) -> Result<Principal, ValidationError> {
        let inner = &*self.0;
        let string = |name: &str| -> Result<Option<String>, ValidationError> {
            match claims.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ValidationError::Claims),
            }
        };
        if let TokenProfile::Cognito { .. } = inner.profile
            && string("token_use")?.as_deref() != Some("access")
        {
            return Err(ValidationError::TokenUse);
        }
        if let TokenProfile::Rfc9068 { .. } = inner.profile {
            // RFC 9068 section 2.2: required claims (iss, exp and aud are checked above).
            let strings = ["sub", "client_id", "jti"];
            let present = strings
                .iter()
                .all(|name| matches!(claims.get(*name), Some(Value::String(s)) if !s.is_empty()))
                && claims.get("iat").is_some_and(Value::is_u64);
            if !present {
                return Err(ValidationError::Claims);
            }
        }
        // An empty identifier is no identifier: fall through to the next claim, and refuse
        // the token if none names the caller.
        let non_empty = |name: &str| string(name).map(|v| v.filter(|s| !s.is_empty()));
        let subject = non_empty("sub")?;
        let client_id = match (non_empty("client_id")?, non_empty("azp")?, &subject) {
            (Some(c), _, _) | (None, Some(c), _) => c,
            (None, None, Some(s)) => s.clone(),
            (None, None, None) => return Err(ValidationError::Claims),
        };
        if let TokenProfile::Cognito { allowed_client_ids } = &inner.profile
            && !allowed_client_ids.is_empty()
            && !allowed_client_ids.contains(&client_id)
        {
            return Err(ValidationError::ClientNotAllowed);
        }
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(v), _) | (None, Some(v)) => parse_scope_claim(v)?,
            (None, None) => ScopeSet::new(),
        };
        // `cnf.jkt` (RFC 9449 section 6.1), when present, is the key thumbprint: a string.
        if let Some(cnf) = claims.get("cnf") {
            let cnf = cnf.as_object().ok_or(ValidationError::Claims)?;
            if cnf.get("jkt").is_some_and(|j| !j.is_string()) {
                return Err(ValidationError::Claims);
            }
        }
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(ValidationError::Claims)?;
        let issuer = inner.keys.issuer().unwrap_or_default().to_owned();
        Ok(Principal::new(
            client_id, subject, scopes, expires_at, issuer, claims,
        ))
    }
}

/// `scope` / `scp`: a space-separated string, or an array of strings (IdentityServer).
fn parse_scope_claim(value: &Value) -> Result<ScopeSet, ValidationError> {
    match value {
        Value::String(s) => ScopeSet::parse(s).map_err(|_| ValidationError::Claims),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(|s| Scope::new(s).ok())
                    .ok_or(ValidationError::Claims)
            })
            .collect(),
        _ => Err(ValidationError::Claims),
    }
}

fn base_validation(alg: Algorithm, config: &ValidatorConfig) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = config.leeway.as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    // `iss` is checked after decoding (see `verify`): one string, exactly the issuer.
    let audience = match &config.profile {
        TokenProfile::Rfc9068 { audience } => Some(audience.as_str()),
        TokenProfile::Generic { audience } => audience.as_deref(),
        TokenProfile::Cognito { .. } => None,
    };
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            // A configured audience is required: without this, no `aud` would pass.
            v.set_required_spec_claims(&["exp", "aud"]);
        }
        None => {
            v.validate_aud = false;
            v.set_required_spec_claims(&["exp"]);
        }
    }
    v
}

fn map_jwt_error(e: &jsonwebtoken::errors::Error) -> ValidationError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => ValidationError::Signature,
        K::ExpiredSignature => ValidationError::Expired,
        K::ImmatureSignature => ValidationError::NotYetValid,
        K::InvalidIssuer => ValidationError::Issuer,
        K::InvalidAudience => ValidationError::Audience,
        K::MissingRequiredClaim(c) if c == "aud" => ValidationError::Audience,
        K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) => ValidationError::Claims,
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
            ValidationError::Algorithm
        }
        K::Json(_) => ValidationError::Claims,
        _ => ValidationError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_claims_are_refused() {
        assert!(serde_json::from_str::<StrictClaims>(r#"{"scope":"a","scope":"b"}"#).is_err());
        assert!(serde_json::from_str::<StrictClaims>(r#"{"scope":"a","x":1}"#).is_ok());
        assert!(serde_json::from_str::<StrictClaims>("[1]").is_err());
    }

    #[test]
    fn only_access_token_types_pass_outside_rfc9068() {
        for ok in [
            "JWT",
            "jwt",
            "at+jwt",
            "application/at+JWT",
            "application/jwt",
        ] {
            assert!(!is_foreign_type(ok), "{ok}");
        }
        for foreign in [
            "logout+jwt",
            "application/secevent+jwt",
            "DPoP+JWT",
            "id_token+jwt",
            "client-authentication+jwt",
            "something-new+jwt",
            "dc+sd-jwt",
        ] {
            assert!(is_foreign_type(foreign), "{foreign}");
        }
    }

    #[test]
    fn scope_claim_string_or_array() {
        let s = parse_scope_claim(&serde_json::json!("a b")).unwrap();
        let a = parse_scope_claim(&serde_json::json!(["b", "a"])).unwrap();
        assert_eq!(s, a);
        assert!(parse_scope_claim(&serde_json::json!([1])).is_err());
        assert!(parse_scope_claim(&serde_json::json!(5)).is_err());
    }
}
