//! The my-service binary as an operator starts it: each required variable missing, and
//! each variable malformed, stops it with a non-zero exit and a message naming the variable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_my-service");

/// Runs the binary with exactly `vars` (nothing inherited from AUTH_*) plus this API's own
/// URL (DPoP is on by default and needs it), expects failure and returns everything it
/// printed.
fn fails_with(vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("AUTH_") || k == "BIND_ADDR" || k == "OPENAPI_TOKEN_URL" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("AUTH_PUBLIC_BASE_URL", "http://127.0.0.1:7062")
        .envs(vars.iter().copied())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{vars:?} should fail");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn each_bad_variable_is_named() {
    // A closed port: nothing answers there.
    let closed = test_support::CLOSED;
    let dead = format!("http://{closed}");
    let ok = ("AUTH_AUTHORITY", dead.as_str());
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "AUTH_AUTHORITY"),
        (vec![("AUTH_AUTHORITY", "ftp://issuer")], "AUTH_AUTHORITY"),
        (
            vec![("AUTH_METADATA_ADDRESS", "not a url")],
            "AUTH_METADATA_ADDRESS",
        ),
        (vec![("AUTH_JWKS_URI", "http://x/jwks")], "AUTH_ISSUER"),
        (
            vec![ok, ("AUTH_TOKEN_PROFILE", "azure")],
            "AUTH_TOKEN_PROFILE",
        ),
        (vec![ok, ("AUTH_TOKEN_PROFILE", "rfc9068")], "AUTH_AUDIENCE"),
        (vec![ok, ("AUTH_AUDIENCE", "api")], "AUTH_AUDIENCE"),
        (
            vec![ok, ("AUTH_CLOCK_SKEW_SECS", "soon")],
            "AUTH_CLOCK_SKEW_SECS",
        ),
        (vec![ok, ("AUTH_LAZY_KEYS", "maybe")], "AUTH_LAZY_KEYS"),
        (vec![ok, ("AUTH_DPOP", "sometimes")], "AUTH_DPOP"),
        (
            vec![ok, ("AUTH_DPOP_ALGS", "ES256 HS256")],
            "AUTH_DPOP_ALGS",
        ),
        (vec![ok, ("AUTH_DPOP_NONCE", "maybe")], "AUTH_DPOP_NONCE"),
        (
            vec![ok, ("AUTH_PUBLIC_BASE_URL", "api.example.com")],
            "AUTH_PUBLIC_BASE_URL",
        ),
        (
            vec![ok, ("AUTH_RESOURCE", "http://api.example")],
            "AUTH_RESOURCE",
        ),
        (
            vec![ok, ("AUTH_RESOURCE", "https://api.example/?tenant=1")],
            "AUTH_RESOURCE",
        ),
        (
            vec![ok, ("AUTH_SCOPES_SUPPORTED", "MyService/weather_read")],
            "AUTH_SCOPES_SUPPORTED",
        ),
        (
            vec![ok, ("OPENAPI_TOKEN_URL", "token")],
            "OPENAPI_TOKEN_URL",
        ),
        (vec![ok, ("BIND_ADDR", "localhost")], "BIND_ADDR"),
        (
            vec![
                ok,
                ("AUTH_AUTHORITY", "http://a"),
                ("AUTH_METADATA_ADDRESS", "http://b"),
            ],
            "AUTH_METADATA_ADDRESS",
        ),
        // Well-formed but unreachable: start fails, saying what to check.
        (vec![ok], "AUTH_AUTHORITY"),
    ];
    for (vars, name) in cases {
        let output = fails_with(&vars);
        assert!(
            output.contains(name),
            "{vars:?}: output should name {name}:\n{output}"
        );
    }
}

/// An unreachable issuer of the issuers file is named as the file's entry, not as the
/// single-issuer variables (which are not even set).
#[test]
fn a_start_error_names_the_issuers_file_entry() {
    let closed = test_support::CLOSED;
    let path = std::env::temp_dir().join(format!("cli-issuers-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        format!("[[issuer]]\nauthority = \"http://{closed}\"\ntoken_profile = \"generic\"\n"),
    )
    .unwrap();
    let output = fails_with(&[("AUTH_ISSUERS_FILE", path.to_str().unwrap())]);
    let _ = std::fs::remove_file(&path);
    assert!(
        output.contains("AUTH_ISSUERS_FILE: issuer 1, authority: cannot read"),
        "{output}"
    );
    assert!(!output.contains("AUTH_AUTHORITY"), "{output}");
}

#[test]
fn help_lists_every_variable() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "AUTH_AUTHORITY",
        "AUTH_METADATA_ADDRESS",
        "AUTH_JWKS_URI",
        "AUTH_ISSUER",
        "AUTH_TOKEN_PROFILE",
        "AUTH_AUDIENCE",
        "AUTH_ALLOWED_CLIENT_IDS",
        "AUTH_CLOCK_SKEW_SECS",
        "AUTH_LAZY_KEYS",
        "AUTH_DPOP",
        "AUTH_DPOP_ALGS",
        "AUTH_DPOP_PROOF_MAX_AGE_SECS",
        "AUTH_DPOP_NONCE",
        "AUTH_DPOP_NONCE_SECRET",
        "AUTH_DPOP_NONCE_SECRET_FILE",
        "AUTH_PUBLIC_BASE_URL",
        "OPENAPI_TOKEN_URL",
        "BIND_ADDR",
    ] {
        // Each setting's value name is its variable: `--dpop <AUTH_DPOP>`.
        assert!(help.contains(&format!("<{var}>")), "--help lacks {var}");
    }
}

#[test]
fn help_never_shows_the_dpop_nonce_secret() {
    let out = Command::new(BIN)
        .arg("--help")
        .env(
            "AUTH_DPOP_NONCE_SECRET",
            "do-not-print-this-secret-0123456789",
        )
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("AUTH_DPOP_NONCE_SECRET"));
    assert!(!help.contains("do-not-print-this-secret"), "{help}");
}
