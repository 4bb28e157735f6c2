//! The guard on mock-issuer's settings: every variable (or flag) `--help` prints, with its
//! default, for the server and the `token` subcommand, is the one listed in
//! `help-variables.txt` (see `infra/test-support/help_variables.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../../test-support/help_variables.rs"]
mod help_variables;

#[test]
fn help_lists_the_same_variables_and_defaults() {
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/help-variables.txt");
    help_variables::check(env!("CARGO_BIN_EXE_mock-issuer"), &["token"], &list, &[]);
}
