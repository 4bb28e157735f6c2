//! The issuer's shared state: configuration, the keyring, counters and fault knobs.
//!
//! Everything a handler or a test handle touches lives here behind an `Arc`. Locks are
//! `std` locks held only for short, non-async sections (signing, swapping a key).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde::Serialize;

use crate::StartError;
use crate::client_auth::{RemoteJwks, remote_key_sets};
use crate::config::IssuerConfig;
use crate::dpop::DpopNonce;
use crate::jose::ReplayCache;
use crate::keys::{KeyError, SigningKey};
use crate::user_flows::UserFlows;

/// How many unexpired `jti` values each replay store holds at most (assertions and DPoP
/// proofs each); when full, new ones are refused until old ones expire.
const REPLAY_CAPACITY: usize = 100_000;

/// Timeout of a whole federated JWKS request, and of its connection.
const FEDERATION_TIMEOUT: Duration = Duration::from_secs(5);
const FEDERATION_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Seconds a retired key stays published after the last token it signed expired: validators
/// accept tokens up to their clock leeway (commonly 60 s) past `exp`.
const RETIRED_KEY_GRACE_SECS: u64 = 60;

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The current signing key and the retired keys that are still published.
pub(crate) struct Keyring {
    pub(crate) current: Arc<SigningKey>,
    pub(crate) previous: Vec<Arc<SigningKey>>,
}

impl Keyring {
    /// Keys to publish: current first, then retired keys whose tokens may still be in use.
    pub(crate) fn published(&self, now: u64) -> Vec<Arc<SigningKey>> {
        std::iter::once(self.current.clone())
            .chain(
                self.previous
                    .iter()
                    .filter(|k| k.latest_exp() + RETIRED_KEY_GRACE_SECS >= now)
                    .cloned(),
            )
            .collect()
    }
}

/// A snapshot of the issuer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IssuerStats {
    /// Every request that reached the token endpoint, answered or not.
    pub token_requests: u64,
    /// Tokens issued, per client id.
    pub tokens_issued: BTreeMap<String, u64>,
    /// Token requests answered with an error (including injected faults).
    pub token_errors: u64,
    /// Tokens issued to clients that authenticated with `client_secret_post` (the rest
    /// used HTTP Basic).
    pub tokens_issued_post: u64,
    /// Requests to the JWKS endpoint (including ones refused while it is down).
    pub jwks_fetches: u64,
    /// Requests to the discovery document (including ones refused while it is down).
    pub discovery_fetches: u64,
    /// Tokens issued to clients that authenticated with a client assertion
    /// (`private_key_jwt` or federated).
    pub tokens_issued_assertion: u64,
    /// Of [`Self::tokens_issued_assertion`], those whose assertion came from a federated
    /// issuer.
    pub tokens_issued_federated: u64,
    /// Token requests whose client assertion was refused (`invalid_client`).
    pub client_assertions_refused: u64,
    /// DPoP-bound tokens issued (`token_type: DPoP`, with `cnf.jkt`).
    pub dpop_tokens_issued: u64,
    /// Token requests answered `invalid_dpop_proof` (a bad, replayed or missing proof).
    pub dpop_proofs_refused: u64,
    /// Token requests answered `use_dpop_nonce` (nonce missing or not current).
    pub dpop_nonce_challenges: u64,
    /// Every request that reached `/introspect`, answered or not (injected faults and
    /// refused callers included).
    pub introspection_requests: u64,
    /// The most `/introspect` requests that were in progress at once (the injected delay
    /// included), since the start.
    pub introspection_max_in_flight: u64,
    /// Opaque access tokens issued (through the token endpoint or the handle).
    pub opaque_tokens_issued: u64,
    /// Authorization codes handed out after a successful login at `/authorize`.
    pub authorization_codes_issued: u64,
    /// Login form posts with a wrong username or password.
    pub login_failures: u64,
    /// Every refresh token grant that reached the token endpoint's grant handling,
    /// answered or not (injected refresh failures included).
    pub refresh_requests: u64,
    /// Refresh token grants that succeeded (a token was rotated).
    pub refreshes: u64,
    /// Already-rotated refresh tokens presented again: each revoked its whole family.
    pub refresh_reuse_detections: u64,
    /// Sessions ended at `/end_session`.
    pub sessions_ended: u64,
    /// Refresh tokens revoked at `/revoke` (RFC 7009), each with its family.
    pub refresh_tokens_revoked: u64,
}

impl IssuerStats {
    /// Tokens issued to all clients.
    pub fn tokens_issued_total(&self) -> u64 {
        self.tokens_issued.values().sum()
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) token_requests: AtomicU64,
    pub(crate) token_errors: AtomicU64,
    pub(crate) jwks_fetches: AtomicU64,
    pub(crate) discovery_fetches: AtomicU64,
    pub(crate) tokens_issued: Mutex<BTreeMap<String, u64>>,
    pub(crate) tokens_issued_post: AtomicU64,
    pub(crate) tokens_issued_assertion: AtomicU64,
    pub(crate) tokens_issued_federated: AtomicU64,
    pub(crate) client_assertions_refused: AtomicU64,
    pub(crate) dpop_tokens_issued: AtomicU64,
    pub(crate) dpop_proofs_refused: AtomicU64,
    pub(crate) dpop_nonce_challenges: AtomicU64,
    pub(crate) introspection_requests: AtomicU64,
    pub(crate) introspection_in_flight: AtomicU64,
    pub(crate) introspection_max_in_flight: AtomicU64,
    pub(crate) opaque_tokens_issued: AtomicU64,
}

/// Fault injection knobs, read by the handlers on every request.
pub(crate) struct Faults {
    pub(crate) token_delay_ms: AtomicU64,
    pub(crate) jwks_delay_ms: AtomicU64,
    pub(crate) fail_next_token: AtomicU32,
    pub(crate) fail_status: AtomicU32,
    pub(crate) jwks_available: AtomicBool,
    pub(crate) discovery_available: AtomicBool,
    /// Whether the published JWKs carry `alg` (Entra ID's do not).
    pub(crate) publish_alg: AtomicBool,
    pub(crate) introspection_delay_ms: AtomicU64,
    pub(crate) fail_next_introspection: AtomicU32,
    pub(crate) introspection_fail_status: AtomicU32,
    pub(crate) introspection_available: AtomicBool,
    /// When set, RFC 9701 introspection responses are signed with this key (same `kid` as
    /// the current key, other material, never published): a validator must refuse them.
    pub(crate) introspection_foreign_key: Mutex<Option<Arc<SigningKey>>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            token_delay_ms: AtomicU64::new(0),
            jwks_delay_ms: AtomicU64::new(0),
            fail_next_token: AtomicU32::new(0),
            fail_status: AtomicU32::new(503),
            jwks_available: AtomicBool::new(true),
            discovery_available: AtomicBool::new(true),
            publish_alg: AtomicBool::new(true),
            introspection_delay_ms: AtomicU64::new(0),
            fail_next_introspection: AtomicU32::new(0),
            introspection_fail_status: AtomicU32::new(503),
            introspection_available: AtomicBool::new(true),
            introspection_foreign_key: Mutex::new(None),
        }
    }
}

impl Faults {
    /// Takes one injected failure if any are left; returns its status.
    pub(crate) fn take_token_failure(&self) -> Option<StatusCode> {
        take_failure(&self.fail_next_token, &self.fail_status)
    }

    /// Takes one injected introspection failure if any are left; returns its status.
    pub(crate) fn take_introspection_failure(&self) -> Option<StatusCode> {
        take_failure(
            &self.fail_next_introspection,
            &self.introspection_fail_status,
        )
    }
}

fn take_failure(left: &AtomicU32, status: &AtomicU32) -> Option<StatusCode> {
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .ok()
        .map(|_| {
            let code = status.load(Ordering::SeqCst);
            u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
        })
}

/// What the issuer remembers of an opaque access token: the claims a JWT would carry.
#[derive(Debug, Clone)]
pub(crate) struct OpaqueToken {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) sub: String,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    /// `cnf.jkt` when the token is DPoP-bound.
    pub(crate) jkt: Option<String>,
    /// Cleared by revocation.
    pub(crate) active: bool,
}

/// Opaque tokens by their value, and the revoked JWTs (by their exact text). A test
/// issuer: nothing is ever evicted but on expiry at lookup.
#[derive(Default)]
pub(crate) struct TokenStore {
    pub(crate) opaque: Mutex<HashMap<String, OpaqueToken>>,
    pub(crate) revoked_jwts: Mutex<HashSet<String>>,
}

/// State shared by all handlers.
pub(crate) struct IssuerState {
    pub(crate) config: IssuerConfig,
    /// `iss` and base of every endpoint URL.
    pub(crate) issuer: String,
    pub(crate) token_lifetime_secs: AtomicU64,
    pub(crate) keyring: RwLock<Keyring>,
    pub(crate) counters: Counters,
    pub(crate) faults: Faults,
    /// `jti`s of single-use client assertions, until their `exp`.
    pub(crate) assertion_jtis: ReplayCache,
    /// `jti`s of DPoP proofs, until their `iat` window has passed.
    pub(crate) dpop_jtis: ReplayCache,
    pub(crate) dpop_nonce: DpopNonce,
    /// Platform key sets of the clients with a federated trust, by client id.
    pub(crate) federation: BTreeMap<String, RemoteJwks>,
    /// Opaque tokens and revocations, for `/introspect`.
    pub(crate) tokens: TokenStore,
    /// For platform JWKS requests; carries the timeouts. Only built when a client has a
    /// federated trust: building it loads the TLS roots, which an issuer without
    /// federation (the scratch image) has no need of.
    pub(crate) http: Option<reqwest::Client>,
    /// Logins, codes, refresh tokens and sessions of the authorization code flow.
    pub(crate) users: UserFlows,
    /// The mTLS token endpoint's CA and client certificates (`mtls = true`).
    pub(crate) mtls: Option<Arc<crate::mtls::Mtls>>,
}

impl IssuerState {
    pub(crate) fn new(config: IssuerConfig, issuer: String) -> Result<Self, StartError> {
        let key = match &config.key_file {
            Some(path) => SigningKey::from_pem_file(config.algorithm, path)?,
            None => SigningKey::generate(config.algorithm)?,
        };
        let federation = remote_key_sets(&config.clients);
        let http = if federation.is_empty() {
            None
        } else {
            Some(
                reqwest::Client::builder()
                    .timeout(FEDERATION_TIMEOUT)
                    .connect_timeout(FEDERATION_CONNECT_TIMEOUT)
                    .build()
                    .map_err(StartError::HttpClient)?,
            )
        };
        let mtls = match config.mtls {
            true => Some(Arc::new(crate::mtls::Mtls::generate()?)),
            false => None,
        };
        Ok(IssuerState {
            mtls,
            assertion_jtis: ReplayCache::new(REPLAY_CAPACITY),
            dpop_jtis: ReplayCache::new(REPLAY_CAPACITY),
            dpop_nonce: DpopNonce::new(config.dpop_nonce),
            federation,
            http,
            token_lifetime_secs: AtomicU64::new(config.token_lifetime.as_secs()),
            config,
            issuer,
            keyring: RwLock::new(Keyring {
                current: Arc::new(key),
                previous: Vec::new(),
            }),
            counters: Counters::default(),
            faults: Faults::default(),
            tokens: TokenStore::default(),
            users: UserFlows::default(),
        })
    }

    /// At the root of the issuer's origin: under a path prefix (Cognito's pool id) the
    /// token endpoint is not prefixed, as Cognito's lives on the pool's own domain.
    pub(crate) fn token_endpoint(&self) -> String {
        self.root_url("/oauth2/token")
    }

    /// `path` on the issuer's origin, outside the path prefix (where the token endpoint
    /// and its alias live).
    pub(crate) fn root_url(&self, path: &str) -> String {
        let prefix = self.config.path_prefix.as_deref().unwrap_or("");
        let base = self.issuer.strip_suffix(prefix).unwrap_or(&self.issuer);
        format!("{base}{path}")
    }

    /// `/introspect` (RFC 7662) and `/revoke` (RFC 7009) live beside the token endpoint.
    pub(crate) fn introspection_endpoint(&self) -> String {
        self.root_url("/introspect")
    }

    pub(crate) fn revocation_endpoint(&self) -> String {
        self.root_url("/revoke")
    }

    pub(crate) fn jwks_uri(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer)
    }

    pub(crate) fn current_key(&self) -> Arc<SigningKey> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the data is
        // still a valid keyring, so keep serving.
        self.keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .current
            .clone()
    }

    pub(crate) fn published_keys(&self) -> Vec<Arc<SigningKey>> {
        self.keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .published(unix_now())
    }

    /// Makes a new key current; the old one stays published until its tokens expire.
    pub(crate) fn rotate_key(&self) -> Result<String, KeyError> {
        let new_key = Arc::new(SigningKey::generate(self.config.algorithm)?);
        let kid = new_key.kid().to_owned();
        let mut ring = self.keyring.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut ring.current, new_key);
        let now = unix_now();
        ring.previous
            .retain(|k| k.latest_exp() + RETIRED_KEY_GRACE_SECS >= now);
        ring.previous.insert(0, old);
        tracing::info!(kid = %kid, "signing key rotated");
        Ok(kid)
    }

    /// Swaps the current key for new material under the same `kid`; the old material is
    /// dropped, not retired, so it is no longer published.
    pub(crate) fn replace_current_key_material(&self) -> Result<(), KeyError> {
        // Generated outside the lock: RSA generation takes tens of milliseconds. The kid is
        // taken under the lock, so a concurrent rotation cannot leave two keys with one kid.
        let fresh = SigningKey::generate(self.config.algorithm)?;
        let mut ring = self.keyring.write().unwrap_or_else(|e| e.into_inner());
        let kid = ring.current.kid().to_owned();
        ring.current = Arc::new(fresh.with_kid(kid));
        tracing::info!(kid = %ring.current.kid(), "signing key material replaced, kid kept");
        Ok(())
    }

    /// Stops publishing every retired key at once (tests: "key removed from JWKS").
    pub(crate) fn drop_previous_keys(&self) {
        self.keyring
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .previous
            .clear();
    }

    pub(crate) fn stats(&self) -> IssuerStats {
        let c = &self.counters;
        let u = &self.users.counters;
        IssuerStats {
            token_requests: c.token_requests.load(Ordering::SeqCst),
            tokens_issued: c
                .tokens_issued
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            token_errors: c.token_errors.load(Ordering::SeqCst),
            tokens_issued_post: c.tokens_issued_post.load(Ordering::SeqCst),
            jwks_fetches: c.jwks_fetches.load(Ordering::SeqCst),
            discovery_fetches: c.discovery_fetches.load(Ordering::SeqCst),
            tokens_issued_assertion: c.tokens_issued_assertion.load(Ordering::SeqCst),
            tokens_issued_federated: c.tokens_issued_federated.load(Ordering::SeqCst),
            client_assertions_refused: c.client_assertions_refused.load(Ordering::SeqCst),
            dpop_tokens_issued: c.dpop_tokens_issued.load(Ordering::SeqCst),
            dpop_proofs_refused: c.dpop_proofs_refused.load(Ordering::SeqCst),
            dpop_nonce_challenges: c.dpop_nonce_challenges.load(Ordering::SeqCst),
            introspection_requests: c.introspection_requests.load(Ordering::SeqCst),
            introspection_max_in_flight: c.introspection_max_in_flight.load(Ordering::SeqCst),
            opaque_tokens_issued: c.opaque_tokens_issued.load(Ordering::SeqCst),
            authorization_codes_issued: u.authorization_codes_issued.load(Ordering::SeqCst),
            login_failures: u.login_failures.load(Ordering::SeqCst),
            refresh_requests: u.refresh_requests.load(Ordering::SeqCst),
            refreshes: u.refreshes.load(Ordering::SeqCst),
            refresh_reuse_detections: u.refresh_reuse_detections.load(Ordering::SeqCst),
            sessions_ended: u.sessions_ended.load(Ordering::SeqCst),
            refresh_tokens_revoked: u.refresh_tokens_revoked.load(Ordering::SeqCst),
        }
    }

    pub(crate) fn token_lifetime(&self) -> Duration {
        Duration::from_secs(self.token_lifetime_secs.load(Ordering::SeqCst))
    }
}
