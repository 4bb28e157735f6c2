//! `just up` as a process: the script it runs (`infra/local/up.sh`, on the binaries this
//! test build made) is started in its own process group on free ports. It must print its
//! ready line, serve the BFF, listen on all three ports, and on SIGINT stop every child
//! within 5 s, releasing the ports so that a second run starts cleanly. A port already
//! taken must make it fail fast, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use std::net::TcpListener;
use std::time::{Duration, Instant};

use system_tests::up::{free_ports, group_alive, listening, start};

fn run_once(ports: [u16; 3]) {
    let mut up = start(ports, &[]);
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
    let mut up = start(ports, &[]);
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
