//! `just up` as a process (`infra/local/up.sh` on the binaries this test build made), in
//! its own process group on free ports, its output read line by line. Used by
//! `tests/up.rs` and `tests/telemetry.rs`.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The repository.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Three ports free a moment ago (issuer, service, BFF).
pub fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// A running `just up`; dropped, its whole group is killed.
pub struct Up {
    /// Also the process group id (the script leads its own group).
    pub pid: u32,
    /// The script's exit status, sent by the thread that waits for it.
    exited: mpsc::Receiver<ExitStatus>,
    lines: mpsc::Receiver<String>,
    /// The lines read so far.
    pub log: Vec<String>,
    /// Where the issuer wrote its mTLS files (removed with the run).
    mtls_dir: PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        // If the test failed half-way, leave nothing running.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.pid)])
            .status();
        let _ = std::fs::remove_dir_all(&self.mtls_dir);
    }
}

/// Starts `just up` on `ports` with `env` added to its environment.
pub fn start(ports: [u16; 3], env: &[(&str, &str)]) -> Up {
    // Where cargo put the binaries: CARGO_TARGET_DIR when set (relative to the root).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target".into());
    let bin = root().join(target).join("debug");
    let mtls_dir =
        std::env::temp_dir().join(format!("up-mtls-{}-{}", std::process::id(), ports[0]));
    assert!(
        bin.join("my-bff").exists() && bin.join("mock-issuer").exists(),
        "build the binaries first (cargo build --bins) into {}",
        bin.display()
    );
    let mut child = Command::new("bash")
        .arg(root().join("infra/local/up.sh"))
        .current_dir(root())
        .env("BIN_DIR", &bin)
        .env("UP_ISSUER_PORT", ports[0].to_string())
        .env("UP_SERVICE_PORT", ports[1].to_string())
        .env("UP_BFF_PORT", ports[2].to_string())
        .env("RUST_LOG", "info")
        .env("UP_MTLS_DIR", &mtls_dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let pid = child.id();
    let (sender, exited) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = sender.send(status);
        }
    });
    Up {
        pid,
        exited,
        lines,
        log: Vec::new(),
        mtls_dir,
    }
}

impl Up {
    /// Waits for a line containing `text`.
    pub fn wait_for(&mut self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.log.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no line containing {text:?} within {within:?}; output:\n{}",
            self.log.join("\n")
        );
    }

    /// Waits for the script to exit; panics with its output after `within`.
    pub fn exit_status(&mut self, within: Duration) -> ExitStatus {
        match self.exited.recv_timeout(within) {
            Ok(status) => status,
            Err(_) => {
                while let Ok(line) = self.lines.try_recv() {
                    self.log.push(line);
                }
                panic!(
                    "just up did not exit within {within:?}; output:\n{}",
                    self.log.join("\n")
                );
            }
        }
    }

    /// Ctrl-C to the whole group, then its exit status (panics after `within`).
    pub fn interrupt_and_wait(&mut self, within: Duration) -> ExitStatus {
        let pgid = self.pid;
        assert!(
            Command::new("kill")
                .args(["-s", "INT", "--", &format!("-{pgid}")])
                .status()
                .unwrap()
                .success()
        );
        self.exit_status(within)
    }
}

// procps `kill` reads `-PGID` as an option unless it follows `--`: every call below
// spells out `-s SIG -- -PGID`.
/// Whether any process of group `pgid` is alive.
pub fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-s", "0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}
