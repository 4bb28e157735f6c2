//! Access-token validation: from a compact JWT to a [`Principal`], or a reason to refuse.
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

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use tokio::sync::Semaphore;

use super::error::SignatureAlgorithm;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::dpop::{DpopConfig, DpopVerifier};
use super::error::{StartError, ValidationError};
use super::introspection::{self, IntrospectionConfig, Introspector};
use super::jwks::{KeyCache, KeyCacheTiming, KeyLookupError, KeySource, RefreshError, VerifyKey};
use super::principal::{Principal, PrincipalParts};
use super::resource_metadata::{ProtectedResource, Published};
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
    /// At most this many token signatures are verified at once (0: no bound). The
    /// default is one less than the available cores (at least 1), so that a flood of
    /// first-seen tokens, forged ones included, which each cost a full signature
    /// verification, always leaves a core to the requests whose tokens are cached. A
    /// token that finds the bound reached waits up to
    /// [`verification_wait`](Self::verification_wait) for a slot, then is refused with
    /// 503 and `Retry-After` ([`ValidationError::Overloaded`]), never 401. Cached tokens
    /// never wait.
    pub max_concurrent_verifications: usize,
    /// How long a token waits for a verification slot (default 50 ms).
    pub verification_wait: Duration,
    /// Issuers trusted beside the one above, each with its own metadata source, profile
    /// (so its own audience and allowed clients) and algorithms (default none). A token's
    /// issuer is chosen by its unverified `iss` before any key lookup: a token that names
    /// no configured issuer is refused without a fetch, and a token that names issuer A
    /// is verified with A's keys only. Each issuer's keys are loaded, refreshed and
    /// rate-limited on their own, with the timing settings above.
    pub additional_issuers: Vec<IssuerConfig>,
    /// Scope names of this issuer's format mapped to the names the routes require: a
    /// token that grants `from` also grants `to` (default none). For an issuer whose scopes
    /// are spelled otherwise, e.g. `weather.read` for `MyService/weather_read` during a
    /// migration. The token's own scopes stay.
    pub scope_aliases: Vec<(String, String)>,
    /// This API as an OAuth 2.0 protected resource (RFC 9728; default none): when set, the
    /// validator publishes its metadata
    /// ([`JwtValidator::resource_metadata_router`]) and every 401 challenge of the auth
    /// layer points at it (`resource_metadata="..."`).
    pub resource: Option<ProtectedResource>,
    /// Opaque access tokens: a token that is not a compact JWS is checked at the issuer's
    /// introspection endpoint (RFC 7662; see the `introspection` module). `None` (the
    /// default): such a token is refused as malformed. JWTs are never introspected.
    pub introspection: Option<IntrospectionConfig>,
}

/// An issuer a validator trusts beside the one of its [`ValidatorConfig`]
/// ([`ValidatorConfig::additional_issuers`]). The fields mean what the fields of the same
/// names in [`ValidatorConfig`] mean, for this issuer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuerConfig {
    /// Metadata and keys.
    pub metadata: MetadataSource,
    /// Token profile: the shape of this issuer's tokens, its audience and allowed clients.
    pub profile: TokenProfile,
    /// Accepted signature algorithms (default: as [`ValidatorConfig::new`]).
    pub algorithms: Vec<SignatureAlgorithm>,
    /// The expected `iss`, when the metadata source does not imply it.
    pub issuer: Option<String>,
    /// Skip the check that the discovered issuer equals the expected one (default false).
    pub allow_issuer_mismatch: bool,
    /// Start without this issuer's metadata or keys (default false). Until they load, its
    /// tokens get 503; the other issuers' tokens are unaffected.
    pub lazy: bool,
    /// This issuer's scope names mapped to the routes' (see
    /// [`ValidatorConfig::scope_aliases`]).
    pub scope_aliases: Vec<(String, String)>,
}

impl IssuerConfig {
    /// Defaults for everything but the metadata source and the profile.
    pub fn new(metadata: MetadataSource, profile: TokenProfile) -> Self {
        IssuerConfig {
            metadata,
            profile,
            algorithms: default_algorithms(),
            issuer: None,
            allow_issuer_mismatch: false,
            lazy: false,
            scope_aliases: Vec::new(),
        }
    }
}

fn default_algorithms() -> Vec<SignatureAlgorithm> {
    vec![
        SignatureAlgorithm::RS256,
        SignatureAlgorithm::RS384,
        SignatureAlgorithm::RS512,
        SignatureAlgorithm::PS256,
        SignatureAlgorithm::ES256,
        SignatureAlgorithm::ES384,
        SignatureAlgorithm::EdDSA,
    ]
}

/// One less than the available cores, at least 1: see
/// [`ValidatorConfig::max_concurrent_verifications`].
pub(crate) fn default_verification_bound() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .max(1)
}

impl ValidatorConfig {
    /// Defaults for everything but the metadata source and the profile.
    pub fn new(metadata: MetadataSource, profile: TokenProfile) -> Self {
        ValidatorConfig {
            metadata,
            profile,
            algorithms: default_algorithms(),
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
            max_concurrent_verifications: default_verification_bound(),
            verification_wait: Duration::from_millis(50),
            additional_issuers: Vec::new(),
            scope_aliases: Vec::new(),
            resource: None,
            introspection: None,
        }
    }

    /// The issuer of this configuration's own fields, as an [`IssuerConfig`].
    fn primary_issuer(&self) -> IssuerConfig {
        IssuerConfig {
            metadata: self.metadata.clone(),
            profile: self.profile.clone(),
            algorithms: self.algorithms.clone(),
            issuer: self.issuer.clone(),
            allow_issuer_mismatch: self.allow_issuer_mismatch,
            lazy: self.lazy,
            scope_aliases: self.scope_aliases.clone(),
        }
    }
}

/// The JOSE header members this validator reads. Other members are ignored; a repeated
/// member among these is a parse error (serde's derive refuses duplicate fields).
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    crit: Option<IgnoredAny>,
}

/// A token's JOSE header, checked: an algorithm this crate can name, no `crit`, an
/// acceptable `typ`.
pub(crate) struct Header {
    alg: Algorithm,
    kid: Option<Box<str>>,
    typ: Typ,
}

/// What a header's `typ` says, for the profile's check (which needs the issuer, so comes
/// after the issuer is chosen).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Typ {
    /// No `typ`.
    Absent,
    /// `at+jwt` or `application/at+jwt` (RFC 9068).
    AccessToken,
    /// A type of some other kind of JWT (see `is_foreign_type`).
    Foreign,
    /// Any other type (`JWT`, ...).
    Other,
}

impl Header {
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// The claims validation reads; every other claim is only checked to be well-formed JSON
/// and not repeated. A name that appears twice refuses the token: serde_json would keep
/// the last, another parser may keep the first.
#[derive(Default)]
struct Claims<'a> {
    iss: Option<Claim<'a>>,
    exp: Option<Claim<'a>>,
    nbf: Option<Claim<'a>>,
    iat: Option<Claim<'a>>,
    aud: Option<Claim<'a>>,
    sub: Option<Claim<'a>>,
    client_id: Option<Claim<'a>>,
    azp: Option<Claim<'a>>,
    token_use: Option<Claim<'a>>,
    jti: Option<Claim<'a>>,
    scope: Option<Claim<'a>>,
    scp: Option<Claim<'a>>,
    cnf: Option<Claim<'a>>,
}

/// One claim's value: a string borrowed from the payload when it has no escapes (most
/// claims are strings, and this path runs for every new token), anything else as JSON.
enum Claim<'a> {
    Str(Cow<'a, str>),
    Other(Value),
}

impl Claim<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Claim::Str(s) => Some(s),
            Claim::Other(_) => None,
        }
    }
    fn as_u64(&self) -> Option<u64> {
        match self {
            Claim::Other(v) => v.as_u64(),
            Claim::Str(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Claim<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        use serde::de::{Error, SeqAccess};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Claim<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Owned(v)))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(v.into()))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(v.into()))
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(v.into()))
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(v.into()))
            }
            fn visit_unit<E: Error>(self) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Claim<'de>, A::Error> {
                Value::deserialize(SeqAccessDeserializer::new(seq)).map(Claim::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Claim<'de>, A::Error> {
                Value::deserialize(MapAccessDeserializer::new(map)).map(Claim::Other)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Claims<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Claims<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims<'de>, A::Error> {
                let mut claims = Claims::default();
                // A linear scan: tokens carry a dozen claims, and the signature was
                // verified before this parse, so only the issuer chooses how many.
                let mut seen: Vec<Cow<'de, str>> = Vec::with_capacity(24);
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    if seen.contains(&name) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate claim {name:?}"
                        )));
                    }
                    let slot = match &*name {
                        "iss" => &mut claims.iss,
                        "exp" => &mut claims.exp,
                        "nbf" => &mut claims.nbf,
                        "iat" => &mut claims.iat,
                        "aud" => &mut claims.aud,
                        "sub" => &mut claims.sub,
                        "client_id" => &mut claims.client_id,
                        "azp" => &mut claims.azp,
                        "token_use" => &mut claims.token_use,
                        "jti" => &mut claims.jti,
                        "scope" => &mut claims.scope,
                        "scp" => &mut claims.scp,
                        "cnf" => &mut claims.cnf,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            seen.push(name);
                            continue;
                        }
                    };
                    *slot = Some(map.next_value::<Claim<'de>>()?);
                    seen.push(name);
                }
                Ok(claims)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Header and signature bytes are decoded into a buffer of this size on the stack (an
/// RSA-8192 signature is 1,024 bytes); a larger part goes to the heap.
const MAX_DECODED_ON_STACK: usize = 1024;

/// One base64url part of a compact JWS, decoded into `buffer` when it fits.
fn decode_part<'b>(
    part: &str,
    buffer: &'b mut [u8; MAX_DECODED_ON_STACK],
) -> Result<Cow<'b, [u8]>, ValidationError> {
    if base64::decoded_len_estimate(part.len()) <= buffer.len() {
        let len = URL_SAFE_NO_PAD
            .decode_slice(part, buffer)
            .map_err(|_| ValidationError::Malformed)?;
        Ok(Cow::Borrowed(&buffer[..len]))
    } else {
        URL_SAFE_NO_PAD
            .decode(part)
            .map(Cow::Owned)
            .map_err(|_| ValidationError::Malformed)
    }
}

/// A NumericDate claim as whole seconds; `None` when absent, `Err` when not a
/// non-negative integer.
fn seconds(value: Option<&Claim<'_>>) -> Result<Option<u64>, ValidationError> {
    value
        .map(|v| v.as_u64().ok_or(ValidationError::Claims))
        .transpose()
}

/// A string claim; `Err` when present but not a string.
fn string<'a>(value: &'a Option<Claim<'_>>) -> Result<Option<&'a str>, ValidationError> {
    match value {
        None => Ok(None),
        Some(claim) => claim.as_str().map(Some).ok_or(ValidationError::Claims),
    }
}

/// A string claim that names someone: an empty string is no name.
fn non_empty<'a>(value: &'a Option<Claim<'_>>) -> Result<Option<&'a str>, ValidationError> {
    string(value).map(|v| v.filter(|s| !s.is_empty()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

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
    /// Bounds the signature verifications running at once; `None`: unbounded.
    verifications: Option<Semaphore>,
    verification_wait: Duration,
    /// The RFC 9728 metadata, when a protected resource is configured.
    resource: Option<Published>,
    /// Checks opaque tokens, when configured.
    introspector: Option<Introspector>,
}

/// One trusted issuer: its keys, and what its tokens must look like.
struct IssuerState {
    profile: TokenProfile,
    keys: Arc<KeyCache>,
    /// The algorithms a token may name.
    algorithms: Vec<Algorithm>,
    /// The audience a token must name, when one is configured (then `aud` is required).
    audience: Option<String>,
    /// The issuer a token's `iss` is matched against (trailing slash aside) until
    /// discovery gave the exact one: configured or implied by the metadata source.
    hint: Option<String>,
    /// This issuer's scope names mapped to the routes' (empty: none).
    scope_aliases: Vec<(String, Scope)>,
}

impl IssuerState {
    /// Whether a token whose unverified `iss` is `iss` belongs to this issuer. The exact
    /// comparison is the claims check's, after the signature.
    fn claims(&self, iss: &str) -> bool {
        match (self.keys.issuer(), &self.hint) {
            (Some(exact), _) => exact == iss,
            (None, Some(hint)) => discovery::trim_slash(hint) == discovery::trim_slash(iss),
            (None, None) => false,
        }
    }
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
                .field("profile", &issuer.profile)
                .field("jwks_uri", &issuer.keys.jwks_uri());
        }
        d.finish_non_exhaustive()
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

/// The name an issuer goes by in metrics and errors: its expected `iss` when the
/// configuration says it, else the metadata URL it is discovered from.
fn issuer_label(config: &IssuerConfig) -> String {
    let expected = match &config.metadata {
        MetadataSource::MetadataAddress(_) => config
            .issuer
            .clone()
            .or_else(|| config.metadata.implied_issuer()),
        _ => config.metadata.implied_issuer(),
    };
    expected
        .map(|i| discovery::trim_slash(&i).to_owned())
        .unwrap_or_else(|| match &config.metadata {
            MetadataSource::Authority(url) | MetadataSource::MetadataAddress(url) => url.clone(),
            MetadataSource::Jwks { issuer, .. } => issuer.clone(),
        })
}

/// Checks one issuer's configuration, builds its key cache, and loads its keys (unless
/// lazy).
async fn start_issuer(
    config: &IssuerConfig,
    http: &reqwest::Client,
    validated: &Arc<ValidatedCache>,
    timing: KeyCacheTiming,
    allow_insecure_http: bool,
    label: &str,
) -> Result<IssuerState, StartError> {
    let algorithms: Vec<Algorithm> = config.algorithms.iter().map(|a| a.jose()).collect();
    if algorithms.is_empty() {
        return Err(StartError::Config(
            "no asymmetric signature algorithm allowed".into(),
        ));
    }
    let check = |url: &str| {
        issuer_http::check_url(url, allow_insecure_http)
            .map_err(|e| StartError::Config(e.to_string()))
    };
    let (source, issuer, hint) = match &config.metadata {
        MetadataSource::Jwks { jwks_uri, issuer } => {
            check(jwks_uri)?;
            (
                KeySource::Jwks(jwks_uri.clone()),
                Some(issuer.clone()),
                Some(issuer.clone()),
            )
        }
        MetadataSource::Authority(authority) => {
            check(authority)?;
            let expected = discovery::trim_slash(authority).to_owned();
            let source = KeySource::Discovery {
                url: discovery::authority_url(authority),
                expected_issuer: (!config.allow_issuer_mismatch).then(|| expected.clone()),
            };
            // The exact `iss` is the discovered one (checked against the expected one,
            // trailing slash aside), known once discovery ran.
            let hint = (!config.allow_issuer_mismatch).then_some(expected);
            (source, None, hint)
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
            let expected = expected.filter(|_| !config.allow_issuer_mismatch);
            let source = KeySource::Discovery {
                url: url.clone(),
                expected_issuer: expected.clone(),
            };
            (source, None, expected)
        }
    };
    let scope_aliases = config
        .scope_aliases
        .iter()
        .map(|(from, to)| {
            Scope::new(to.clone())
                .map(|to| (from.clone(), to))
                .map_err(|e| StartError::Config(format!("scope alias {from:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let audience = match &config.profile {
        TokenProfile::Rfc9068 { audience } => Some(audience.clone()),
        TokenProfile::Generic { audience } => audience.clone(),
        TokenProfile::Cognito { .. } => None,
    };
    let observer = validated.clone();
    let keys = Arc::new(
        KeyCache::new(
            http.clone(),
            source,
            issuer,
            algorithms.clone(),
            allow_insecure_http,
            timing,
            Box::new(move || observer.clear()),
        )
        .labelled(label.to_owned()),
    );
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
    Ok(IssuerState {
        profile: config.profile.clone(),
        keys,
        algorithms,
        audience,
        hint,
        scope_aliases,
    })
}

impl JwtValidator {
    /// Reads the metadata, loads the keys (unless lazy) and starts the background refresh,
    /// for each issuer. Must be called inside a Tokio runtime.
    pub async fn new(config: ValidatorConfig) -> Result<Self, StartError> {
        let http = issuer_http::client(None, config.http_timeout.min(Duration::from_secs(5)))
            .map_err(|e| StartError::Config(format!("HTTP client: {e}")))?;
        let dpop = DpopVerifier::new(config.dpop.clone())?;
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
            let state = start_issuer(
                issuer,
                &http,
                &validated,
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
                let checks = introspection::Checks {
                    audience: main.audience.clone(),
                    allowed_client_ids: match &config.profile {
                        TokenProfile::Cognito { allowed_client_ids } => allowed_client_ids.clone(),
                        _ => Vec::new(),
                    },
                    leeway: config.leeway,
                    algorithms: main.algorithms.clone(),
                    discovery_url: match &config.metadata {
                        MetadataSource::Authority(authority) => {
                            Some(discovery::authority_url(authority))
                        }
                        MetadataSource::MetadataAddress(url) => Some(url.clone()),
                        MetadataSource::Jwks { .. } => None,
                    },
                    allow_insecure_http: config.allow_insecure_http,
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
            verifications: (config.max_concurrent_verifications > 0)
                .then(|| Semaphore::new(config.max_concurrent_verifications)),
            verification_wait: config.verification_wait,
            resource,
            introspector,
        })))
    }

    pub(crate) fn metrics(&self) -> &LayerMetrics {
        &self.0.metrics
    }

    pub(crate) fn dpop(&self) -> &DpopVerifier {
        &self.0.dpop
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
    /// callers of the others.
    pub fn is_ready(&self) -> bool {
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
        let principal = self.validate_uncached(token).await?;
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
            .filter(|_| !introspection::is_compact_jws(token))
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
        header: &Header,
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
    fn route(&self, token: &str) -> Result<(usize, Header), ValidationError> {
        let header = self.header(token)?;
        let index = if self.0.issuers.len() == 1 {
            0
        } else {
            self.choose_issuer(token)?
        };
        let typ_ok = match self.0.issuers[index].profile {
            TokenProfile::Rfc9068 { .. } => header.typ == Typ::AccessToken,
            _ => header.typ != Typ::Foreign,
        };
        if !typ_ok {
            return Err(ValidationError::TokenType);
        }
        Ok((index, header))
    }

    /// The issuer a token's unverified `iss` names, among several.
    fn choose_issuer(&self, token: &str) -> Result<usize, ValidationError> {
        /// Only `iss`, a string (any other type fails the parse); a repeated `iss` fails
        /// the parse too (serde's derive refuses duplicate fields), as it fails the full
        /// claims parse after the signature.
        #[derive(Deserialize)]
        struct Iss<'a> {
            #[serde(borrow)]
            iss: Option<Cow<'a, str>>,
        }
        let payload_b64 = token.split('.').nth(1).ok_or(ValidationError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| ValidationError::Malformed)?;
        let claims: Iss<'_> =
            serde_json::from_slice(&payload).map_err(|_| ValidationError::Claims)?;
        let iss = claims.iss.as_deref().ok_or(ValidationError::Claims)?;
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

    /// The JOSE header, with the checks that need nothing else.
    fn header(&self, token: &str) -> Result<Header, ValidationError> {
        let (header_b64, _) = token.split_once('.').ok_or(ValidationError::Malformed)?;
        let mut buffer = [0u8; MAX_DECODED_ON_STACK];
        let bytes = decode_part(header_b64, &mut buffer)?;
        let raw: RawHeader<'_> =
            serde_json::from_slice(&bytes).map_err(|_| ValidationError::Malformed)?;
        // A name this crate cannot name (HMAC, `none`, anything unknown) is no algorithm
        // it accepts.
        let alg = raw.alg.as_deref().ok_or(ValidationError::Malformed)?;
        let alg = SignatureAlgorithm::from_name(alg)
            .map(SignatureAlgorithm::jose)
            .ok_or(ValidationError::Algorithm)?;
        if raw.crit.is_some() {
            return Err(ValidationError::CriticalHeader);
        }
        let typ = match raw.typ.as_deref() {
            None => Typ::Absent,
            Some(t) if media_type(t) == "at+jwt" => Typ::AccessToken,
            Some(t) if is_foreign_type(t) => Typ::Foreign,
            Some(_) => Typ::Other,
        };
        Ok(Header {
            alg,
            kid: raw.kid.map(|k| k.into()),
            typ,
        })
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
        header: &Header,
        key: &VerifyKey,
    ) -> Result<Principal, ValidationError> {
        let inner = &self.0.issuers[index];
        let leeway = self.0.leeway.as_secs();
        if !inner.algorithms.contains(&header.alg) || !key.accepts(header.alg) {
            return Err(ValidationError::Algorithm);
        }
        let (message, signature_b64) = token.rsplit_once('.').ok_or(ValidationError::Malformed)?;
        let (_, payload_b64) = message.split_once('.').ok_or(ValidationError::Malformed)?;
        if payload_b64.contains('.') {
            return Err(ValidationError::Malformed);
        }
        let mut buffer = [0u8; MAX_DECODED_ON_STACK];
        let signature = decode_part(signature_b64, &mut buffer)?;
        if !key.verifies(header.alg, message.as_bytes(), &signature) {
            return Err(ValidationError::Signature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| ValidationError::Malformed)?;
        let claims: Claims<'_> =
            serde_json::from_slice(&payload).map_err(|_| ValidationError::Claims)?;
        let now = now_secs();
        // `exp` is required, `aud` too when an audience is configured.
        let exp = seconds(claims.exp.as_ref())?.ok_or(ValidationError::Claims)?;
        if inner.audience.is_some() && claims.aud.is_none() {
            return Err(ValidationError::Audience);
        }
        if exp.saturating_add(leeway) < now {
            return Err(ValidationError::Expired);
        }
        let nbf = seconds(claims.nbf.as_ref())?;
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(ValidationError::NotYetValid);
        }
        if let (Some(expected), Some(aud)) = (&inner.audience, &claims.aud) {
            let named = match aud {
                Claim::Str(one) => one == expected,
                Claim::Other(Value::Array(many)) => {
                    let mut named = false;
                    for a in many {
                        named |= a.as_str().ok_or(ValidationError::Claims)? == expected;
                    }
                    named
                }
                _ => return Err(ValidationError::Claims),
            };
            if !named {
                return Err(ValidationError::Audience);
            }
        }
        // `iss` is one string, exactly the expected issuer (an array is refused, whatever
        // it holds).
        match (&claims.iss, inner.keys.issuer()) {
            (Some(Claim::Str(iss)), Some(expected)) if iss == expected => {}
            (None, _) => return Err(ValidationError::Claims),
            _ => return Err(ValidationError::Issuer),
        }
        if let Some(iat) = seconds(claims.iat.as_ref())?
            && iat > now.saturating_add(leeway)
        {
            return Err(ValidationError::IssuedInFuture);
        }
        let parts = principal_parts(inner, index, &claims, exp, nbf)?;
        // The claims borrow from the payload; the principal keeps it.
        drop(claims);
        Ok(Principal::from_token(parts, payload))
    }
}

/// The profile's checks, and what the principal holds.
fn principal_parts(
    inner: &IssuerState,
    index: usize,
    claims: &Claims<'_>,
    exp: u64,
    nbf: Option<u64>,
) -> Result<PrincipalParts, ValidationError> {
    if let TokenProfile::Cognito { .. } = inner.profile
        && string(&claims.token_use)? != Some("access")
    {
        return Err(ValidationError::TokenUse);
    }
    if let TokenProfile::Rfc9068 { .. } = inner.profile {
        // RFC 9068 section 2.2: required claims (iss, exp and aud are checked above).
        let present = [&claims.sub, &claims.client_id, &claims.jti]
            .iter()
            .all(|v| matches!(v, Some(Claim::Str(s)) if !s.is_empty()))
            && claims.iat.as_ref().and_then(Claim::as_u64).is_some();
        if !present {
            return Err(ValidationError::Claims);
        }
    }
    // An empty identifier is no identifier: fall through to the next claim, and refuse
    // the token if none names the caller.
    let subject = non_empty(&claims.sub)?;
    let client_id = match (
        non_empty(&claims.client_id)?,
        non_empty(&claims.azp)?,
        subject,
    ) {
        (Some(c), _, _) | (None, Some(c), _) | (None, None, Some(c)) => c,
        (None, None, None) => return Err(ValidationError::Claims),
    };
    if let TokenProfile::Cognito { allowed_client_ids } = &inner.profile
        && !allowed_client_ids.is_empty()
        && !allowed_client_ids.iter().any(|c| c == client_id)
    {
        return Err(ValidationError::ClientNotAllowed);
    }
    let mut scopes = match (&claims.scope, &claims.scp) {
        (Some(v), _) | (None, Some(v)) => parse_scope_claim(v)?,
        (None, None) => ScopeSet::new(),
    };
    for (from, to) in &inner.scope_aliases {
        if scopes.contains(from) {
            scopes.insert(to.clone());
        }
    }
    // `cnf.jkt` (RFC 9449 section 6.1), when present, is the key thumbprint: a string.
    let dpop_jkt = match &claims.cnf {
        None => None,
        Some(cnf) => {
            let Claim::Other(Value::Object(cnf)) = cnf else {
                return Err(ValidationError::Claims);
            };
            match cnf.get("jkt") {
                None => None,
                Some(Value::String(jkt)) => Some(jkt.as_str()),
                Some(_) => return Err(ValidationError::Claims),
            }
        }
    };
    Ok(PrincipalParts {
        client_id: client_id.to_owned(),
        subject: subject.map(str::to_owned),
        scopes,
        expires_at: exp,
        not_before: nbf,
        issuer: inner.keys.issuer().unwrap_or_default().to_owned(),
        issuer_index: index,
        dpop_jkt: dpop_jkt.map(str::to_owned),
    })
}

/// `scope` / `scp`: a space-separated string, or an array of strings (IdentityServer).
fn parse_scope_claim(value: &Claim<'_>) -> Result<ScopeSet, ValidationError> {
    match value {
        Claim::Str(s) => ScopeSet::parse(s).map_err(|_| ValidationError::Claims),
        Claim::Other(Value::Array(items)) => items
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_claims_are_refused() {
        fn parse(json: &str) -> Result<Claims<'_>, serde_json::Error> {
            serde_json::from_str(json)
        }
        assert!(parse(r#"{"scope":"a","scope":"b"}"#).is_err());
        assert!(
            parse(r#"{"x":1,"y":2,"x":3}"#).is_err(),
            "unread claims too"
        );
        assert!(parse(r#"{"x":1,"\u0078":3}"#).is_err(), "escaped names too");
        let claims = parse(r#"{"scope":"a","x":{"y":[1,2]},"exp":5,"aud":["b"]}"#).unwrap();
        assert_eq!(claims.scope.as_ref().and_then(Claim::as_str), Some("a"));
        assert_eq!(claims.exp.as_ref().and_then(Claim::as_u64), Some(5));
        assert!(matches!(claims.aud, Some(Claim::Other(Value::Array(_)))));
        let escaped = parse(r#"{"sub":"a\"b"}"#).unwrap();
        assert_eq!(escaped.sub.as_ref().and_then(Claim::as_str), Some("a\"b"));
        assert!(parse("[1]").is_err());
        assert!(parse(r#"{"x":1"#).is_err(), "malformed unread claims too");
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

    /// The verification bound, with its one slot held by the test as a verification in
    /// progress would hold it: the interleaving is the test's, not the scheduler's.
    mod bound {
        use super::*;
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

    #[test]
    fn scope_claim_string_or_array() {
        let s = parse_scope_claim(&Claim::Str("a b".into())).unwrap();
        let a = parse_scope_claim(&Claim::Other(serde_json::json!(["b", "a"]))).unwrap();
        assert_eq!(s, a);
        assert!(parse_scope_claim(&Claim::Other(serde_json::json!([1]))).is_err());
        assert!(parse_scope_claim(&Claim::Other(serde_json::json!(5))).is_err());
    }
}
