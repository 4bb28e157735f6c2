//! `--https` and `--ca-file`: the kit's issuer over TLS, trusted through the CA file the
//! kit writes and nothing else.
//!
//! End to end through the binary: a small target fetches the kit's JWKS over https with a
//! client whose only root is the written CA file, and verifies the tokens with it; the run
//! is conclusive (the valid token is accepted) only if that worked. And in process: a
//! client with the platform's roots is refused, the certificate also names `localhost`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use conformance::{Kit, Profile, Settings};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::{OnceCell, watch};

/// A client whose only trusted root is the PEM in `ca_file`.
fn trusting_only(ca_file: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(ca_file).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap()
}

/// What the target knows: the JWKS URL once the kit has printed it, the CA file's path.
struct Trust {
    jwks_uri: watch::Receiver<Option<String>>,
    ca_file: PathBuf,
    client: OnceCell<reqwest::Client>,
}

/// 200 for an RS256 token whose signature verifies with the kit's JWKS, fetched over
/// https, and whose scope is `A/b`; 401 otherwise.
async fn answer(trust: Arc<Trust>, headers: HeaderMap) -> Response {
    let refuse = || {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response()
    };
    // The kit prints its issuer before it sends anything; this waits for the line to be
    // read, it does not wait on the clock.
    let jwks_uri = trust
        .jwks_uri
        .clone()
        .wait_for(Option::is_some)
        .await
        .unwrap()
        .clone()
        .unwrap();
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return refuse();
    };
    let Ok(head) = jsonwebtoken::decode_header(token) else {
        return refuse();
    };
    if head.alg != Algorithm::RS256 {
        return refuse();
    }
    let client = trust
        .client
        .get_or_init(|| async { trusting_only(&trust.ca_file) })
        .await;
    let jwks = match client.get(&jwks_uri).send().await {
        Ok(r) => r.json::<JwkSet>().await.ok(),
        Err(_) => None,
    };
    let Some(jwk) = jwks
        .as_ref()
        .zip(head.kid.as_deref())
        .and_then(|(jwks, kid)| jwks.find(kid))
    else {
        return refuse();
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation) {
        Ok(data) if data.claims["scope"] == "A/b" => (StatusCode::OK, "[]").into_response(),
        _ => refuse(),
    }
}

/// The target on its own thread and runtime, until the test process ends.
fn target(trust: Trust) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let trust = Arc::new(trust);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().route(
                "/weatherforecast",
                axum::routing::get(move |headers: HeaderMap| answer(trust.clone(), headers)),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}/weatherforecast")
}

#[test]
fn a_target_trusting_only_the_written_ca_file_gets_the_keys_over_https() {
    let ca_file =
        std::env::temp_dir().join(format!("conformance-https-ca-{}.pem", std::process::id()));
    let (tx, rx) = watch::channel(None);
    let url = target(Trust {
        jwks_uri: rx,
        ca_file: ca_file.clone(),
        client: OnceCell::new(),
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["--https", "--ca-file", ca_file.to_str().unwrap()])
        .args(["--scope", "A/b", "--target", &url, "--report-only"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(uri) = line.trim().strip_prefix("jwks_uri:") {
            tx.send(Some(uri.trim().to_owned())).unwrap();
        }
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Exit 0 with --report-only means conclusive: the valid token was accepted, so the
    // target did fetch the JWKS over https trusting the CA file alone.
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("conformance issuer: https://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("jwks_uri:       https://"), "{stdout}");
    assert!(!stderr.contains("TLS handshakes"), "{stderr}");
    let pem = std::fs::read_to_string(&ca_file).unwrap();
    std::fs::remove_file(&ca_file).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}

#[tokio::test]
async fn the_issuer_certificate_is_trusted_through_the_ca_only_and_names_localhost() {
    let settings = Settings::new(Profile::Rfc9068, "A/b", None).unwrap();
    let kit = Kit::start_https(settings, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let jwks_uri = kit.issuer().jwks_uri();
    assert!(jwks_uri.starts_with("https://127.0.0.1:"), "{jwks_uri}");
    assert_eq!(
        kit.issuer().discovery_url(),
        format!("{}/.well-known/openid-configuration", kit.issuer().issuer())
    );

    // The platform's roots do not know the throwaway CA.
    let platform = reqwest::Client::new();
    assert!(platform.get(&jwks_uri).send().await.is_err());

    let ca_file =
        std::env::temp_dir().join(format!("conformance-https-ca2-{}.pem", std::process::id()));
    std::fs::write(&ca_file, kit.ca_pem().unwrap()).unwrap();
    let client = trusting_only(&ca_file);
    std::fs::remove_file(&ca_file).unwrap();
    let keys: Value = client
        .get(&jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["alg"], "RS256");
    let discovery: Value = client
        .get(kit.issuer().discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], kit.issuer().issuer());
    assert_eq!(discovery["jwks_uri"], jwks_uri);
    let localhost = jwks_uri.replace("127.0.0.1", "localhost");
    assert_eq!(
        client.get(&localhost).send().await.unwrap().status(),
        StatusCode::OK
    );
}
