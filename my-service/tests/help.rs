//! The guard on my-service's settings: every variable `--help` prints, with its default, is
//! the one listed in `help-variables.txt` (see `infra/test-support/help_variables.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../../infra/test-support/help_variables.rs"]
mod help_variables;

#[test]
fn help_lists_the_same_variables_and_defaults() {
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/help-variables.txt");
    // The Redis replay store is hidden in a build without the `redis` feature; another
    // package in the same cargo run may turn it on for shared-auth, so only this crate's own
    // feature makes it required.
    let optional: &[&str] = if cfg!(feature = "redis") {
        &[]
    } else {
        &["AUTH_DPOP_REPLAY_REDIS_URL"]
    };
    help_variables::check(env!("CARGO_BIN_EXE_my-service"), &[], &list, optional);
}
