//! Metrics, through the `metrics` facade: whatever recorder the process installs receives
//! them, and without one they cost nothing. The services install a Prometheus recorder for
//! their `GET /metrics` with `service_kit::metrics` (outside this crate: exporting is
//! service plumbing, not auth).
//!
//! Labels never carry token contents: a client's configured name, a configured issuer, an
//! outcome, a reason code.
//!
//! The series, their labels and what they count are in one table, in the repository's
//! `docs/operations.md` (section "Metrics"); `tests/metrics_doc.rs` fails when a series
//! named here is missing from it.
//!
//! Handles for the hot paths are registered when the token manager and the auth layer
//! are built, so install the recorder first.
//!
//! The counters bumped on every request (accepted tokens, validated-cache hits, warm token
//! lookups) are sharded per thread, so two cores never contend for one cache line: with a
//! single shared atomic, `just load` measured my-service at 92 % of the no-auth build
//! instead of 95 %. Their totals reach the recorder when [`publish`] runs; the
//! `/metrics` endpoint calls it before rendering. With another recorder, call it on your
//! export schedule.

/// Token lookups by result.
pub(crate) const TOKEN_CACHE_LOOKUPS: &str = "shared_auth_token_cache_lookups_total";
/// Background renewals started.
pub(crate) const TOKEN_REFRESH_AHEAD: &str = "shared_auth_token_refresh_ahead_total";
/// Token requests by outcome.
pub(crate) const TOKEN_REQUESTS: &str = "shared_auth_token_requests_total";
/// Token request latency.
pub(crate) const TOKEN_REQUEST_DURATION: &str = "shared_auth_token_request_duration_seconds";
/// Downstream 401s retried after a renewal.
pub(crate) const UNAUTHORIZED_RETRIES: &str = "shared_auth_unauthorized_retries_total";
/// Client assertions made, by kind and outcome.
pub(crate) const CLIENT_ASSERTIONS: &str = "shared_auth_client_assertions_total";
/// Requests retried with a new DPoP nonce.
pub(crate) const DPOP_NONCE_RETRIES: &str = "shared_auth_dpop_nonce_retries_total";
/// Auth-layer decisions by outcome and reason.
pub(crate) const VALIDATIONS: &str = "shared_auth_validations_total";
/// Validated-token cache hits.
pub(crate) const VALIDATED_CACHE_HITS: &str = "shared_auth_validated_cache_hits_total";
/// JWKS refreshes by reason and outcome.
pub(crate) const JWKS_REFRESHES: &str = "shared_auth_jwks_refreshes_total";
/// 403s from a scope policy.
pub(crate) const SCOPE_DENIALS: &str = "shared_auth_scope_denials_total";
/// DPoP proofs by outcome and reason.
pub(crate) const DPOP_PROOFS: &str = "shared_auth_dpop_proofs_total";
/// Introspection calls by outcome.
pub(crate) const INTROSPECTIONS: &str = "shared_auth_introspections_total";
/// Opaque tokens answered from the introspection cache.
pub(crate) const INTROSPECTION_CACHE_HITS: &str = "shared_auth_introspection_cache_hits_total";
/// Users logged in (sessions created).
pub(crate) const USER_LOGINS: &str = "shared_auth_user_logins_total";
/// User access token renewals with a refresh token, by outcome.
pub(crate) const USER_TOKEN_REFRESHES: &str = "shared_auth_user_token_refreshes_total";
/// Users signed out.
pub(crate) const USER_LOGOUTS: &str = "shared_auth_user_logouts_total";
/// Whether the shared engine (Redis, Valkey, a cluster) answers, per structure.
pub(crate) const SHARED_ENGINE_UP: &str = "shared_auth_shared_engine_up";
/// Times a structure lost its shared engine and fell back (or refused, for replay).
pub(crate) const SHARED_ENGINE_OUTAGES: &str = "shared_auth_shared_engine_outages_total";

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Shards per hot counter: more than the cores of the machines this runs on, so threads
/// rarely share one.
const SHARDS: usize = 16;

/// One shard on a cache line of its own (128 bytes: adjacent-line prefetch pairs lines).
/// Hand-rolled: one attribute, not worth a dependency.
#[repr(align(128))]
#[derive(Default)]
struct Shard(AtomicU64);

struct HotInner {
    shards: [Shard; SHARDS],
    counter: metrics::Counter,
}

/// A counter for the per-request paths: an uncontended add on this thread's shard. One
/// per metric key in the process, however many layers or managers bump it.
#[derive(Clone)]
pub(crate) struct HotCounter(Arc<HotInner>);

fn hot_counters() -> &'static Mutex<HashMap<String, Arc<HotInner>>> {
    static HOT: OnceLock<Mutex<HashMap<String, Arc<HotInner>>>> = OnceLock::new();
    HOT.get_or_init(Default::default)
}

impl HotCounter {
    /// The hot counter for `name` with `labels` (registered with the recorder once).
    pub(crate) fn new(name: &'static str, labels: &[(&'static str, &str)]) -> Self {
        let mut key = name.to_owned();
        for (k, v) in labels {
            key.push_str(&format!("\u{1f}{k}={v}"));
        }
        let mut hot = hot_counters().lock().unwrap_or_else(|e| e.into_inner());
        let inner = hot.entry(key).or_insert_with(|| {
            let labels: Vec<metrics::Label> = labels
                .iter()
                .map(|(k, v)| metrics::Label::new(*k, (*v).to_owned()))
                .collect();
            Arc::new(HotInner {
                shards: Default::default(),
                counter: metrics::counter!(name, labels),
            })
        });
        HotCounter(inner.clone())
    }

    /// Adds one.
    #[inline]
    pub(crate) fn increment(&self) {
        self.0.shards[shard()].0.fetch_add(1, Ordering::Relaxed);
    }
}

/// This thread's shard, assigned round-robin on first use.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// Hands the hot counters' totals to the recorder. Cheap (a sum per counter); the
/// Prometheus endpoint calls it on every scrape. (`shared_auth::publish_metrics`.)
pub fn publish() {
    let hot = hot_counters().lock().unwrap_or_else(|e| e.into_inner());
    for inner in hot.values() {
        let total = inner
            .shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum();
        inner.counter.absolute(total);
    }
}

/// Registers the help text of every metric with the installed recorder.
/// (`shared_auth::describe_metrics`.)
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        TOKEN_CACHE_LOOKUPS,
        "Token lookups by client and result (hit: no token request needed)"
    );
    describe_counter!(
        TOKEN_REFRESH_AHEAD,
        "Background token renewals started before expiry"
    );
    describe_counter!(
        TOKEN_REQUESTS,
        "Token requests to the issuer by client and outcome"
    );
    describe_histogram!(
        TOKEN_REQUEST_DURATION,
        Unit::Seconds,
        "Token request latency, retries included"
    );
    describe_counter!(
        UNAUTHORIZED_RETRIES,
        "Downstream 401s answered by one token renewal and one retry"
    );
    describe_counter!(VALIDATIONS, "Access tokens accepted or rejected, by reason");
    describe_counter!(
        VALIDATED_CACHE_HITS,
        "Accepted tokens answered by the validated-token cache"
    );
    describe_counter!(JWKS_REFRESHES, "JWKS fetches by reason and outcome");
    describe_counter!(SCOPE_DENIALS, "Requests refused for insufficient scope");
    describe_counter!(
        DPOP_PROOFS,
        "DPoP proofs accepted or rejected by the auth layer, by reason"
    );
    describe_counter!(
        INTROSPECTIONS,
        "Introspection calls for opaque tokens, by outcome"
    );
    describe_counter!(
        INTROSPECTION_CACHE_HITS,
        "Opaque tokens answered by the introspection cache"
    );
    describe_counter!(USER_LOGINS, "Users logged in (sessions created)");
    describe_counter!(
        USER_TOKEN_REFRESHES,
        "User access token renewals with a refresh token, by outcome"
    );
    describe_counter!(USER_LOGOUTS, "Users signed out");
    metrics::describe_gauge!(
        SHARED_ENGINE_UP,
        "1 while the shared engine answers, 0 while the structure falls back, by structure"
    );
    describe_counter!(
        SHARED_ENGINE_OUTAGES,
        "Times the shared engine stopped answering, by structure"
    );
}
