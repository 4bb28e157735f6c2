//! One metrics table, and it is complete: every `shared_auth_*` series the crate names
//! (the constants in `src/metrics.rs`, and any other `"shared_auth_..."` literal under
//! `src/`) has a row in the table of `docs/operations.md`'s "Metrics" section, and every
//! row names a series the crate still emits. Reads the sources as text: no recorder, no
//! build of anything else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `"shared_auth_..."` string literals of `source`.
fn series_literals(source: &str) -> BTreeSet<String> {
    source
        .match_indices("\"shared_auth_")
        .map(|(at, _)| {
            source[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .collect()
}

/// The series named in the first column of the table under `## Metrics`.
fn documented(operations: &str) -> BTreeSet<String> {
    let section = operations
        .split("\n## ")
        .find(|s| s.starts_with("Metrics\n"))
        .expect("docs/operations.md has a `## Metrics` section");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `shared_auth_"))
        .map(|rest| {
            let name: String = rest.chars().take_while(|c| *c != '`').collect();
            format!("shared_auth_{name}")
        })
        .collect()
}

#[test]
fn every_series_has_one_row_in_the_operations_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // The constants, read by their declaration: `pub(crate) const NAME: &str = "...";`.
    let metrics_rs = std::fs::read_to_string(root.join("src/metrics.rs")).unwrap();
    let constants: BTreeSet<String> = metrics_rs
        .lines()
        .filter(|l| l.trim_start().starts_with("pub(crate) const ") && l.contains(": &str ="))
        .flat_map(series_literals)
        .collect();
    assert!(
        constants.len() >= 14,
        "expected the metric-name constants of src/metrics.rs, found {constants:?}"
    );

    // Any other series literal anywhere in the crate's code.
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    let mut emitted = constants.clone();
    for file in &files {
        emitted.extend(series_literals(&std::fs::read_to_string(file).unwrap()));
    }

    let operations = std::fs::read_to_string(root.join("../docs/operations.md")).unwrap();
    let table = documented(&operations);

    let missing: Vec<_> = emitted.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "series emitted by shared-auth but missing from the table in docs/operations.md \
         (## Metrics): {missing:?}"
    );
    let stale: Vec<_> = table.difference(&emitted).collect();
    assert!(
        stale.is_empty(),
        "rows of the table in docs/operations.md (## Metrics) for series shared-auth no \
         longer names: {stale:?}"
    );
}
