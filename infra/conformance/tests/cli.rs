//! The `conformance` binary as a process: its exit statuses (2 when the kit cannot run,
//! naming the setting; 1 when cases fail; 0 with `--report-only`) and the JUnit file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Command, Output};

fn kit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A server that answers every request 200 (so it accepts every forged token: "must"
/// failures; a server that refuses everything makes the run inconclusive instead, see
/// `tests/verdicts.rs`), on a thread, until the test process ends.
fn always_200() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    format!("http://{addr}/weatherforecast")
}

#[test]
fn settings_errors_exit_2_naming_the_flag() {
    let o = kit(&["--scope", "no-slash", "--target", "http://127.0.0.1:1/x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--scope"), "{}", stderr(&o));
    let o = kit(&["--scope", "A/b", "--target", "not a url"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--target"), "{}", stderr(&o));
}

#[test]
fn a_target_that_never_answers_or_a_command_that_exits_is_exit_2() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = format!("http://{closed}/x");
    let o = kit(&["--scope", "A/b", "--target", &target, "--wait-secs", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did not answer"), "{}", stderr(&o));
    let o = kit(&[
        "--scope", "A/b", "--target", &target, "--", "sh", "-c", "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exited before"), "{}", stderr(&o));
}

#[test]
fn failures_exit_1_unless_report_only_and_the_junit_file_is_written() {
    let target = always_200();
    let o = kit(&["--scope", "A/b", "--target", &target]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("alg-none") && table.contains("FAIL(must)"),
        "{table}"
    );
    assert!(
        table.contains("conformance issuer: http://127.0.0.1:"),
        "{table}"
    );

    let junit = std::env::temp_dir().join(format!("conformance-cli-{}.xml", std::process::id()));
    let path = junit.to_str().unwrap();
    let o = kit(&[
        "--scope",
        "A/b",
        "--target",
        &target,
        "--report-only",
        "--junit",
        path,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    std::fs::remove_file(&junit).unwrap();
    assert!(
        xml.starts_with("<?xml") && xml.contains("<failure type=\"must\""),
        "{xml}"
    );
}

#[test]
fn the_command_gets_the_issuer_in_its_environment_and_is_stopped_with_its_group() {
    // The command serves nothing; it only proves it saw the variables (exit 3 without them,
    // which the kit reports as the command exiting early). Its shell's `sleep 30` holds the
    // output pipe: the kit returns well before 30 s only if it stopped the whole group.
    let target = always_200();
    let check = "test -n \"$CONFORMANCE_ISSUER\" && test -n \"$CONFORMANCE_JWKS_URI\" \
                 && test \"$CONFORMANCE_SCOPE\" = A/b && test \"$CONFORMANCE_AUDIENCE\" = A \
                 && test -n \"$CONFORMANCE_CLIENT_SECRET\" && sleep 30 || exit 3";
    let started = std::time::Instant::now();
    let o = kit(&[
        "--scope",
        "A/b",
        "--target",
        &target,
        "--report-only",
        "--",
        "sh",
        "-c",
        check,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "the command's group was left running"
    );
}

#[test]
fn https_needs_a_ca_file_writes_it_and_hands_it_to_the_command() {
    let o = kit(&[
        "--https",
        "--scope",
        "A/b",
        "--target",
        "http://127.0.0.1:1/x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--ca-file"), "{}", stderr(&o));

    let target = always_200();
    let ca = std::env::temp_dir().join(format!("conformance-cli-ca-{}.pem", std::process::id()));
    let path = ca.to_str().unwrap();
    // The command sees the file already written, under CONFORMANCE_CA_FILE.
    let check = format!(
        "test \"$CONFORMANCE_CA_FILE\" = '{path}' && grep -q 'BEGIN CERTIFICATE' \"$CONFORMANCE_CA_FILE\" \
         && case \"$CONFORMANCE_ISSUER\" in https://127.0.0.1:*) sleep 30;; esac; exit 3"
    );
    let o = kit(&[
        "--https",
        "--ca-file",
        path,
        "--scope",
        "A/b",
        "--target",
        &target,
        "--report-only",
        "--",
        "sh",
        "-c",
        &check,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("conformance issuer: https://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("CA file:        {path}")),
        "{stdout}"
    );
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    std::fs::remove_file(&ca).unwrap();
}
