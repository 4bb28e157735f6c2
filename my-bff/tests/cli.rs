//! The my-bff binary as an operator starts it: each required variable missing, and each
//! variable malformed, stops it with a non-zero exit and a message naming the variable, and
//! never the secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_my-bff");
const SECRET: &str = "do-not-print-this-secret";

fn fails_with(vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("AUTH_SERVER_") || k.starts_with("MY_SERVICE_") || k == "BIND_ADDR" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .envs(vars.iter().copied())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{vars:?} should fail");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !output.contains(SECRET),
        "the secret was printed:\n{output}"
    );
    output
}

#[test]
fn each_bad_variable_is_named_and_the_secret_never_printed() {
    let base = [
        (
            "AUTH_SERVER_TOKEN_ENDPOINT_URL",
            "http://127.0.0.1:9/oauth2/token",
        ),
        ("AUTH_SERVER_MYBFF_CLIENT_ID", "my-bff"),
        ("AUTH_SERVER_MYBFF_CLIENT_SECRET", SECRET),
        ("MY_SERVICE_BASE_URL", "http://127.0.0.1:9"),
    ];
    let without = |name: &str| {
        base.iter()
            .copied()
            .filter(|(k, _)| *k != name)
            .collect::<Vec<_>>()
    };
    let with = |name: &'static str, value: &'static str| {
        let mut v = without(name);
        v.push((name, value));
        v
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            without("AUTH_SERVER_TOKEN_ENDPOINT_URL"),
            "AUTH_SERVER_TOKEN_ENDPOINT_URL",
        ),
        (
            with("AUTH_SERVER_TOKEN_ENDPOINT_URL", "issuer/token"),
            "AUTH_SERVER_TOKEN_ENDPOINT_URL",
        ),
        (
            without("AUTH_SERVER_MYBFF_CLIENT_ID"),
            "AUTH_SERVER_MYBFF_CLIENT_ID",
        ),
        (
            with("AUTH_SERVER_MYBFF_CLIENT_ID", " "),
            "AUTH_SERVER_MYBFF_CLIENT_ID",
        ),
        (
            without("AUTH_SERVER_MYBFF_CLIENT_SECRET"),
            "AUTH_SERVER_MYBFF_CLIENT_SECRET",
        ),
        (
            with("AUTH_SERVER_MYBFF_CLIENT_SECRET", ""),
            "AUTH_SERVER_MYBFF_CLIENT_SECRET",
        ),
        (
            {
                let mut v = without("AUTH_SERVER_MYBFF_CLIENT_SECRET");
                v.push((
                    "AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE",
                    "/nonexistent/secret",
                ));
                v
            },
            "AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE",
        ),
        (
            with("AUTH_SERVER_MYBFF_SCOPE", "bad\"scope"),
            "AUTH_SERVER_MYBFF_SCOPE",
        ),
        (
            with("AUTH_SERVER_MYBFF_CREDENTIAL_STYLE", "digest"),
            "AUTH_SERVER_MYBFF_CREDENTIAL_STYLE",
        ),
        (
            with("AUTH_SERVER_MYBFF_TOKEN_REQUEST_RETRIES", "11"),
            "AUTH_SERVER_MYBFF_TOKEN_REQUEST_RETRIES",
        ),
        (
            with("AUTH_SERVER_MYBFF_TOKEN_REQUEST_RETRIES", "-1"),
            "AUTH_SERVER_MYBFF_TOKEN_REQUEST_RETRIES",
        ),
        (
            with("AUTH_SERVER_MYBFF_TOKEN_REQUEST_TIMEOUT_SECS", "0"),
            "AUTH_SERVER_MYBFF_TOKEN_REQUEST_TIMEOUT_SECS",
        ),
        (
            {
                let mut v = with("AUTH_SERVER_MYBFF_TOKEN_REQUEST_TIMEOUT_SECS", "20");
                v.push(("AUTH_SERVER_MYBFF_TOKEN_REQUEST_BUDGET_SECS", "10"));
                v
            },
            "AUTH_SERVER_MYBFF_TOKEN_REQUEST_BUDGET_SECS",
        ),
        (without("MY_SERVICE_BASE_URL"), "MY_SERVICE_BASE_URL"),
        (
            with("MY_SERVICE_BASE_URL", "my-service"),
            "MY_SERVICE_BASE_URL",
        ),
        (
            with("MY_SERVICE_TIMEOUT_SECS", "0"),
            "MY_SERVICE_TIMEOUT_SECS",
        ),
        (
            with("MY_SERVICE_TIMEOUT_SECS", "ten"),
            "MY_SERVICE_TIMEOUT_SECS",
        ),
        (with("BIND_ADDR", "anywhere"), "BIND_ADDR"),
        (
            without("AUTH_SERVER_MYBFF_CLIENT_SECRET"),
            "AUTH_SERVER_MYBFF_CLIENT_SECRET",
        ),
        (
            with(
                "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_KEY_FILE",
                "/nonexistent/key.pem",
            ),
            "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_KEY_FILE",
        ),
        (
            {
                let mut v = without("AUTH_SERVER_MYBFF_CLIENT_SECRET");
                v.push((
                    "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_KEY_FILE",
                    "/nonexistent/key.pem",
                ));
                v
            },
            "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_KEY_FILE",
        ),
        (
            {
                let mut v = without("AUTH_SERVER_MYBFF_CLIENT_SECRET");
                v.push((
                    "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_FILE",
                    "/nonexistent/jwt",
                ));
                v
            },
            "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_FILE",
        ),
        (
            with("AUTH_SERVER_MYBFF_CLIENT_ASSERTION_TYPE", "urn:x"),
            "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_TYPE",
        ),
        (
            with("AUTH_SERVER_MYBFF_DPOP_KEY_FILE", "/nonexistent/dpop.jwk"),
            "AUTH_SERVER_MYBFF_DPOP_KEY_FILE",
        ),
        (
            {
                let mut v = without("AUTH_SERVER_TOKEN_ENDPOINT_URL");
                v.push(("AUTH_SERVER_AUTHORITY", "http://127.0.0.1:9"));
                v
            },
            "AUTH_SERVER_AUTHORITY",
        ),
    ];
    for (vars, name) in cases {
        let output = fails_with(&vars);
        assert!(
            output.contains(name),
            "{vars:?}: output should name {name}:\n{output}"
        );
    }
}

/// An unreachable issuer on loopback http is not a transport-policy refusal: the start
/// error names the authority and does not suggest the plain-http opt-in.
#[test]
fn an_unreachable_authority_is_named_without_the_insecure_hint() {
    let closed = test_support::CLOSED;
    let authority = format!("http://{closed}");
    let output = fails_with(&[
        ("AUTH_SERVER_AUTHORITY", authority.as_str()),
        ("AUTH_SERVER_MYBFF_CLIENT_ID", "my-bff"),
        ("AUTH_SERVER_MYBFF_CLIENT_SECRET", SECRET),
        ("MY_SERVICE_BASE_URL", "http://127.0.0.1:9"),
    ]);
    assert!(output.contains("AUTH_SERVER_AUTHORITY"), "{output}");
    assert!(!output.contains("ALLOW_INSECURE_HTTP"), "{output}");
}

#[test]
fn help_lists_every_variable_and_hides_the_secret() {
    let out = Command::new(BIN)
        .arg("--help")
        .env("AUTH_SERVER_MYBFF_CLIENT_SECRET", SECRET)
        .env(
            "AUTH_TOKEN_CACHE_REDIS_URL",
            format!("redis://:{SECRET}@cache"),
        )
        .env("AUTH_TOKEN_CACHE_KEY", SECRET)
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "AUTH_SERVER_TOKEN_ENDPOINT_URL",
        "AUTH_SERVER_AUTHORITY",
        "AUTH_SERVER_MYBFF_CLIENT_ID",
        "AUTH_SERVER_MYBFF_CLIENT_SECRET",
        "AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE",
        "AUTH_SERVER_MYBFF_SCOPE",
        "AUTH_SERVER_MYBFF_RESOURCE",
        "AUTH_SERVER_MYBFF_CREDENTIAL_STYLE",
        "AUTH_SERVER_MYBFF_TOKEN_REQUEST_RETRIES",
        "AUTH_SERVER_MYBFF_TOKEN_REQUEST_TIMEOUT_SECS",
        "AUTH_SERVER_MYBFF_TOKEN_REQUEST_BUDGET_SECS",
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_KEY_FILE",
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_KEY_ID",
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_AUDIENCE",
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_ALG",
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_FILE",
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_TYPE",
        "AUTH_SERVER_MYBFF_DPOP_KEY_FILE",
        "AUTH_TOKEN_CACHE_REDIS_URL",
        "AUTH_TOKEN_CACHE_KEY",
        "AUTH_TOKEN_CACHE_KEY_FILE",
        "AUTH_TOKEN_CACHE_KEY_PREFIX",
        "MY_SERVICE_BASE_URL",
        "MY_SERVICE_TIMEOUT_SECS",
        "BIND_ADDR",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
    assert!(!help.contains(SECRET));
}
