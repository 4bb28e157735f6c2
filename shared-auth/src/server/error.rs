//! Why a validator could not start ([`StartError`]) and why a token was refused
//! ([`ValidationError`]). The bottom of the server half: every other module may use it, it
//! uses none of them.

use crate::discovery::DiscoveryError;

/// Why the validator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The discovery document could not be fetched or read.
    #[error(
        "cannot read the issuer's discovery document at {url}: {reason} (check the issuer's URL and that the issuer is reachable)"
    )]
    Discovery {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The discovery document hands over an endpoint that breaks the transport policy.
    #[error(
        "the discovery document at {url} hands over an unusable {field}: {reason} (plain http to a host that is not loopback needs the validator's insecure-http opt-in, on a test network only)"
    )]
    UnusableEndpoint {
        /// The discovery URL.
        url: String,
        /// The field (`jwks_uri`).
        field: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
    /// The metadata address does not imply the issuer and none is configured.
    #[error(
        "the issuer cannot be derived from the metadata address {url} (it neither ends in /.well-known/openid-configuration nor follows /.well-known/oauth-authorization-server): configure the expected issuer"
    )]
    IssuerRequired {
        /// The metadata address.
        url: String,
    },
    /// The discovered issuer is not the configured one.
    #[error(
        "the discovery document at {url} names issuer {found:?}, expected {expected:?} (check the authority URL, or opt out of the check explicitly)"
    )]
    IssuerMismatch {
        /// The discovery URL.
        url: String,
        /// The configured issuer.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// The JWKS could not be loaded at start.
    #[error(
        "cannot load the issuer's signing keys: {0} (is the issuer reachable? use lazy mode to start without keys)"
    )]
    Keys(String),
    /// The configuration is not usable.
    #[error("invalid validator configuration: {0}")]
    Config(String),
}

/// Why a token was refused. The `Display` text is short and safe to send to the caller:
/// it never contains the token or anything taken from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Not a well-formed JWT (parts, base64url, JSON header).
    #[error("the access token is malformed")]
    Malformed,
    /// `alg` is unknown, `none`, not allowed, or differs from the key's.
    #[error("the token's signing algorithm is not accepted")]
    Algorithm,
    /// The header carries `crit` extensions this validator does not understand.
    #[error("the token uses critical header extensions that are not supported")]
    CriticalHeader,
    /// `typ` is not `at+jwt` under the rfc9068 profile, or names another kind of JWT.
    #[error("the token type (typ) is not an access token type")]
    TokenType,
    /// No key with that `kid` (or no `kid` while the issuer has several keys).
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// The issuer's keys could not be loaded; the next attempt is allowed in
    /// `retry_after` seconds.
    #[error("the issuer's signing keys are not available")]
    KeysUnavailable {
        /// Seconds until the key cache may try again (for `Retry-After`).
        retry_after: u64,
    },
    /// As many signature verifications as the validator allows at once
    /// ([`max_concurrent_verifications`](super::ValidatorConfig::max_concurrent_verifications))
    /// were running for the whole wait: the token was not checked. Try again in
    /// `retry_after` seconds.
    #[error("token validation is busy")]
    Overloaded {
        /// Seconds to wait before trying again (for `Retry-After`).
        retry_after: u64,
    },
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    Signature,
    /// `exp` has passed (beyond the leeway).
    #[error("the access token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the access token is not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("the access token was issued in the future")]
    IssuedInFuture,
    /// `iss` is not the expected issuer.
    #[error("the token issuer is not accepted")]
    Issuer,
    /// `aud` is missing or does not contain this API's audience.
    #[error("the token audience is not accepted")]
    Audience,
    /// A required claim is missing or has the wrong type.
    #[error("the token lacks a required claim or a claim has the wrong type")]
    Claims,
    /// Not an access token: `token_use` is not `access` under the cognito profile, or the
    /// token is marked as a refresh, ID or logout token (`token_use`, `typ`, `token_type`).
    #[error("the token is not an access token")]
    TokenUse,
    /// The client is not in the allow-list.
    #[error("the client is not allowed")]
    ClientNotAllowed,
    /// The issuer's introspection endpoint (RFC 7662) says the opaque token is not active:
    /// unknown, expired or revoked.
    #[error("the access token is not active")]
    Inactive,
    /// An opaque token could not be introspected: the endpoint is down, timed out, answered
    /// with an error or with a response that does not verify. Not the caller's fault: 503,
    /// try again in `retry_after` seconds.
    #[error("token introspection is unavailable")]
    IntrospectionUnavailable {
        /// Seconds to wait before trying again (for `Retry-After`).
        retry_after: u64,
    },
}

impl ValidationError {
    /// A stable machine-readable reason (for logs and metrics).
    pub fn reason(self) -> &'static str {
        match self {
            ValidationError::Malformed => "malformed",
            ValidationError::Algorithm => "algorithm",
            ValidationError::CriticalHeader => "crit_header",
            ValidationError::TokenType => "typ",
            ValidationError::UnknownKey => "unknown_kid",
            ValidationError::KeysUnavailable { .. } => "keys_unavailable",
            ValidationError::Overloaded { .. } => "overloaded",
            ValidationError::Signature => "signature",
            ValidationError::Expired => "expired",
            ValidationError::NotYetValid => "not_yet_valid",
            ValidationError::IssuedInFuture => "iat_future",
            ValidationError::Issuer => "issuer",
            ValidationError::Audience => "audience",
            ValidationError::Claims => "claims",
            ValidationError::TokenUse => "token_use",
            ValidationError::ClientNotAllowed => "client_not_allowed",
            ValidationError::Inactive => "inactive",
            ValidationError::IntrospectionUnavailable { .. } => "introspection_unavailable",
        }
    }
}

impl From<DiscoveryError> for StartError {
    fn from(e: DiscoveryError) -> Self {
        match e {
            DiscoveryError::IssuerMismatch {
                url,
                expected,
                found,
            } => StartError::IssuerMismatch {
                url,
                expected,
                found,
            },
            DiscoveryError::Fetch { url, reason } => StartError::Discovery { url, reason },
            DiscoveryError::UnusableUrl { url, field, reason } => {
                StartError::UnusableEndpoint { url, field, reason }
            }
        }
    }
}
