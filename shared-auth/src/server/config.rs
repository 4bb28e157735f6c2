//! What a validator is configured with: where each trusted issuer's metadata and keys come
//! from, what its tokens must look like, and the validator-wide knobs. Plain data with
//! defaults; [`JwtValidator::new`](super::JwtValidator::new) checks it.

use std::sync::Arc;
use std::time::Duration;

use super::certificate::CertificateBinding;
use super::claims::TokenProfile;
use super::dpop::DpopConfig;
use super::introspection::IntrospectionConfig;
use super::resource_metadata::ProtectedResource;
use crate::clock::{Clock, SystemClock};
use crate::discovery;
use crate::jose::SignatureAlgorithm;

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

/// Everything [`JwtValidator::new`](super::JwtValidator::new) needs.
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
    /// Certificate-bound tokens (RFC 8705): where a request's client certificate may come
    /// from besides its TLS connection (default: only the connection, as a
    /// [`ClientCertificate`](super::ClientCertificate) extension). A token with
    /// `cnf.x5t#S256` is refused without the matching certificate whatever this says.
    pub certificates: CertificateBinding,
    /// At most this many token signatures are verified at once (0: no bound). The
    /// default is one less than the available cores (at least 1), so that a flood of
    /// first-seen tokens, forged ones included, which each cost a full signature
    /// verification, always leaves a core to the requests whose tokens are cached. A
    /// token that finds the bound reached waits up to
    /// [`verification_wait`](Self::verification_wait) for a slot, then is refused with
    /// 503 and `Retry-After` ([`ValidationError::Overloaded`](super::ValidationError::Overloaded)), never 401. Cached tokens
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
    /// ([`JwtValidator::resource_metadata_router`](super::JwtValidator::resource_metadata_router)) and every 401 challenge of the auth
    /// layer points at it (`resource_metadata="..."`).
    pub resource: Option<ProtectedResource>,
    /// Opaque access tokens: a token that is not a compact JWS is checked at the issuer's
    /// introspection endpoint (RFC 7662; see the `introspection` module). `None` (the
    /// default): such a token is refused as malformed. JWTs are never introspected.
    pub introspection: Option<IntrospectionConfig>,
    /// The one clock of the validator: `exp`, `nbf` and `iat` of tokens, introspection
    /// answers and their cache, DPoP proof windows, nonces and replay expiry (default the
    /// system clock; tests move a `ManualClock`, feature `test-util`).
    pub clock: Arc<dyn Clock>,
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
    /// Start without this issuer's metadata or keys (default **true**, unlike the main
    /// issuer: during a migration, the other issuer being down must not block a deploy).
    /// Until they load, in the background and on first use, its tokens get 503; the other
    /// issuers' tokens are unaffected. False: start fails while it cannot be read.
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
            lazy: true,
            scope_aliases: Vec::new(),
        }
    }
}

pub(crate) fn default_algorithms() -> Vec<SignatureAlgorithm> {
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
            certificates: CertificateBinding::default(),
            max_concurrent_verifications: default_verification_bound(),
            verification_wait: Duration::from_millis(50),
            additional_issuers: Vec::new(),
            scope_aliases: Vec::new(),
            resource: None,
            introspection: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The issuer of this configuration's own fields, as an [`IssuerConfig`].
    pub(crate) fn primary_issuer(&self) -> IssuerConfig {
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
