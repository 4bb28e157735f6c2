//! Client authentication with a JWT: `private_key_jwt` (RFC 7523 section 2.2, OpenID
//! Connect Core section 9) and federated assertions minted by another issuer.
//!
//! - **private_key_jwt**: the client signs a short-lived JWT with a key registered in its
//!   `jwks`: `iss` = `sub` = its client id, `aud` = our issuer or token endpoint, `exp`
//!   required (at most [`MAX_ASSERTION_LIFETIME_SECS`] ahead), `jti` required and single
//!   use (remembered until `exp`).
//! - **federated**: the client sends a JWT another issuer (a platform: Kubernetes, SPIFFE,
//!   a CI system) minted for it, with its `client_id`. `iss` must be the trusted issuer,
//!   `sub` the trusted subject, `aud` ours, `exp` in the future, and the signature must
//!   verify with a key from the platform's JWKS. The `jti` is *not* single use unless the
//!   trust says `single_use`: a platform token is re-read from its file and sent again and
//!   again until the platform rotates it.
//!
//! Every refusal is `401 invalid_client` with a description of what was wrong.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{Jwk, JwkSet};

use crate::config::{ASSERTION_TYPE_JWT_BEARER, ClientConfig, FederatedTrust};
use crate::jose::{ReplayError, UnverifiedJws, key_fits, signature_verifies};
use crate::state::IssuerState;

/// Algorithms accepted for client assertions: asymmetric only, never `HS*` or `none`.
pub(crate) const ASSERTION_ALGS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// Clock leeway for `exp`, `iat` and `nbf`.
pub(crate) const LEEWAY_SECS: u64 = 5;

/// The latest `exp` accepted for a `private_key_jwt` assertion, from now: its `jti` is
/// remembered until then, so an unbounded `exp` would let the replay store fill up.
pub(crate) const MAX_ASSERTION_LIFETIME_SECS: u64 = 3600;

/// How long a fetched platform JWKS is used before it is fetched again.
const REMOTE_JWKS_TTL: Duration = Duration::from_secs(300);

/// The shortest time between two fetches of a platform JWKS (an unknown `kid` or a failed
/// fetch triggers a refetch at most this often).
const REMOTE_JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

/// A client authenticated by an assertion, with the `jti` still to be consumed once the
/// rest of the request is known to be good.
pub(crate) struct AssertionAuth<'a> {
    pub(crate) client: &'a ClientConfig,
    /// `(jti, exp)` to record as used, for single-use assertions.
    pub(crate) single_use_jti: Option<(String, u64)>,
    pub(crate) federated: bool,
}

/// Authenticates a client by `client_assertion`. `client_id` is the form parameter, if
/// any. The error is the `error_description` of an `invalid_client` answer.
pub(crate) async fn authenticate<'a>(
    state: &'a IssuerState,
    client_id: Option<&str>,
    assertion_type: &str,
    assertion: &str,
    now: u64,
) -> Result<AssertionAuth<'a>, String> {
    let jws = UnverifiedJws::parse(assertion).map_err(|e| format!("client assertion: {e}"))?;
    // Without client_id the assertion names the client: for private_key_jwt its iss is
    // the client id.
    let id = match client_id {
        Some(id) => id.to_owned(),
        None => jws
            .claim_str("iss")
            .map(str::to_owned)
            .ok_or_else(|| "client assertion has no iss and the request no client_id".to_owned())?,
    };
    let client = state.config.client(&id).ok_or_else(|| {
        if client_id.is_none() {
            format!(
                "unknown client {id:?} (the assertion's iss; a federated assertion needs \
                 the client_id parameter)"
            )
        } else {
            format!("unknown client {id:?}")
        }
    })?;
    let alg = jws
        .algorithm(&ASSERTION_ALGS)
        .map_err(|e| format!("client assertion {e}"))?;
    let iss = jws.claim_str("iss");
    match (&client.jwks, &client.federated) {
        (Some(jwks), _) if iss == Some(client.client_id.as_str()) => {
            private_key_jwt(state, client, jwks, &jws, alg, assertion_type, now)
        }
        (Some(_), Some(trust)) if iss == Some(trust.issuer.as_str()) => {
            federated(state, client, trust, &jws, alg, assertion_type, now).await
        }
        (None, Some(trust)) => {
            federated(state, client, trust, &jws, alg, assertion_type, now).await
        }
        (Some(_), _) => Err(format!(
            "client assertion iss {iss:?} must be the client id {:?}",
            client.client_id
        )),
        (None, None) => Err(format!(
            "client {:?} has no keys or federated trust registered for client assertions",
            client.client_id
        )),
    }
}

fn private_key_jwt<'a>(
    state: &IssuerState,
    client: &'a ClientConfig,
    jwks: &JwkSet,
    jws: &UnverifiedJws<'_>,
    alg: Algorithm,
    assertion_type: &str,
    now: u64,
) -> Result<AssertionAuth<'a>, String> {
    if assertion_type != ASSERTION_TYPE_JWT_BEARER {
        return Err(format!(
            "client_assertion_type must be {ASSERTION_TYPE_JWT_BEARER} for private_key_jwt"
        ));
    }
    let kid = jws.header.get("kid").and_then(|k| k.as_str());
    let candidates: Vec<&Jwk> = match kid {
        Some(kid) => {
            let found: Vec<&Jwk> = jwks
                .keys
                .iter()
                .filter(|k| k.common.key_id.as_deref() == Some(kid))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "client assertion signature: no key with kid {kid:?} is registered for \
                     client {:?}",
                    client.client_id
                ));
            }
            found
        }
        None => jwks.keys.iter().filter(|k| key_fits(k, alg)).collect(),
    };
    if !candidates.iter().any(|k| signature_verifies(jws, k, alg)) {
        return Err(format!(
            "client assertion signature does not verify with any key registered for client \
             {:?} (bad signature or unregistered key)",
            client.client_id
        ));
    }
    let id = client.client_id.as_str();
    if jws.claim_str("sub") != Some(id) {
        return Err(format!(
            "client assertion sub {:?} must be the client id {id:?}",
            jws.claim_str("sub")
        ));
    }
    check_audience(state, jws)?;
    let exp = check_times(jws, now)?;
    if exp > now + MAX_ASSERTION_LIFETIME_SECS + LEEWAY_SECS {
        return Err(format!(
            "client assertion exp is more than {MAX_ASSERTION_LIFETIME_SECS} s in the future"
        ));
    }
    let jti = jws
        .claim_str("jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| "client assertion jti is required (RFC 7523 section 3)".to_owned())?;
    Ok(AssertionAuth {
        client,
        single_use_jti: Some((format!("{id}\u{0}{jti}"), exp)),
        federated: false,
    })
}

async fn federated<'a>(
    state: &IssuerState,
    client: &'a ClientConfig,
    trust: &FederatedTrust,
    jws: &UnverifiedJws<'_>,
    alg: Algorithm,
    assertion_type: &str,
    now: u64,
) -> Result<AssertionAuth<'a>, String> {
    if assertion_type != trust.assertion_type {
        return Err(format!(
            "client_assertion_type must be {} for client {:?}",
            trust.assertion_type, client.client_id
        ));
    }
    if jws.claim_str("iss") != Some(trust.issuer.as_str()) {
        return Err(format!(
            "client assertion iss {:?} is not the federated issuer {:?} trusted for client {:?}",
            jws.claim_str("iss"),
            trust.issuer,
            client.client_id
        ));
    }
    let Some(remote) = state.federation.get(&client.client_id) else {
        return Err("no federated key set for this client".to_owned());
    };
    let kid = jws.header.get("kid").and_then(|k| k.as_str());
    // Built at start whenever a client has a federated trust, as this one does.
    let Some(http) = &state.http else {
        return Err("no HTTP client for federated key sets".to_owned());
    };
    let keys = remote.keys(http, kid).await?;
    let verified = keys
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
        .any(|k| signature_verifies(jws, k, alg));
    if !verified {
        return Err(format!(
            "federated client assertion signature does not verify with any key from {}",
            trust.jwks_uri
        ));
    }
    if jws.claim_str("sub") != Some(trust.subject.as_str()) {
        return Err(format!(
            "client assertion sub {:?} is not the federated subject {:?} trusted for client {:?}",
            jws.claim_str("sub"),
            trust.subject,
            client.client_id
        ));
    }
    check_audience(state, jws)?;
    let exp = check_times(jws, now)?;
    let single_use_jti = if trust.single_use {
        let jti = jws
            .claim_str("jti")
            .filter(|j| !j.is_empty())
            .ok_or_else(|| "client assertion jti is required (single_use is on)".to_owned())?;
        Some((
            format!("{}\u{0}{}\u{0}{jti}", client.client_id, trust.issuer),
            exp,
        ))
    } else {
        None
    };
    Ok(AssertionAuth {
        client,
        single_use_jti,
        federated: true,
    })
}

fn check_audience(state: &IssuerState, jws: &UnverifiedJws<'_>) -> Result<(), String> {
    let token_endpoint = state.token_endpoint();
    if jws.audience_matches(&[state.issuer.as_str(), token_endpoint.as_str()]) {
        Ok(())
    } else {
        Err(format!(
            "client assertion aud {} must be the issuer {:?} or the token endpoint {:?}",
            jws.claims
                .get("aud")
                .map_or_else(|| "(missing)".to_owned(), ToString::to_string),
            state.issuer,
            token_endpoint
        ))
    }
}

/// Checks `exp` (required, not past), `iat` and `nbf` (if present, not in the future),
/// each with [`LEEWAY_SECS`]. Returns `exp`.
fn check_times(jws: &UnverifiedJws<'_>, now: u64) -> Result<u64, String> {
    let exp = jws
        .claim_time("exp")
        .map_err(|e| format!("client assertion {e}"))?
        .ok_or_else(|| "client assertion exp is required".to_owned())?;
    if exp.saturating_add(LEEWAY_SECS) <= now {
        return Err(format!(
            "client assertion expired {} s ago",
            now.saturating_sub(exp)
        ));
    }
    for name in ["iat", "nbf"] {
        if let Some(t) = jws
            .claim_time(name)
            .map_err(|e| format!("client assertion {e}"))?
            && t > now + LEEWAY_SECS
        {
            return Err(format!(
                "client assertion {name} is {} s in the future",
                t - now
            ));
        }
    }
    Ok(exp)
}

/// Records a single-use assertion's `jti`; the error is the `invalid_client` description.
pub(crate) fn consume_jti(state: &IssuerState, jti: (String, u64), now: u64) -> Result<(), String> {
    let (key, exp) = jti;
    match state
        .assertion_jtis
        .insert(key, exp.saturating_add(LEEWAY_SECS), now)
    {
        Ok(()) => Ok(()),
        Err(ReplayError::Replayed) => {
            Err("client assertion jti was already used (replayed assertion)".to_owned())
        }
        Err(ReplayError::Full) => {
            Err("too many unexpired client assertions to remember; try again later".to_owned())
        }
    }
}

/// A platform's key set, fetched on first use, cached for [`REMOTE_JWKS_TTL`], fetched
/// again early when a `kid` is unknown, never more often than [`REMOTE_JWKS_MIN_REFETCH`].
pub(crate) struct RemoteJwks {
    uri: String,
    cache: Mutex<RemoteJwksCache>,
}

#[derive(Default)]
struct RemoteJwksCache {
    keys: Option<(JwkSet, Instant)>,
    last_attempt: Option<Instant>,
}

impl RemoteJwks {
    pub(crate) fn new(uri: String) -> Self {
        RemoteJwks {
            uri,
            cache: Mutex::new(RemoteJwksCache::default()),
        }
    }

    /// The key set, fetched if needed. `http` carries the timeouts, so this never hangs.
    async fn keys(&self, http: &reqwest::Client, kid: Option<&str>) -> Result<JwkSet, String> {
        let (cached, stale, may_fetch) = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            (
                cache.keys.as_ref().map(|(keys, _)| keys.clone()),
                cache
                    .keys
                    .as_ref()
                    .is_none_or(|(_, at)| at.elapsed() >= REMOTE_JWKS_TTL),
                cache
                    .last_attempt
                    .is_none_or(|at| at.elapsed() >= REMOTE_JWKS_MIN_REFETCH),
            )
        };
        let unknown_kid =
            kid.is_some_and(|kid| cached.as_ref().is_none_or(|set| set.find(kid).is_none()));
        if (stale || unknown_kid) && may_fetch {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last_attempt = Some(Instant::now());
            match self.fetch(http).await {
                Ok(keys) => {
                    self.cache.lock().unwrap_or_else(|e| e.into_inner()).keys =
                        Some((keys.clone(), Instant::now()));
                    return Ok(keys);
                }
                Err(e) => {
                    tracing::warn!(jwks_uri = %self.uri, error = %e, "federated JWKS fetch failed");
                    if cached.is_none() {
                        return Err(e);
                    }
                }
            }
        }
        cached.ok_or_else(|| {
            format!(
                "the federated JWKS {} could not be fetched recently; try again later",
                self.uri
            )
        })
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<JwkSet, String> {
        let fail = |e: reqwest::Error| format!("cannot fetch the federated JWKS {}: {e}", self.uri);
        http.get(&self.uri)
            .send()
            .await
            .map_err(fail)?
            .error_for_status()
            .map_err(fail)?
            .json::<JwkSet>()
            .await
            .map_err(fail)
    }
}

/// The platform key sets of the clients that have a federated trust, by client id.
pub(crate) fn remote_key_sets(clients: &[ClientConfig]) -> BTreeMap<String, RemoteJwks> {
    clients
        .iter()
        .filter_map(|c| {
            c.federated
                .as_ref()
                .map(|t| (c.client_id.clone(), RemoteJwks::new(t.jwks_uri.clone())))
        })
        .collect()
}
