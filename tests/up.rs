//! `just up` as a process: the script it runs (`infra/local/up.sh`, on the binaries this
//! test build made) is started in its own process group on free ports. It must print its
//! ready line, serve the BFF, listen on all three ports, and on SIGINT stop every child
//! within 5 s, releasing the ports so that a second run starts cleanly. A port already
//! taken must make it fail fast, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

struct Up {
    /// Also the process group id (the script leads its own group).
    pid: u32,
    /// The script's exit status, sent by the thread that waits for it.
    exited: mpsc::Receiver<ExitStatus>,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Drop for Up {
    fn drop(&mut self) {
        // If the test failed half-way, leave nothing running.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.pid)])
            .status();
    }
}

fn start(ports: [u16; 3]) -> Up {
    // Where cargo put the binaries: CARGO_TARGET_DIR when set (relative to the root).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target".into());
    let bin = root().join(target).join("debug");
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
    }
}

impl Up {
    /// Waits for a line containing `text`.
    fn wait_for(&mut self, text: &str, within: Duration) {
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
    fn exit_status(&mut self, within: Duration) -> ExitStatus {
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

    fn interrupt_and_wait(&mut self, within: Duration) -> ExitStatus {
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
fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-s", "0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn run_once(ports: [u16; 3]) {
    let mut up = start(ports);
    up.wait_for("ready (Ctrl-C stops everything)", Duration::from_secs(60));
    for port in ports {
        assert!(listening(port), "port {port} is not listening");
    }
    let body = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 3<>/dev/tcp/127.0.0.1/{}; printf 'GET /weatherforecast HTTP/1.0\\r\\n\\r\\n' >&3; head -1 <&3",
            ports[2]
        ))
        .output()
        .unwrap();
    let status_line = String::from_utf8_lossy(&body.stdout).into_owned();
    assert!(
        status_line.contains(" 200 "),
        "BFF answered {status_line:?}"
    );
    let pgid = up.pid;
    let started = Instant::now();
    let status = up.interrupt_and_wait(Duration::from_secs(5));
    let stopped_in = started.elapsed();
    assert!(status.success(), "Ctrl-C is a clean stop, not {status}");
    while group_alive(pgid) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "children outlived just up"
        );
        std::thread::sleep(Duration::from_millis(50)); // polling the group
    }
    for port in ports {
        assert!(!listening(port), "port {port} still taken after SIGINT");
    }
    println!("just up: stopped in {stopped_in:?}, every child gone, ports released");
}

#[test]
fn just_up_starts_serves_stops_on_sigint_and_restarts_cleanly() {
    let ports = free_ports();
    run_once(ports);
    run_once(ports); // right after: ports were released
}

#[test]
fn just_up_fails_fast_when_a_port_is_taken() {
    let ports = free_ports();
    let _taken = TcpListener::bind(("127.0.0.1", ports[1])).unwrap();
    let mut up = start(ports);
    let started = Instant::now();
    up.wait_for("already in use", Duration::from_secs(10));
    let status = up.exit_status(Duration::from_secs(10));
    assert!(!status.success());
    println!(
        "just up with a taken port: failed after {:?}",
        started.elapsed()
    );
    assert!(!listening(ports[0]), "nothing was started");
}
