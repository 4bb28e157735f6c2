//! docs/configuration.md is current for the mock issuer: its sections are what
//! `infra/docs/configuration.sh` renders from the binary's `--help` (and `token --help`)
//! now. When it fails, run `just docs` and commit the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// The binary's help for `args` (plus `--help`).
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mock-issuer"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the script's check of the section `title` against `help`; fails with its diff.
fn section_is_current(title: &str, help: String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut check = Command::new("bash")
        .arg(root.join("infra/docs/configuration.sh"))
        .args(["--check", title])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs infra/docs/configuration.sh");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(help.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docs/configuration.md is stale for {title}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_issuer_settings_are_documented() {
    section_is_current("mock-issuer", help(&[]));
    section_is_current("mock-issuer token", help(&["token"]));
}
