//! Test helpers that know the mock issuer and shared-auth, but no service: what a service's
//! own spawn-app tests (`my-service/tests/app.rs`, `my-bff/tests/app.rs`) and the system
//! suites in `tests/` share.
//!
//! - the standard issuer: [`start_issuer`] with [`issuer_config`]'s resource server
//!   `MyService` and its clients ([`BFF_ID`], [`ADMIN_ID`], ...), [`fetch_token`], [`forge`];
//! - servers on ephemeral ports: [`serve`], [`TestServer`];
//! - HTTP: [`http`], [`get_json`], and [`assert_refused`] for a resource server's refusals;
//! - independent token checks: [`jwks`], [`verify`], [`decode_part`];
//! - waiting and concurrency: [`eventually`], [`concurrently`]; logs: [`capture_logs`].
//!
//! A service's helpers (its configuration, `start_service`) live beside its tests, since
//! this crate must not depend on any service.
//!
//! Test code: `unwrap`/`expect` are the assertions here.
#![warn(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile};
use serde_json::Value;

/// The BFF's client id in every suite.
pub const BFF_ID: &str = "my-bff";
/// The BFF's secret in every suite.
pub const BFF_SECRET: &str = "bff-test-secret-0123456789";
/// A client allowed to read and write.
pub const ADMIN_ID: &str = "weather-admin";
/// Its secret.
pub const ADMIN_SECRET: &str = "admin-test-secret-0123456789";
/// A client whose id and secret need form-urlencoding in HTTP Basic.
pub const ODD_ID: &str = "odd:client id+1";
/// Its secret: ':' '+' '%' space and non-ASCII.
pub const ODD_SECRET: &str = "p@ss:w+rd %20 é-0123";
/// A client that is not allowed the client credentials grant.
pub const NO_CC_ID: &str = "interactive-app";
/// Its secret.
pub const NO_CC_SECRET: &str = "interactive-secret-0123";
/// The read scope.
pub const READ: &str = "MyService/weather_read";
/// The write scope.
pub const WRITE: &str = "MyService/weather_write";
/// An address where nothing listens (connections are refused). Port 1 is privileged, and no
/// test binds it; a port found free and released instead can be taken by another test's
/// server before it is dialled (a run once failed so).
pub const CLOSED: &str = "127.0.0.1:1";

/// The issuer setup every suite uses: resource server `MyService` and the clients above.
pub fn issuer_config(profile: TokenProfile) -> IssuerConfig {
    let mut no_cc = ClientConfig::new(NO_CC_ID, NO_CC_SECRET, [READ]);
    no_cc.allowed_grant_types = vec!["authorization_code".into()];
    IssuerConfig::new(profile)
        .with_resource_server("MyService", ["weather_read", "weather_write"])
        .with_client(ClientConfig::new(BFF_ID, BFF_SECRET, [READ]))
        .with_client(ClientConfig::new(ADMIN_ID, ADMIN_SECRET, [READ, WRITE]))
        .with_client(ClientConfig::new(ODD_ID, ODD_SECRET, [READ]))
        .with_client(no_cc)
}

/// Starts an issuer with [`issuer_config`] on an ephemeral port.
pub async fn start_issuer(profile: TokenProfile) -> IssuerHandle {
    mock_issuer::start(issuer_config(profile)).await.unwrap()
}

thread_local! {
    // Building a client costs ~15 ms (TLS roots); libtest runs each test on its own
    // thread, so a thread-local client is one per test and never shares pooled
    // connections across test runtimes.
    static HTTP: reqwest::Client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
}

/// An HTTP client with a timeout, so no test can hang on a socket.
pub fn http() -> reqwest::Client {
    HTTP.with(Clone::clone)
}

/// GETs `url` and parses the answer as JSON (the suites' most common request).
pub async fn get_json(url: impl reqwest::IntoUrl) -> Value {
    http().get(url).send().await.unwrap().json().await.unwrap()
}

/// GETs `url` (no credentials) and returns the status code.
pub async fn get_status(url: impl reqwest::IntoUrl) -> u16 {
    http().get(url).send().await.unwrap().status().as_u16()
}

/// Fetches the issuer's JWKS.
pub async fn jwks(issuer: &IssuerHandle) -> JwkSet {
    http()
        .get(issuer.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies `token` against the issuer's published keys with `jsonwebtoken` (an
/// implementation independent of the issuer's signer) and returns the claims.
pub fn verify(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.as_deref().expect("token has a kid");
    let jwk = keys
        .find(kid)
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    Ok(jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims)
}

/// Decodes a JWT part without verification.
pub fn decode_part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Signs a token for [`BFF_ID`] with `scopes` with the issuer's real key, after `edit` has
/// changed the issuer's header and claims template: a token the issuer would not mint.
pub fn forge(
    issuer: &IssuerHandle,
    scopes: &[&str],
    edit: impl FnOnce(&mut Value, &mut Value),
) -> String {
    let (mut header, mut claims) = issuer.token_template(BFF_ID, scopes);
    edit(&mut header, &mut claims);
    issuer.sign(&header, &claims).unwrap()
}

/// Asserts a resource server's refusal: `status`, the `error` of the RFC 6750 challenge
/// (None: a bare `Bearer`), an RFC 9457 problem+json body with `status` and `detail`, and
/// that neither body nor headers contain `token`. Returns the challenge.
pub async fn assert_refused(
    response: reqwest::Response,
    status: u16,
    error: Option<&str>,
    token: &str,
) -> String {
    assert_eq!(response.status().as_u16(), status);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    match error {
        None => assert_eq!(challenge, "Bearer"),
        Some(code) => assert!(
            challenge.starts_with(&format!("Bearer error=\"{code}\"")),
            "{challenge}"
        ),
    }
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    for (_, value) in response.headers() {
        assert!(token.is_empty() || !value.to_str().unwrap_or("").contains(token));
    }
    let body = response.text().await.unwrap();
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], status);
    assert!(problem["detail"].is_string());
    if token.len() > 8 {
        // No part of the token (header, payload or signature) is echoed.
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!body.contains(part), "body echoes the token: {body}");
        }
    }
    challenge
}

/// A server started on an ephemeral port for a test; stopped when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bound address.
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `127.0.0.1:0` (the `spawn_app` of the suites).
pub async fn serve(router: axum::Router) -> TestServer {
    serve_on(router, "127.0.0.1:0".parse().unwrap()).await
}

/// Serves `router` on `addr` (to restart a server on the same port).
pub async fn serve_on(router: axum::Router, addr: std::net::SocketAddr) -> TestServer {
    serve_listener(tokio::net::TcpListener::bind(addr).await.unwrap(), router)
}

/// A listener on `127.0.0.1:0` and its base URL, for a server whose configuration names
/// its own URL (a DPoP validator's public URL, an RFC 9728 resource); serve it with
/// [`serve_listener`].
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// Serves `router` on `listener`.
pub fn serve_listener(listener: tokio::net::TcpListener, router: axum::Router) -> TestServer {
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    TestServer {
        base: format!("http://{addr}"),
        addr,
        task,
    }
}

/// A resource server's validator settings for the issuer at `authority` (which may be
/// down): discovery from the authority, `profile`, and a 2 s timeout on the issuer.
pub fn validator_config_for(
    authority: &str,
    profile: shared_auth::server::TokenProfile,
) -> shared_auth::server::ValidatorConfig {
    let mut validator = shared_auth::server::ValidatorConfig::new(
        shared_auth::server::MetadataSource::Authority(authority.to_owned()),
        profile,
    );
    validator.http_timeout = std::time::Duration::from_secs(2);
    validator
}

/// The cognito server profile accepting any client.
pub fn cognito() -> shared_auth::server::TokenProfile {
    shared_auth::server::TokenProfile::Cognito {
        allowed_client_ids: vec![],
    }
}

/// Gets a token from `issuer` with client_secret_basic.
pub async fn fetch_token(
    issuer: &IssuerHandle,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = http()
        .post(issuer.token_endpoint())
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "token request failed: {}",
        response.status()
    );
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Runs the futures concurrently on the runtime (each spawned) and returns their outputs
/// in order.
pub async fn concurrently<T, F>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Everything `tracing` has written in this process since [`capture_logs`] was first
/// called.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// The text captured so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every event at TRACE, from every thread, for the rest of the process: a
/// global subscriber, installed on the first call. Use it in a test binary of its own
/// (`tests/logs.rs`), first thing in each test. A thread-local default subscriber is not
/// enough: tracing caches each call site's interest process-wide, and a call site first
/// hit by another test's thread could stay disabled for ours.
pub fn capture_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("capture_logs installs the only global subscriber of its test binary");
            captured
        })
        .clone()
}

/// A user at the mock issuer's login page, as a browser without script would be: GETs
/// the authorization URL, posts the form with `username` and `password`, and returns the
/// `Location` the issuer redirects to (the client's callback with `code`, `state` and
/// `iss`). Panics if the page is not the login form or the login is refused.
pub async fn log_in_at_issuer(authorize_url: &str, username: &str, password: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let page = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the login page");
    let action = page.url().clone();
    let html = page.text().await.unwrap();
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let mut form: Vec<(String, String)> = html
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"").unwrap();
            let (value, _) = rest.split_once('"').unwrap();
            (name.to_owned(), unescape(value))
        })
        .collect();
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    let mut target = action;
    target.set_query(None);
    let answer = browser.post(target).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), 303, "the login is accepted");
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// The query of the issuer's redirect back to a client (`code`, `state`, `iss`, or an
/// error), as the client's callback reads it.
pub fn login_callback(location: &str) -> shared_auth::client::Callback {
    let query: serde_json::Map<String, Value> = reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    serde_json::from_value(Value::Object(query)).unwrap()
}

/// Polls `condition` until it holds (backing off from 5 ms to 200 ms between looks), and
/// panics naming `what` if it does not within `within`. The one way the suites wait for
/// something to happen: on a condition, never for a fixed time.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    let mut pause = std::time::Duration::from_millis(5);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(200));
    }
}

/// Helpers for the suites that start containers (testcontainers; feature `containers`).
#[cfg(feature = "containers")]
pub mod containers {
    use testcontainers::bollard::models::{HostConfig, PortBinding};

    /// A TCP port free on 127.0.0.1 now, to publish a container port on (a fixed port
    /// survives a container restart; an engine-chosen one may not).
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A host-config modifier that publishes every mapped port on 127.0.0.1 only. podman
    /// needs the explicit address (see infra/containers/README.md), and a test container has
    /// no business listening on the network.
    pub fn publish_on_loopback(config: &mut HostConfig) {
        for bindings in config.port_bindings.iter_mut().flat_map(|m| m.values_mut()) {
            for binding in bindings.iter_mut().flatten() {
                *binding = PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: binding.host_port.clone(),
                };
            }
        }
    }
}

/// A file in the temporary directory, unique to this process and call, removed when
/// dropped: key files, secret files and platform-written tokens in the suites.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    /// A new name (the file is not created until [`write`](Self::write)).
    pub fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        TempFile(std::env::temp_dir().join(format!("{name}-{}-{n}", std::process::id())))
    }

    /// The path as text (for command-line arguments).
    pub fn path(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    /// Writes `text` to a sibling and renames it into place, as a kubelet's atomic writer
    /// does: a reader never sees half a file.
    pub fn write(&self, text: &str) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
