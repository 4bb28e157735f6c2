//! The kit's verdicts on small targets whose behaviour is known, through the binary: a
//! server that refuses everything (the run is inconclusive, not a pass), a naive server
//! that reads the payload without checking anything but the scope (the holes it has are
//! found; the behaviours the standards allow are not failed), the audience cases under the
//! generic profile, the skipped metadata group and `--explain`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Command, Output};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

fn kit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The table row of case `id`, if it ran (the id may carry the HTTP-stack mark `*`).
fn row<'a>(table: &'a str, id: &str) -> Option<&'a str> {
    table.lines().find(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.trim_end_matches('*') == id)
    })
}

/// The verdict (last column) of case `id`.
fn verdict<'a>(table: &'a str, id: &str) -> &'a str {
    row(table, id)
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no row {id} in\n{table}"))
}

/// A server that answers every request `401 Bearer error="invalid_token"`, on a thread,
/// until the test process ends.
fn refuses_everything() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Reads the whole request head (up to the blank line) before answering.
            let mut head = Vec::new();
            let mut buf = [0u8; 65536];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer error=\"invalid_token\"\r\n\
                  content-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    format!("http://{addr}/weatherforecast")
}

/// How the naive server answers.
#[derive(Clone, Copy)]
struct Naive {
    /// Also accept `Authorization: DPoP <token>` (ignoring the proof).
    dpop: bool,
    /// The scope it requires.
    scope: &'static str,
}

/// Reads the payload of the first `Bearer` (or `DPoP`) credentials without checking the
/// signature, the header or any claim but `scope` (serde_json keeps the last of duplicate
/// members): 200 with its scope, 403 without, 401 when unreadable. No metadata document.
async fn naive_answer(naive: Naive, headers: HeaderMap) -> Response {
    let challenge = |error: Option<&str>| match error {
        Some(e) => format!("Bearer error=\"{e}\""),
        None => "Bearer".to_owned(),
    };
    let refuse = |status: StatusCode, error: Option<&str>| {
        (status, [(header::WWW_AUTHENTICATE, challenge(error))]).into_response()
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t,
        Some((scheme, t)) if naive.dpop && scheme.eq_ignore_ascii_case("dpop") => t,
        _ => return refuse(StatusCode::UNAUTHORIZED, None),
    };
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let Some(claims) = claims else {
        return refuse(StatusCode::UNAUTHORIZED, Some("invalid_token"));
    };
    let scoped = claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|s| s == naive.scope));
    if scoped {
        (StatusCode::OK, "[]").into_response()
    } else {
        refuse(StatusCode::FORBIDDEN, Some("insufficient_scope"))
    }
}

/// The naive server on its own thread and runtime, until the test process ends.
fn naive(naive: Naive) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().route(
                "/weatherforecast",
                axum::routing::get(move |headers: HeaderMap| naive_answer(naive, headers)),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}/weatherforecast")
}

#[test]
fn a_server_that_refuses_everything_is_inconclusive_and_its_refusals_are_allowed() {
    let target = refuses_everything();
    let o = kit(&["--scope", "A/b", "--target", &target, "--report-only"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("inconclusive"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("valid token was refused"),
        "{}",
        stderr(&o)
    );
    let table = stdout(&o);
    // Refusing a token expired within a leeway is never wrong (RFC 7519 4.1.4), and 401
    // invalid_token is RFC 6750's answer for a malformed token.
    assert_eq!(verdict(&table, "exp-within-leeway"), "PASS");
    assert_eq!(verdict(&table, "padding-inside-part"), "PASS");
    // The target publishes no metadata document: the group is skipped, not failed.
    assert!(row(&table, "metadata-document").is_none(), "{table}");
    assert!(table.contains("metadata group skipped"), "{table}");
}

#[test]
fn a_refused_dpop_proof_makes_the_run_inconclusive() {
    let target = naive(Naive {
        dpop: false,
        scope: "A/b",
    });
    let o = kit(&["--scope", "A/b", "--target", &target, "--dpop"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("inconclusive") && stderr(&o).contains("DPoP proof was refused"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_naive_server_fails_the_holes_and_passes_what_the_standards_allow() {
    let target = naive(Naive {
        dpop: true,
        scope: "A/b",
    });
    let o = kit(&["--scope", "A/b", "--target", &target, "--dpop"]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let table = stdout(&o);
    // RFC 7519 section 4: a parser may take the last of duplicate members (here the other
    // scope: 403), which is no failure.
    assert_eq!(verdict(&table, "scope-duplicate"), "PASS");
    // New cases: `alg` compared case-sensitively, kid as a URL, refresh tokens, jti reuse,
    // the JWS JSON serialization and a DPoP proof for another host.
    assert_eq!(verdict(&table, "alg-none-odd-case"), "FAIL(must)");
    assert_eq!(verdict(&table, "alg-rs256-lower-case"), "FAIL(should)");
    assert_eq!(verdict(&table, "kid-url"), "FAIL(must)");
    assert_eq!(verdict(&table, "refresh-token-as-access"), "FAIL(should)");
    assert_eq!(verdict(&table, "jti-reused"), "PASS");
    assert_eq!(verdict(&table, "jws-json-flattened"), "PASS");
    assert_eq!(verdict(&table, "dpop-spoofed-host"), "FAIL(should)");
    // Cases decided by the HTTP stack are marked so.
    for id in ["token-17kib", "headers-1000", "two-authorization"] {
        assert!(
            row(&table, id).is_some_and(|r| r.starts_with(&format!("{id}*"))),
            "{id} not marked in\n{table}"
        );
    }
    assert!(table.contains("* decided by the HTTP stack"), "{table}");
}

#[test]
fn the_generic_profile_runs_the_audience_cases_when_an_audience_is_given() {
    let target = naive(Naive {
        dpop: false,
        scope: "A/b",
    });
    let o = kit(&[
        "--profile",
        "generic",
        "--scope",
        "A/b",
        "--audience",
        "api",
        "--target",
        &target,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let table = stdout(&o);
    assert_eq!(verdict(&table, "aud-wrong"), "FAIL(must)");
    assert_eq!(verdict(&table, "aud-missing"), "FAIL(must)");
    assert!(row(&table, "typ-jwt").is_none(), "{table}");

    // Any RFC 6749 scope token; without an audience, the audience cases are skipped and
    // the report says so.
    let target = naive(Naive {
        dpop: false,
        scope: "read:messages",
    });
    let o = kit(&[
        "--profile",
        "generic",
        "--scope",
        "read:messages",
        "--target",
        &target,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(row(&table, "aud-wrong").is_none(), "{table}");
    assert!(table.contains("audience cases skipped"), "{table}");
}

#[test]
fn scope_tokens_are_rfc_6749_and_rfc9068_needs_an_audience() {
    let o = kit(&["--scope", "a\"b", "--target", "http://127.0.0.1:1/x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--scope"), "{}", stderr(&o));
    let o = kit(&["--scope", "api1", "--target", "http://127.0.0.1:1/x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--audience"), "{}", stderr(&o));
}

#[test]
fn explain_prints_the_section_a_verdict_rests_on() {
    let o = kit(&["--explain", "scope-duplicate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("RFC 7519 section 4"), "{}", stdout(&o));
    let o = kit(&["--explain", "token-17kib"]);
    assert!(stdout(&o).contains("HTTP stack"), "{}", stdout(&o));
    let o = kit(&["--explain", "no-such-case"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-case"), "{}", stderr(&o));
}
