//! The trust channels under attack: redirects, endless bodies, plain http, and metadata
//! documents that name another issuer or hand over insecure URLs. Each case is a real
//! server on a loopback socket that misbehaves on purpose, and the library (validator,
//! token manager, `from_authority`, my-bff's start) must refuse it.
//!
//! Where a refusal could hide a request made anyway, the server that a compliant-looking
//! but unsafe client would reach next (the redirect target, a handed-over JWKS) records
//! every request it gets, and serves what would make the unsafe path *succeed*: real keys,
//! a token, a discovery document naming the right issuer. So a library that followed
//! would pass its start or get its token, and the test would fail.
//!
//! `0.0.0.0` stands for "a host the policy does not count as loopback that this machine
//! still answers on": on Linux a connection to the unspecified address reaches the local
//! host. It lets the plain-http opt-in be shown end to end without leaving the machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::{Value, json};
use shared_auth::UrlError;
use shared_auth::client::{
    BuildError, ClientCredentialsClient, ClientId, ClientSecret, CredentialStyle, ManagedClient,
    RetryPolicy, TokenError, TokenManager,
};
use shared_auth::server::{
    JwtValidator, MetadataSource, StartError, ValidationError, ValidatorConfig,
};
use system_tests::*;
use tokio::net::{TcpListener, TcpStream};

/// The redirect statuses: every one must be refused, not only the two (307, 308) that
/// resend a POST body as it is.
const REDIRECTS: [StatusCode; 5] = [
    StatusCode::MOVED_PERMANENTLY,
    StatusCode::FOUND,
    StatusCode::SEE_OTHER,
    StatusCode::TEMPORARY_REDIRECT,
    StatusCode::PERMANENT_REDIRECT,
];

/// How long a refusal on size may take. The timeouts configured in these tests are far
/// longer, so a refusal this fast is the cap at work, not a timeout.
const PROMPTLY: Duration = Duration::from_secs(5);

/// One request a [`Spy`] received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    authorization: bool,
    body: String,
}

/// An axum server that answers every request (any method, any path) with what its
/// responder makes of the path, and records each request.
struct Spy {
    server: TestServer,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Spy {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    /// The same URL with the host `0.0.0.0`: not loopback to the policy, local here.
    fn unspecified_url(&self, path: &str) -> String {
        format!("http://0.0.0.0:{}{path}", self.server.addr.port())
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn spy<F>(respond: F) -> Spy
where
    F: Fn(&str) -> Response + Clone + Send + Sync + 'static,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let router = Router::new().fallback(
        // Bytes, not String: a body that is not UTF-8 must be recorded too.
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            let respond = respond.clone();
            async move {
                log.lock().unwrap().push(Seen {
                    method,
                    path: uri.path().to_owned(),
                    authorization: headers.contains_key(header::AUTHORIZATION),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                respond(uri.path())
            }
        },
    );
    Spy {
        server: serve(router).await,
        seen,
    }
}

/// A spy that answers every request with `status` and `Location: location`.
async fn redirecting(status: StatusCode, location: String) -> Spy {
    spy(move |_| (status, [(header::LOCATION, location.clone())]).into_response()).await
}

/// A spy that serves `body` as JSON on every path.
async fn serving(body: Value) -> Spy {
    spy(move |_| Json(body.clone()).into_response()).await
}

/// A discovery document.
fn document(issuer: &str, jwks_uri: &str, token_endpoint: Option<&str>) -> Response {
    let mut doc = json!({ "issuer": issuer, "jwks_uri": jwks_uri });
    if let Some(token_endpoint) = token_endpoint {
        doc["token_endpoint"] = json!(token_endpoint);
    }
    Json(doc).into_response()
}

/// The issuer's JWKS as JSON, to serve from elsewhere.
async fn jwks_json(issuer: &IssuerHandle) -> Value {
    get_json(issuer.jwks_uri()).await
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn validator_config(metadata: MetadataSource) -> ValidatorConfig {
    let mut config = ValidatorConfig::new(metadata, cognito());
    // Far longer than PROMPTLY: a size refusal cannot be a timeout in disguise.
    config.http_timeout = Duration::from_secs(20);
    config
}

fn jwks_source(jwks_uri: String, issuer: &str) -> MetadataSource {
    MetadataSource::Jwks {
        jwks_uri,
        issuer: issuer.to_owned(),
    }
}

async fn start_error(config: ValidatorConfig) -> StartError {
    JwtValidator::new(config)
        .await
        .expect_err("the validator must not start")
}

/// The BFF's client, sending its secret in the form body (`client_secret_post`: the
/// style a followed 307 would resend as it is).
fn bff_client(token_endpoint: String) -> ClientCredentialsClient {
    ClientCredentialsClient::new(
        token_endpoint,
        ClientId::new(BFF_ID),
        ClientSecret::new(BFF_SECRET),
    )
    .with_credential_style(CredentialStyle::PostBody)
}

fn manager(client: ClientCredentialsClient) -> ManagedClient {
    TokenManager::builder()
        // Long attempts, so a size refusal cannot be a timeout in disguise.
        .retry_policy(RetryPolicy {
            attempt_timeout: Duration::from_secs(20),
            total_budget: Duration::from_secs(20),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap()
        .register("api", client)
        .unwrap()
}

// --- Redirects -------------------------------------------------------------------------

#[tokio::test]
async fn a_token_endpoint_redirect_is_an_error_and_the_secret_goes_nowhere_else() {
    // Following would pay off: the target hands out a token to whoever asks.
    let target = spy(|_| {
        Json(json!({
            "access_token": "followed-the-redirect",
            "token_type": "Bearer",
            "expires_in": 300,
        }))
        .into_response()
    })
    .await;
    for style in [CredentialStyle::PostBody, CredentialStyle::BasicHeader] {
        for status in REDIRECTS {
            let endpoint = redirecting(status, target.url("/token")).await;
            let tokens = manager(bff_client(endpoint.url("/token")).with_credential_style(style));
            let result = tokens.token().await;
            let case = format!("{style:?} answered {status}");
            match &result {
                Err(TokenError::InvalidResponse(message)) => assert!(
                    message.contains(status.as_str()) && message.contains("redirect"),
                    "{case}: the error should name the status and the redirect: {message}"
                ),
                other => panic!("{case}: expected an invalid-response error, got {other:?}"),
            }
            // The credentials went to the configured endpoint, once (a redirect is final,
            // not retried) ...
            let sent = endpoint.seen();
            assert_eq!(sent.len(), 1, "{case}: {sent:?}");
            match style {
                CredentialStyle::PostBody => assert!(
                    sent[0]
                        .body
                        .contains(&format!("client_secret={BFF_SECRET}")),
                    "{case}: the secret should be in the form body: {:?}",
                    sent[0].body
                ),
                CredentialStyle::BasicHeader => {
                    assert!(sent[0].authorization, "{case}: no Authorization header")
                }
                other => panic!("{case}: a credential style this test does not know: {other:?}"),
            }
            // ... and nowhere else.
            assert_eq!(target.hits(), 0, "{case}: {:?}", target.seen());
        }
    }
}

#[tokio::test]
async fn a_jwks_redirect_stops_the_validator_and_the_target_is_never_asked() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // Following would pay off: the target serves the issuer's real keys.
    let target = serving(jwks_json(&issuer).await).await;
    for status in REDIRECTS {
        let jwks = redirecting(status, target.url("/jwks")).await;
        let error = start_error(validator_config(jwks_source(
            jwks.url("/jwks"),
            issuer.issuer(),
        )))
        .await;
        let text = error.to_string();
        assert!(
            matches!(error, StartError::Keys(_))
                && text.contains("redirect")
                && text.contains(status.as_str()),
            "{status}: {text}"
        );
        assert_eq!(jwks.hits(), 1, "{status}");
        assert_eq!(target.hits(), 0, "{status}: {:?}", target.seen());
    }
    // Control: the target's keys are usable, so only the refusal kept the validator off
    // them.
    let validator = JwtValidator::new(validator_config(jwks_source(
        target.url("/jwks"),
        issuer.issuer(),
    )))
    .await
    .unwrap();
    assert!(validator.is_ready());
    assert_eq!(target.hits(), 1);
}

#[tokio::test]
async fn a_discovery_redirect_stops_the_validator_and_the_target_is_never_asked() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // The target's document names the redirecting authority of the round as its issuer
    // and hands over real keys: a validator that followed would start.
    let authority = Arc::new(Mutex::new(String::new()));
    let named = authority.clone();
    let jwks_uri = issuer.jwks_uri();
    let target = spy(move |_| document(&named.lock().unwrap(), &jwks_uri, None)).await;
    for status in REDIRECTS {
        let redirector = redirecting(status, target.url("/.well-known/openid-configuration")).await;
        *authority.lock().unwrap() = redirector.server.base.clone();
        let error = start_error(validator_config(MetadataSource::Authority(
            redirector.server.base.clone(),
        )))
        .await;
        assert!(
            matches!(&error, StartError::Discovery { reason, .. }
                if reason.contains("redirect") && reason.contains(status.as_str())),
            "{status}: {error}"
        );
        assert_eq!(redirector.hits(), 1, "{status}");
        assert_eq!(target.hits(), 0, "{status}: {:?}", target.seen());
    }
    assert_eq!(issuer.stats().jwks_fetches, 0);
    // Control: the target's document is acceptable for that issuer.
    let mut config = validator_config(MetadataSource::MetadataAddress(
        target.url("/.well-known/openid-configuration"),
    ));
    let expected = authority.lock().unwrap().clone();
    config.issuer = Some(expected.clone());
    let validator = JwtValidator::new(config).await.unwrap();
    assert_eq!(validator.issuer(), Some(expected.as_str()));
    assert_eq!(target.hits(), 1);
}

#[tokio::test]
async fn a_redirect_from_a_discovered_jwks_uri_stops_the_validator() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let target = serving(jwks_json(&issuer).await).await;
    let jwks = redirecting(StatusCode::TEMPORARY_REDIRECT, target.url("/jwks")).await;
    let authority = Arc::new(OnceLock::<String>::new());
    let named = authority.clone();
    let jwks_uri = jwks.url("/jwks");
    let docs = spy(move |_| document(named.get().unwrap(), &jwks_uri, None)).await;
    authority.set(docs.server.base.clone()).unwrap();
    let error = start_error(validator_config(MetadataSource::Authority(
        docs.server.base.clone(),
    )))
    .await;
    let text = error.to_string();
    assert!(
        matches!(error, StartError::Keys(_)) && text.contains("redirect") && text.contains("307"),
        "{text}"
    );
    assert_eq!((docs.hits(), jwks.hits()), (1, 1));
    assert_eq!(target.hits(), 0, "{:?}", target.seen());
}

#[tokio::test]
async fn a_jwks_redirect_on_a_later_refresh_keeps_the_keys_and_follows_nowhere() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let old_token = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    let old_keys = jwks_json(&issuer).await;
    issuer.rotate_key().unwrap();
    let new_token = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    let new_keys = jwks_json(&issuer).await;
    let new_kid = decode_part(&new_token, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!kids(&old_keys).contains(&new_kid) && kids(&new_keys).contains(&new_kid));
    // The redirect target has the key the new token needs.
    let target = serving(new_keys).await;
    let redirect = Arc::new(AtomicBool::new(false));
    let switch = redirect.clone();
    let location = target.url("/jwks");
    let jwks = spy(move |_| {
        if switch.load(Ordering::SeqCst) {
            (StatusCode::FOUND, [(header::LOCATION, location.clone())]).into_response()
        } else {
            Json(old_keys.clone()).into_response()
        }
    })
    .await;
    let validator = JwtValidator::new(validator_config(jwks_source(
        jwks.url("/jwks"),
        issuer.issuer(),
    )))
    .await
    .unwrap();
    assert_eq!(jwks.hits(), 1);
    redirect.store(true, Ordering::SeqCst);
    // The unknown kid triggers one refresh; it meets the redirect and stops there.
    assert_eq!(
        validator.validate(&new_token).await.unwrap_err(),
        ValidationError::UnknownKey
    );
    assert_eq!(jwks.hits(), 2, "one on-demand refresh");
    assert_eq!(target.hits(), 0, "{:?}", target.seen());
    // The last good keys stay.
    assert!(validator.is_ready());
    validator.validate(&old_token).await.unwrap();
}

#[tokio::test]
async fn from_authority_refuses_a_redirected_discovery_document() {
    // The target's document names the redirecting authority of the round: a client that
    // followed would get its token endpoint.
    let authority = Arc::new(Mutex::new(String::new()));
    let named = authority.clone();
    let target = spy(move |_| {
        let issuer = named.lock().unwrap().clone();
        document(
            &issuer,
            &format!("{issuer}/jwks"),
            Some(&format!("{issuer}/token")),
        )
    })
    .await;
    for status in REDIRECTS {
        let redirector = redirecting(status, target.url("/.well-known/openid-configuration")).await;
        *authority.lock().unwrap() = redirector.server.base.clone();
        let result = ClientCredentialsClient::from_authority(
            &redirector.server.base,
            ClientId::new(BFF_ID),
            ClientSecret::new(BFF_SECRET),
            Duration::from_secs(20),
            false,
        )
        .await;
        match result {
            Err(TokenError::Discovery(message)) => assert!(
                message.contains("redirect") && message.contains(status.as_str()),
                "{status}: {message}"
            ),
            other => panic!("{status}: expected a discovery error, got {other:?}"),
        }
        assert_eq!(redirector.hits(), 1, "{status}");
        assert_eq!(target.hits(), 0, "{status}: {:?}", target.seen());
    }
}

// --- Size caps -------------------------------------------------------------------------

/// How an [`Endless`] server frames its never-ending body.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// `Transfer-Encoding: chunked`, chunk after chunk, never the last one.
    Chunked,
    /// No length at all: the body runs until the connection closes, which the server
    /// never does.
    UntilClose,
    /// A `Content-Length` of 16 GiB, then bytes for as long as anyone reads.
    HugeLength,
}

const FRAMINGS: [Framing; 3] = [Framing::Chunked, Framing::UntilClose, Framing::HugeLength];

/// A hand-written HTTP/1.1 server that answers every request with `status` and a body
/// that starts with `prefix` and never ends. Hand-written because axum frames bodies
/// correctly (it cannot be told to lie about a length), and an endless one needs a `Stream` type no dependency of this crate offers.
/// It counts the connections whose client hung up, which is how a client stops reading.
struct Endless {
    base: String,
    accepted: Arc<AtomicUsize>,
    hung_up: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Endless {
    async fn start(status: &'static str, framing: Framing, prefix: &'static str) -> Endless {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let hung_up = Arc::new(AtomicUsize::new(0));
        let (counted, ended) = (accepted.clone(), hung_up.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let ended = ended.clone();
                tokio::spawn(async move {
                    // Ends only when the client goes away (a failed read or write).
                    let _ = pour(&stream, status, framing, prefix).await;
                    ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Endless {
            base,
            accepted,
            hung_up,
            task,
        }
    }

    /// Waits until every client that connected has hung up (a client that kept reading
    /// would keep its connection).
    async fn all_hung_up(&self) {
        eventually(
            PROMPTLY,
            "the client hangs up on the endless body",
            || async {
                let accepted = self.accepted.load(Ordering::SeqCst);
                accepted > 0 && self.hung_up.load(Ordering::SeqCst) == accepted
            },
        )
        .await;
    }
}

async fn pour(
    stream: &TcpStream,
    status: &str,
    framing: Framing,
    prefix: &str,
) -> std::io::Result<()> {
    // The request head; a request body, if any, is left unread.
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        stream.readable().await?;
        let mut buf = [0u8; 4096];
        match stream.try_read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    let framing_header = match framing {
        Framing::Chunked => "transfer-encoding: chunked\r\n",
        Framing::UntilClose => "connection: close\r\n",
        Framing::HugeLength => "content-length: 17179869184\r\n",
    };
    let head =
        format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{framing_header}\r\n");
    write_all(stream, head.as_bytes()).await?;
    let frame = |data: &[u8]| match framing {
        Framing::Chunked => {
            let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
            framed.extend_from_slice(data);
            framed.extend_from_slice(b"\r\n");
            framed
        }
        Framing::UntilClose | Framing::HugeLength => data.to_vec(),
    };
    write_all(stream, &frame(prefix.as_bytes())).await?;
    // JSON whitespace: the document stays well-formed as far as it goes.
    let filler = frame(&[b' '; 16 * 1024]);
    loop {
        write_all(stream, &filler).await?;
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_endless_jwks_or_discovery_body_fails_promptly_on_its_size() {
    for framing in FRAMINGS {
        let jwks = Endless::start("200 OK", framing, r#"{"keys":["#).await;
        let started = Instant::now();
        let error = start_error(validator_config(jwks_source(
            format!("{}/jwks", jwks.base),
            "https://issuer.example",
        )))
        .await;
        let elapsed = started.elapsed();
        let text = error.to_string();
        assert!(
            matches!(error, StartError::Keys(_)) && text.contains("larger than"),
            "JWKS, {framing:?}: {text}"
        );
        assert!(elapsed < PROMPTLY, "JWKS, {framing:?}: took {elapsed:?}");
        jwks.all_hung_up().await;

        let docs = Endless::start("200 OK", framing, r#"{"issuer":""#).await;
        let started = Instant::now();
        let error = start_error(validator_config(MetadataSource::Authority(
            docs.base.clone(),
        )))
        .await;
        let elapsed = started.elapsed();
        assert!(
            matches!(&error, StartError::Discovery { reason, .. } if reason.contains("larger than")),
            "discovery, {framing:?}: {error}"
        );
        assert!(
            elapsed < PROMPTLY,
            "discovery, {framing:?}: took {elapsed:?}"
        );
        docs.all_hung_up().await;

        let started = Instant::now();
        let result = ClientCredentialsClient::from_authority(
            &docs.base,
            ClientId::new(BFF_ID),
            ClientSecret::new(BFF_SECRET),
            Duration::from_secs(20),
            false,
        )
        .await;
        let elapsed = started.elapsed();
        assert!(
            matches!(&result, Err(TokenError::Discovery(m)) if m.contains("larger than")),
            "from_authority, {framing:?}: {result:?}"
        );
        assert!(
            elapsed < PROMPTLY,
            "from_authority, {framing:?}: took {elapsed:?}"
        );
        docs.all_hung_up().await;
    }
}

#[tokio::test]
async fn an_endless_token_response_fails_promptly_on_its_size() {
    for status in ["200 OK", "400 Bad Request", "503 Service Unavailable"] {
        for framing in FRAMINGS {
            let endpoint = Endless::start(status, framing, r#"{"access_token":""#).await;
            let tokens = manager(bff_client(format!("{}/token", endpoint.base)));
            let started = Instant::now();
            let result = tokens.token().await;
            let elapsed = started.elapsed();
            assert!(
                matches!(&result, Err(TokenError::InvalidResponse(m)) if m.contains("larger than")),
                "{status}, {framing:?}: {result:?}"
            );
            assert!(
                elapsed < PROMPTLY,
                "{status}, {framing:?}: took {elapsed:?}"
            );
            endpoint.all_hung_up().await;
            // Refused, not retried: one connection.
            assert_eq!(
                endpoint.accepted.load(Ordering::SeqCst),
                1,
                "{status}, {framing:?}"
            );
        }
    }
}

// --- https only, but loopback ----------------------------------------------------------

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_before_any_request() {
    // The validator refuses at construction, whatever the source: a Config error, which
    // comes before any request (a request would fail as Discovery or Keys).
    for metadata in [
        jwks_source("http://issuer.example/jwks".into(), "http://issuer.example"),
        MetadataSource::Authority("http://issuer.example".into()),
        MetadataSource::MetadataAddress(
            "http://issuer.example/.well-known/openid-configuration".into(),
        ),
    ] {
        let error = start_error(validator_config(metadata.clone())).await;
        assert!(
            matches!(&error, StartError::Config(m)
                if m.contains("http://issuer.example") && m.contains("https")),
            "{metadata:?}: {error}"
        );
    }

    // The token manager refuses the client at registration, naming it.
    let built = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", bff_client("http://issuer.example/token".into()));
    match built {
        Err(BuildError::TokenEndpoint { client, source }) => {
            assert_eq!(client, "api");
            assert!(matches!(source, UrlError::Insecure { .. }), "{source}");
        }
        other => panic!("expected a token-endpoint build error, got {other:?}"),
    }
    TokenManager::builder()
        .allow_insecure_http(true)
        .build()
        .unwrap()
        .register("api", bff_client("http://issuer.example/token".into()))
        .unwrap();

    // from_authority refuses the authority itself.
    let result = ClientCredentialsClient::from_authority(
        "http://issuer.example",
        ClientId::new(BFF_ID),
        ClientSecret::new(BFF_SECRET),
        Duration::from_secs(20),
        false,
    )
    .await;
    assert!(
        matches!(&result, Err(TokenError::Discovery(m)) if m.contains("plain http")),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_insecure_http_opt_in_works_end_to_end() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let port = issuer.addr().port();
    let jwks_uri = issuer.jwks_uri().replace("127.0.0.1", "0.0.0.0");
    let token_endpoint = issuer.token_endpoint().replace("127.0.0.1", "0.0.0.0");
    assert!(
        jwks_uri.starts_with(&format!("http://0.0.0.0:{port}/")),
        "{jwks_uri}"
    );

    // Validator: refused without the opt-in, before any request ...
    let error = start_error(validator_config(jwks_source(
        jwks_uri.clone(),
        issuer.issuer(),
    )))
    .await;
    assert!(matches!(error, StartError::Config(_)), "{error}");
    assert_eq!(issuer.stats().jwks_fetches, 0);
    // ... and with it, it starts and validates.
    let mut config = validator_config(jwks_source(jwks_uri, issuer.issuer()));
    config.allow_insecure_http = true;
    let validator = JwtValidator::new(config).await.unwrap();
    assert_eq!(issuer.stats().jwks_fetches, 1);
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    validator.validate(&token).await.unwrap();

    // Token manager: the same.
    let built = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", bff_client(token_endpoint.clone()));
    assert!(
        matches!(built, Err(BuildError::TokenEndpoint { .. })),
        "{built:?}"
    );
    let requests = issuer.stats().token_requests;
    let tokens = TokenManager::builder()
        .allow_insecure_http(true)
        .build()
        .unwrap()
        .register("api", bff_client(token_endpoint))
        .unwrap();
    let token = tokens.token().await.unwrap();
    validator.validate(token.secret()).await.unwrap();
    assert_eq!(issuer.stats().token_requests, requests + 1);
}

#[tokio::test]
async fn a_discovered_plain_http_jwks_uri_is_refused_without_being_fetched() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // Real keys behind a URL the policy counts as remote.
    let keys = serving(jwks_json(&issuer).await).await;
    let remote_keys = keys.unspecified_url("/jwks");
    let base = Arc::new(OnceLock::<String>::new());
    let known = base.clone();
    let docs = spy(move |path| {
        let base = known.get().unwrap();
        match path {
            "/remote/.well-known/openid-configuration" => document(
                &format!("{base}/remote"),
                "http://keys.example/jwks",
                Some(&format!("{base}/token")),
            ),
            "/unspecified/.well-known/openid-configuration" => document(
                &format!("{base}/unspecified"),
                &remote_keys,
                Some(&format!("{base}/token")),
            ),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    })
    .await;
    base.set(docs.server.base.clone()).unwrap();

    for (tenant, handed_over) in [
        ("remote", "http://keys.example/jwks".to_owned()),
        ("unspecified", keys.unspecified_url("/jwks")),
    ] {
        let authority = docs.url(&format!("/{tenant}"));
        let error = start_error(validator_config(MetadataSource::Authority(authority))).await;
        assert!(
            matches!(&error, StartError::UnusableEndpoint { field: "jwks_uri", reason, .. }
                if reason.contains(&handed_over)),
            "{tenant}: {error}"
        );
        // The message names the opt-in (the service names its variable, with its prefix:
        // `ValidatorSettings::explain_start_error`).
        assert!(
            error.to_string().contains("insecure-http opt-in"),
            "{error}"
        );
    }
    assert_eq!(docs.hits(), 2);
    assert_eq!(keys.hits(), 0, "{:?}", keys.seen());

    // Control: with the opt-in the handed-over URL is used, and it does reach the keys.
    let mut config = validator_config(MetadataSource::Authority(docs.url("/unspecified")));
    config.allow_insecure_http = true;
    let validator = JwtValidator::new(config).await.unwrap();
    assert!(validator.is_ready());
    assert_eq!(keys.hits(), 1);
}

#[tokio::test]
async fn from_authority_checks_what_the_document_hands_over() {
    let base = Arc::new(OnceLock::<String>::new());
    let known = base.clone();
    let docs = spy(move |path| {
        let base = known.get().unwrap();
        match path {
            "/insecure/.well-known/openid-configuration" => document(
                &format!("{base}/insecure"),
                &format!("{base}/jwks"),
                Some("http://issuer.example/token"),
            ),
            "/mismatch/.well-known/openid-configuration" => document(
                "https://other-issuer.example",
                &format!("{base}/jwks"),
                Some(&format!("{base}/mismatch/token")),
            ),
            "/ok/.well-known/openid-configuration" => document(
                &format!("{base}/ok"),
                &format!("{base}/jwks"),
                Some(&format!("{base}/ok/token")),
            ),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    })
    .await;
    base.set(docs.server.base.clone()).unwrap();
    let discover = |tenant: &str, insecure: bool| {
        let authority = docs.url(&format!("/{tenant}"));
        async move {
            ClientCredentialsClient::from_authority(
                &authority,
                ClientId::new(BFF_ID),
                ClientSecret::new(BFF_SECRET),
                Duration::from_secs(20),
                insecure,
            )
            .await
        }
    };

    let result = discover("insecure", false).await;
    assert!(
        matches!(&result, Err(TokenError::Discovery(m))
            if m.contains("token_endpoint") && m.contains("http://issuer.example/token")),
        "{result:?}"
    );
    let result = discover("mismatch", false).await;
    assert!(
        matches!(&result, Err(TokenError::Discovery(m))
            if m.contains("https://other-issuer.example") && m.contains(&docs.url("/mismatch"))),
        "{result:?}"
    );
    let ok = discover("ok", false).await.unwrap();
    assert_eq!(ok.token_endpoint, docs.url("/ok/token"));
    let opted_in = discover("insecure", true).await.unwrap();
    assert_eq!(opted_in.token_endpoint, "http://issuer.example/token");
    // Discovery only: nothing was sent to any token endpoint.
    assert!(
        docs.seen()
            .iter()
            .all(|s| s.method == Method::GET
                && s.path.ends_with("/.well-known/openid-configuration")),
        "{:?}",
        docs.seen()
    );
}

// --- The issuer a metadata address implies (RFC 8414 section 3.3) --------------------

#[tokio::test]
async fn a_custom_metadata_address_needs_the_issuer_configured_and_matching() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let (iss, jwks_uri) = (issuer.issuer().to_owned(), issuer.jwks_uri());
    let docs = spy(move |path| match path {
        "/custom/metadata.json" => document(&iss, &jwks_uri, None),
        _ => StatusCode::NOT_FOUND.into_response(),
    })
    .await;
    let address = docs.url("/custom/metadata.json");
    let config = |expected: Option<&str>| {
        let mut config = validator_config(MetadataSource::MetadataAddress(address.clone()));
        config.issuer = expected.map(str::to_owned);
        config
    };

    // No issuer: the shape of the address does not say it, so it must be configured; the
    // document is not even fetched.
    let error = start_error(config(None)).await;
    assert!(
        matches!(&error, StartError::IssuerRequired { url } if *url == address),
        "{error}"
    );
    assert!(
        error.to_string().contains("configure the expected issuer"),
        "{error}"
    );
    assert_eq!(docs.hits(), 0);

    // Another issuer than the document's.
    let other = format!("{}/other", issuer.issuer());
    match start_error(config(Some(&other))).await {
        StartError::IssuerMismatch {
            url,
            expected,
            found,
        } => {
            assert_eq!(url, address);
            assert_eq!(expected, other);
            assert_eq!(found, issuer.issuer());
        }
        error => panic!("expected an issuer mismatch, got {error}"),
    }

    // The document's issuer: it starts and validates the issuer's tokens.
    let validator = JwtValidator::new(config(Some(issuer.issuer())))
        .await
        .unwrap();
    assert_eq!(validator.issuer(), Some(issuer.issuer()));
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    validator.validate(&token).await.unwrap();

    // The explicit opt-out starts without an expected issuer and takes the document's.
    let mut opted_out = config(None);
    opted_out.allow_issuer_mismatch = true;
    let validator = JwtValidator::new(opted_out).await.unwrap();
    assert_eq!(validator.issuer(), Some(issuer.issuer()));
}

#[tokio::test]
async fn well_known_metadata_addresses_imply_their_issuer() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let jwks_uri = issuer.jwks_uri();
    let base = Arc::new(OnceLock::<String>::new());
    let known = base.clone();
    let docs = spy(move |path| {
        let origin = known.get().unwrap();
        let named = match path {
            "/.well-known/oauth-authorization-server/tenant" => format!("{origin}/tenant"),
            "/.well-known/oauth-authorization-server" => origin.clone(),
            "/tenant/.well-known/openid-configuration" => format!("{origin}/tenant"),
            // The mix-up RFC 8414 section 3.3 guards against: the tenant's address, the
            // origin's document.
            "/.well-known/oauth-authorization-server/other" => origin.clone(),
            _ => return StatusCode::NOT_FOUND.into_response(),
        };
        document(&named, &jwks_uri, None)
    })
    .await;
    base.set(docs.server.base.clone()).unwrap();
    let origin = docs.server.base.clone();

    for (path, implied) in [
        (
            "/.well-known/oauth-authorization-server/tenant",
            format!("{origin}/tenant"),
        ),
        ("/.well-known/oauth-authorization-server", origin.clone()),
        (
            "/tenant/.well-known/openid-configuration",
            format!("{origin}/tenant"),
        ),
    ] {
        let validator = JwtValidator::new(validator_config(MetadataSource::MetadataAddress(
            docs.url(path),
        )))
        .await
        .unwrap();
        assert_eq!(validator.issuer(), Some(implied.as_str()), "{path}");
    }

    match start_error(validator_config(MetadataSource::MetadataAddress(
        docs.url("/.well-known/oauth-authorization-server/other"),
    )))
    .await
    {
        StartError::IssuerMismatch {
            expected, found, ..
        } => {
            assert_eq!(expected, format!("{origin}/other"));
            assert_eq!(found, origin);
        }
        error => panic!("expected an issuer mismatch, got {error}"),
    }

    // The implied issuer is the one tokens must carry: the mock issuer's own tokens
    // (signed with the keys this document hands over) name another.
    let validator = JwtValidator::new(validator_config(MetadataSource::MetadataAddress(
        docs.url("/.well-known/oauth-authorization-server/tenant"),
    )))
    .await
    .unwrap();
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        ValidationError::Issuer
    );
}

// --- my-bff's start --------------------------------------------------------------------

#[tokio::test]
async fn my_bff_refuses_plain_http_token_endpoints_at_start_naming_the_variable() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let mut config = bff_config(&issuer, &format!("http://{}", test_support::CLOSED));

    config.client.token_source =
        my_bff::config::TokenSource::Endpoint("http://issuer.example/token".into());
    let Err(error) = my_bff::token_client(&config).await else {
        panic!("a plain-http remote token endpoint must be refused");
    };
    let text = error.to_string();
    assert!(
        text.contains("AUTH_SERVER_TOKEN_ENDPOINT_URL")
            && text.contains("http://issuer.example/token"),
        "{text}"
    );
    config.client.allow_insecure_http = true;
    my_bff::token_client(&config).await.unwrap();

    // Discovered: an authority whose document hands over a plain-http remote endpoint.
    let base = Arc::new(OnceLock::<String>::new());
    let known = base.clone();
    let docs = spy(move |_| {
        let base = known.get().unwrap();
        document(
            base,
            &format!("{base}/jwks"),
            Some("http://issuer.example/token"),
        )
    })
    .await;
    base.set(docs.server.base.clone()).unwrap();
    config.client.allow_insecure_http = false;
    config.client.token_source = my_bff::config::TokenSource::Authority(docs.server.base.clone());
    let Err(error) = my_bff::token_client(&config).await else {
        panic!("a discovered plain-http remote token endpoint must be refused");
    };
    let text = error.to_string();
    assert!(
        text.contains("AUTH_SERVER_AUTHORITY") && text.contains("token_endpoint"),
        "{text}"
    );
    config.client.allow_insecure_http = true;
    let tokens = my_bff::token_client(&config).await.unwrap();
    assert_eq!(tokens.name(), my_bff::MY_SERVICE_CLIENT);
    // Discovery only, never the (unreachable) token endpoint.
    assert_eq!(docs.hits(), 2);
    assert_eq!(issuer.stats().token_requests, 0);
}

/// A resource server only shows the token endpoint in its OpenAPI document: one that breaks
/// the transport policy (or is no URL at all) is dropped, and the validator starts.
#[tokio::test]
async fn the_validator_ignores_an_unusable_token_endpoint_it_does_not_use() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let keys = serving(jwks_json(&issuer).await).await;
    let keys_url = keys.server.base.clone() + "/jwks";
    for token_endpoint in ["http://issuer.example/token", ""] {
        let base = Arc::new(OnceLock::<String>::new());
        let known = base.clone();
        let (keys_url, token_endpoint) = (keys_url.clone(), token_endpoint.to_owned());
        let docs = spy(move |path| {
            let base = known.get().unwrap();
            match path {
                "/.well-known/openid-configuration" => {
                    document(base, &keys_url, Some(&token_endpoint))
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        })
        .await;
        base.set(docs.server.base.clone()).unwrap();
        let validator = JwtValidator::new(validator_config(MetadataSource::Authority(
            docs.server.base.clone(),
        )))
        .await
        .unwrap();
        assert_eq!(validator.token_endpoint(), None);
        assert!(validator.is_ready());
    }
}
