//! The guard on a binary's settings: runs `--help` (of the binary and of the subcommands
//! named), reads every option's environment variable (or, without one, its flag) and
//! default, and compares them with a checked-in list, so that a refactor of the settings
//! cannot drop a variable or change a default without the list changing in the same diff.
//!
//! Included by path (`#[path = ...] mod help_variables;`) from the integration tests of
//! my-service, my-bff and mock-issuer: a file, not a crate, because mock-issuer's tests do
//! not depend on `test-support` (which depends on mock-issuer).
//!
//! The list holds one line per option, `NAME=default` or `NAME` (no default), prefixed by
//! `subcommand: ` for a subcommand's options; `#` starts a comment. To write it again from
//! the binary after a deliberate change: `UPDATE_HELP_VARIABLES=1 cargo test -p <crate>
//! --test help`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The options `--help` prints, as `key -> default`: the key is the environment variable,
/// or the long flag of an option without one; `-h`/`-V` are left out.
pub fn options(help: &str) -> BTreeMap<String, Option<String>> {
    // An option's block: its line (indented less than its help text) and the help lines
    // under it. clap prints `[env: NAME=value]` and `[default: value]` at the end of the
    // help, on lines of their own (long help) or inline (short help).
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut open = false;
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent > 0 && indent < 10 && text.starts_with('-') {
            let flag = text
                .split([' ', ',', '='])
                .find(|w| w.starts_with("--"))
                .unwrap_or(text)
                .to_owned();
            blocks.push((flag, text.to_owned()));
            open = true;
        } else if indent < 10 && !text.is_empty() {
            // A section heading or a positional argument: no option continues past it.
            open = false;
        } else if open && let Some((_, block)) = blocks.last_mut() {
            block.push(' ');
            block.push_str(text);
        }
    }
    let spec = |block: &str, tag: &str| {
        let start = block.rfind(tag)? + tag.len();
        let end = block[start..].find(']')? + start;
        Some(block[start..end].to_owned())
    };
    blocks
        .into_iter()
        .filter(|(flag, _)| flag != "--help" && flag != "--version")
        .map(|(flag, block)| {
            let env = spec(&block, "[env: ").map(|e| e.split('=').next().unwrap_or("").to_owned());
            (env.unwrap_or(flag), spec(&block, "[default: "))
        })
        .collect()
}

/// The `--help` of `bin` (with `args` before it), run with an empty environment so that no
/// variable of the caller shows up as a value.
pub fn help(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    assert!(out.status.success(), "{bin} {args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of the list for `bin` and its `subcommands`.
pub fn lines(bin: &str, subcommands: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for sub in std::iter::once(None).chain(subcommands.iter().map(Some)) {
        let args: Vec<&str> = sub.into_iter().copied().collect();
        let prefix = sub.map(|s| format!("{s}: ")).unwrap_or_default();
        for (key, default) in options(&help(bin, &args)) {
            lines.push(match default {
                Some(d) => format!("{prefix}{key}={d}"),
                None => format!("{prefix}{key}"),
            });
        }
    }
    lines
}

/// Compares what the binary prints with the list at `expected`; panics with a diff
/// (`-` expected but not printed, `+` printed but not expected). Lines in `may_be_absent`
/// (a cargo feature's settings that a build without it hides) may be missing.
pub fn check(bin: &str, subcommands: &[&str], expected: &Path, may_be_absent: &[&str]) {
    let actual = lines(bin, subcommands);
    if std::env::var_os("UPDATE_HELP_VARIABLES").is_some() {
        let mut text = String::from(
            "# Written by `UPDATE_HELP_VARIABLES=1 cargo test --test help` from the binary's \
             --help: one option a line, VARIABLE=default (see infra/test-support/help_variables.rs).\n",
        );
        for line in &actual {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(expected, text).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
        return;
    }
    let text =
        std::fs::read_to_string(expected).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
    let wanted: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut diff = Vec::new();
    for line in &wanted {
        if !actual.iter().any(|a| a == line) && !may_be_absent.contains(line) {
            diff.push(format!("- {line}"));
        }
    }
    for line in &actual {
        if !wanted.contains(&line.as_str()) {
            diff.push(format!("+ {line}"));
        }
    }
    assert!(
        diff.is_empty(),
        "{bin} --help no longer lists the variables and defaults of {}:\n{}\n\
         (- listed but not printed, + printed but not listed; if the change is deliberate, \
         run the test again with UPDATE_HELP_VARIABLES=1 and commit the list)",
        expected.display(),
        diff.join("\n")
    );
}
