//! The guard on my-bff's settings: every variable `--help` prints, with its default, is the
//! one listed in `help-variables.txt` (see `infra/test-support/help_variables.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../../infra/test-support/help_variables.rs"]
mod help_variables;

#[test]
fn help_lists_the_same_variables_and_defaults() {
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/help-variables.txt");
    help_variables::check(env!("CARGO_BIN_EXE_my-bff"), &[], &list, &[]);
}
