//! The shared engine every fleet-wide structure talks to (the token cache and its fetch
//! locks, the user sessions and their renewal locks, the DPoP replay store): one Redis or
//! Valkey server, or a Redis Cluster (Valkey's too). Cargo feature `redis`.
//!
//! - **Which**: one URL (`redis://`, `rediss://` for TLS, `unix://`) is one server;
//!   several, comma-separated, are nodes of a cluster (some of them are enough: the rest
//!   are discovered), reached with redis-rs's cluster client, which follows the slots as
//!   they move and a replica promoted after a failover.
//! - **What the engine must do**: Redis 6.2 commands (`GET`, `SET NX PX`, `PSETEX`,
//!   `GETDEL`, `DEL`, `INCR`, `PEXPIRE`, `PTTL`, `EXISTS`) and Lua scripts (`EVALSHA`);
//!   nothing else. Every key this crate writes carries a TTL, so a `noeviction` instance
//!   never fills with them; and each logical entry (a token, its fetch lock and its 401
//!   tombstone; a session and its renewal lock; a DPoP key's counter and its proofs)
//!   shares one hash tag, so no command or script touches two cluster slots.
//! - **Lazy**: nothing is connected until first use, and reconnection is automatic, so a
//!   service starts while the engine is down.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// The URL (or one of the cluster's) is not a Redis URL. Never repeats it: it may hold a
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUrl;

/// A connection to the engine: one server, or a cluster. Cheap to clone (clones share the
/// connection).
#[derive(Clone)]
pub(crate) enum Engine {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

/// The URLs in `urls`: one, or several comma-separated (a cluster's nodes).
fn split(urls: &str) -> Vec<&str> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

impl Engine {
    /// Checks `urls` without connecting.
    pub(crate) fn check(urls: &str) -> Result<(), InvalidUrl> {
        let nodes = split(urls);
        if nodes.is_empty() {
            return Err(InvalidUrl);
        }
        for node in nodes {
            redis::Client::open(node).map_err(|_| InvalidUrl)?;
        }
        Ok(())
    }

    /// A lazy connection to `urls` (see the module documentation): each connection attempt
    /// and each answer bounded by `timeout`. Call from within a tokio runtime.
    pub(crate) fn connect(urls: &str, timeout: Duration) -> Result<Engine, InvalidUrl> {
        Self::check(urls)?;
        let nodes = split(urls);
        if let [one] = nodes.as_slice() {
            let client = redis::Client::open(*one).map_err(|_| InvalidUrl)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1));
            let connection =
                ConnectionManager::new_lazy_with_config(client, config).map_err(|_| InvalidUrl)?;
            return Ok(Engine::Node(connection));
        }
        let client = redis::cluster::ClusterClientBuilder::new(nodes)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // A command that meets a moved slot or a failover in progress is sent again a
            // few times, quickly: the callers' own time budgets bound the whole.
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
            .map_err(|_| InvalidUrl)?;
        let config = redis::cluster::ClusterConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        Ok(Engine::Cluster(
            client.get_pending_async_connection_with_config(config),
        ))
    }

    /// Whether this is a cluster.
    #[cfg(test)]
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Engine::Cluster(_))
    }
}

impl ConnectionLike for Engine {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Engine::Node(c) => c.req_packed_command(cmd),
            Engine::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Engine::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Engine::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Engine::Node(c) => c.get_db(),
            Engine::Cluster(c) => c.get_db(),
        }
    }
}

/// Whether the engine answers, as one structure (the token cache, the sessions, the replay
/// store) sees it. It says so once when the engine stops answering (a warning, the
/// `shared_auth_shared_engine_up` gauge at 0, an outage counted) and once when it answers
/// again (info, the gauge at 1); the failures in between go to `debug`.
pub(crate) struct Health {
    structure: &'static str,
    /// What the structure does meanwhile, for the warning.
    meanwhile: &'static str,
    up: AtomicBool,
}

impl Health {
    pub(crate) fn new(structure: &'static str, meanwhile: &'static str) -> Self {
        metrics::gauge!(crate::metrics::SHARED_ENGINE_UP, "structure" => structure).set(1.0);
        Health {
            structure,
            meanwhile,
            up: AtomicBool::new(true),
        }
    }

    /// The engine answered.
    pub(crate) fn answered(&self) {
        if !self.up.load(Ordering::Relaxed) && !self.up.swap(true, Ordering::SeqCst) {
            metrics::gauge!(crate::metrics::SHARED_ENGINE_UP, "structure" => self.structure)
                .set(1.0);
            tracing::info!(
                structure = self.structure,
                "the shared engine answers again; back to sharing"
            );
        }
    }

    /// The engine failed `operation` (an error, or no answer in time).
    pub(crate) fn failed(&self, operation: &str, error: &dyn fmt::Display) {
        if self.up.swap(false, Ordering::SeqCst) {
            metrics::gauge!(crate::metrics::SHARED_ENGINE_UP, "structure" => self.structure)
                .set(0.0);
            metrics::counter!(crate::metrics::SHARED_ENGINE_OUTAGES, "structure" => self.structure)
                .increment(1);
            tracing::warn!(
                structure = self.structure,
                operation,
                %error,
                "the shared engine (Redis) does not answer; {}",
                self.meanwhile
            );
        } else {
            tracing::debug!(structure = self.structure, operation, %error, "the shared engine does not answer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outage is said once however many operations fail in it, and its end once.
    #[test]
    fn an_outage_is_counted_once_and_its_end_is_seen() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let sample = |name: &str| {
            let text = handle.render();
            text.lines()
                .find(|l| l.starts_with(name) && l.contains("structure=\"unit\""))
                .and_then(|l| l.rsplit_once(' '))
                .map(|(_, v)| v.parse::<f64>().unwrap())
        };
        metrics::with_local_recorder(&recorder, || {
            let health = Health::new("unit", "the test goes on");
            assert_eq!(sample("shared_auth_shared_engine_up"), Some(1.0));
            for _ in 0..5 {
                health.failed("GET", &"refused");
            }
            assert_eq!(sample("shared_auth_shared_engine_up"), Some(0.0));
            assert_eq!(sample("shared_auth_shared_engine_outages_total"), Some(1.0));
            health.answered();
            health.answered();
            assert_eq!(sample("shared_auth_shared_engine_up"), Some(1.0));
            health.failed("GET", &"refused");
            assert_eq!(sample("shared_auth_shared_engine_outages_total"), Some(2.0));
        });
    }

    #[test]
    fn one_url_is_a_server_and_several_are_a_cluster() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let t = Duration::from_millis(50);
        assert!(
            !Engine::connect("redis://127.0.0.1:1", t)
                .unwrap()
                .is_cluster()
        );
        let cluster = Engine::connect("redis://127.0.0.1:1, redis://127.0.0.1:2", t).unwrap();
        assert!(cluster.is_cluster());
        for bad in ["", " , ", "http://x", "redis://127.0.0.1:1,nonsense"] {
            assert_eq!(Engine::check(bad).err(), Some(InvalidUrl), "{bad:?}");
        }
    }
}
