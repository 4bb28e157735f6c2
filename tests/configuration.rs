//! docs/configuration.md is current for my-service and my-bff: each one's section is what
//! `infra/docs/configuration.sh` renders from its `--help` now. The help comes from the
//! services' clap commands in process (the same `Args` their binaries parse), so this
//! builds nothing more than the libraries the other suites use. When it fails, run
//! `just docs` and commit the file. (The mock issuer's sections: its own
//! `tests/configuration.rs`, which runs its binary.) Also: every relative link of the
//! repository's markdown resolves (`infra/docs/check_links.py`), so moving a page cannot
//! leave its readers at a dead link.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use clap::CommandFactory as _;

/// Runs the script's check of the section `title` against `help`; fails with its diff.
fn section_is_current(title: &str, help: String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
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
fn my_service_settings_are_documented() {
    let help = my_service::config::Args::command().render_long_help();
    section_is_current("my-service", help.to_string());
}

#[test]
fn my_bff_settings_are_documented() {
    let help = my_bff::config::Args::command().render_long_help();
    section_is_current("my-bff", help.to_string());
}

#[test]
fn relative_links_in_the_docs_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .arg(root.join("infra/docs/check_links.py"))
        .output()
        .expect("python3 runs infra/docs/check_links.py");
    assert!(
        out.status.success(),
        "broken relative links in the markdown:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
