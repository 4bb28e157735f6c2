//! [`Principal`]: the authenticated caller, and its axum extractor.
//!
//! The auth layer puts a `Principal` into the request extensions; handlers take it as an
//! argument. A handler that asks for a `Principal` on a route without the auth layer is a
//! wiring bug: it gets a 500 and a log line that says so, never an anonymous pass.

use std::fmt;
use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::challenge::problem;
use crate::scope::ScopeSet;

/// The authenticated caller, put into request extensions by the auth layer. Cheap to
/// clone: one reference count, shared with the validated-token cache.
#[derive(Clone)]
pub struct Principal(Arc<PrincipalData>);

struct PrincipalData {
    client_id: String,
    subject: Option<String>,
    scopes: ScopeSet,
    expires_at: u64,
    not_before: Option<u64>,
    issuer: Arc<str>,
    /// Which of the validator's issuers (for its per-issuer counters).
    issuer_index: usize,
    /// `cnf.jkt`: the token is DPoP-bound to the key with this thumbprint.
    dpop_jkt: Option<String>,
    /// `cnf.x5t#S256`: the token is bound to the client certificate with this thumbprint.
    certificate_thumbprint: Option<String>,
    /// The delegation chain (`act`): the current actor first.
    actors: Vec<String>,
    /// Whether `may_act` names the current actor (`None` without `may_act`).
    may_act: Option<bool>,
    /// The token's claims as the JSON the validator verified (a checked object with no
    /// repeated names), parsed into `claims` only if something asks for them: most
    /// handlers read the fields above, and building the map costs more than the rest of
    /// the validation beyond the signature.
    /// (A `Vec`, not a boxed slice: shrinking it to fit would cost a reallocation per
    /// new token.)
    payload: Vec<u8>,
    claims: OnceLock<Map<String, Value>>,
}

/// What validation read from a token, for [`Principal::from_token`].
pub(crate) struct PrincipalParts {
    pub(crate) client_id: String,
    pub(crate) subject: Option<String>,
    pub(crate) scopes: ScopeSet,
    pub(crate) expires_at: u64,
    pub(crate) not_before: Option<u64>,
    pub(crate) issuer: Arc<str>,
    pub(crate) issuer_index: usize,
    pub(crate) dpop_jkt: Option<String>,
    pub(crate) certificate_thumbprint: Option<String>,
    pub(crate) actors: Vec<String>,
    pub(crate) may_act: Option<bool>,
}

impl Principal {
    /// A principal from a validated token and its decoded JSON payload.
    pub(crate) fn from_token(parts: PrincipalParts, payload: Vec<u8>) -> Self {
        Principal(Arc::new(PrincipalData {
            client_id: parts.client_id,
            subject: parts.subject,
            scopes: parts.scopes,
            expires_at: parts.expires_at,
            not_before: parts.not_before,
            issuer: parts.issuer,
            issuer_index: parts.issuer_index,
            dpop_jkt: parts.dpop_jkt,
            certificate_thumbprint: parts.certificate_thumbprint,
            actors: parts.actors,
            may_act: parts.may_act,
            payload,
            claims: OnceLock::new(),
        }))
    }

    /// A principal from claims already parsed (tests, and sources other than a JWS).
    #[cfg(test)]
    pub(crate) fn new(
        client_id: String,
        subject: Option<String>,
        scopes: ScopeSet,
        expires_at: u64,
        issuer: String,
        claims: Map<String, Value>,
    ) -> Self {
        let dpop_jkt = claims
            .get("cnf")
            .and_then(|cnf| cnf.get("jkt"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let not_before = claims.get("nbf").and_then(Value::as_u64);
        Principal(Arc::new(PrincipalData {
            client_id,
            subject,
            scopes,
            expires_at,
            not_before,
            issuer: issuer.into(),
            issuer_index: 0,
            dpop_jkt,
            certificate_thumbprint: claims
                .get("cnf")
                .and_then(|cnf| cnf.get("x5t#S256"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            actors: Vec::new(),
            may_act: None,
            payload: Vec::new(),
            claims: OnceLock::from(claims),
        }))
    }

    /// The calling client: `client_id`, else `azp`, else `sub`.
    pub fn client_id(&self) -> &str {
        &self.0.client_id
    }
    /// The `sub` claim.
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }
    /// Granted scopes (`scope` or `scp`, string or array).
    pub fn scopes(&self) -> &ScopeSet {
        &self.0.scopes
    }
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.contains(scope)
    }
    /// `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> u64 {
        self.0.expires_at
    }
    /// `iss`.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }
    /// The JWK SHA-256 thumbprint the token is bound to (`cnf.jkt`, RFC 9449): `Some` only
    /// for a DPoP-bound token, which the auth layer accepts only with a valid proof of
    /// possession of that key.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.0.dpop_jkt.as_deref()
    }
    /// The SHA-256 thumbprint (base64url) of the client certificate the token is bound
    /// to (`cnf.x5t#S256`, RFC 8705), if it is certificate-bound. `JwtAuthLayer` lets such
    /// a request through only with that certificate; `JwtValidator::validate` alone does
    /// not check it (it has no request).
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.0.certificate_thumbprint.as_deref()
    }
    /// Who acts for the subject (RFC 8693 `act`, token exchange): the current actor (the
    /// service that called with this token) first, then each prior actor; empty for a
    /// token used by its own subject. At most 8 deep (a deeper or malformed chain is
    /// refused at validation). Only the current actor is for access decisions; the prior
    /// ones are for audit (RFC 8693 section 4.1).
    pub fn actors(&self) -> &[String] {
        &self.0.actors
    }
    /// The current actor (`act.sub`), if the token was issued to someone acting for its
    /// subject.
    pub fn actor(&self) -> Option<&str> {
        self.0.actors.first().map(String::as_str)
    }
    /// With a `may_act` claim (RFC 8693 section 4.4): whether it names the current actor.
    /// `None` without one.
    pub fn actor_allowed_by_may_act(&self) -> Option<bool> {
        self.0.may_act
    }
    /// Which of the validator's issuers accepted the token (configuration order).
    pub(crate) fn issuer_index(&self) -> usize {
        self.0.issuer_index
    }
    /// `nbf`, in seconds since the Unix epoch, if the token has one.
    pub(crate) fn not_before(&self) -> Option<u64> {
        self.0.not_before
    }
    /// Every claim, for custom policies. Parsed from the token on the first call (for
    /// this token, by any handler), then kept.
    pub fn claims(&self) -> &Map<String, Value> {
        self.0.claims.get_or_init(|| {
            // Never empty for a token that has claims: the validator read this payload
            // with the JOSE core's strict reader, which accepts only what this parse
            // accepts (objects only, every string valid, no repeated name; the property
            // test `fuzz_strict_json_is_a_subset_of_serde_json` holds it), and the
            // introspection path stores the answer as serde_json wrote it. The default
            // is unreachable.
            serde_json::from_slice(&self.0.payload).unwrap_or_default()
        })
    }
    /// One claim.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims().get(name)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("client_id", &self.0.client_id)
            .field("subject", &self.0.subject)
            .field("scopes", &self.0.scopes.to_string())
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}

/// The extractor's rejection: the route has no auth layer (a wiring bug: 500, and a log
/// line that says how to fix it).
#[derive(Debug)]
pub(crate) struct MissingAuthLayer;

impl IntoResponse for MissingAuthLayer {
    fn into_response(self) -> Response {
        tracing::error!(
            "a handler asked for the Principal but the route has no JwtAuthLayer: add .route_layer(JwtAuthLayer::new(..))"
        );
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server is misconfigured.",
        )
        .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    /// A 500 problem body when the route has no [`JwtAuthLayer`](super::JwtAuthLayer).
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| MissingAuthLayer.into_response())
    }
}
