//! OAuth 2.0 Protected Resource Metadata (RFC 9728), both halves over HTTP: my-service
//! with `resource` set publishes its metadata and points its 401 challenges at it; a
//! client configured with my-service's URL alone finds the mock issuer through that
//! metadata, gets a token and calls the API; documents that name another resource, or an
//! authorization server whose discovery names another issuer, are refused; the client's
//! secret goes only to an issuer it trusts (RFC 9728 section 7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Json;
use axum::routing::get;
use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::{Value, json};
use shared_auth::client::{
    ClientCredentialsMiddleware, ClientDefinition, ClientId, ClientSecret, TokenManager,
    TokenSource,
};
use shared_auth::server::{DpopMode, JwtValidator, ProtectedResource};
use system_tests::*;

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A server whose URL is known before its router is built (the resource identifier is the
/// server's own URL); aborted when dropped.
struct Bound {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

fn spawn(listener: tokio::net::TcpListener, base: String, router: axum::Router) -> Bound {
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Bound { base, task }
}

/// my-service against `issuer`, its resource identifier its own URL plus `path`, DPoP in
/// `mode`.
async fn start_service_at(issuer: &IssuerHandle, path: &str, mode: DpopMode) -> Bound {
    let (listener, base) = bind().await;
    let mut config = validator_config_for(issuer.issuer(), cognito());
    config.dpop.mode = mode;
    config.resource =
        Some(ProtectedResource::new(format!("{base}{path}")).with_scopes([READ, WRITE]));
    let validator = JwtValidator::new(config).await.unwrap();
    spawn(
        listener,
        base,
        my_service::router(validator, "http://127.0.0.1:1/token"),
    )
}

/// Every `WWW-Authenticate` value, in order.
fn challenges(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_document_lists_issuer_scopes_and_the_dpop_mode() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    for mode in [DpopMode::Off, DpopMode::Allowed, DpopMode::Required] {
        let service = start_service_at(&issuer, "", mode).await;
        let response = http()
            .get(format!("{}{WELL_KNOWN}", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{mode:?}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let cache = response.headers()["cache-control"].to_str().unwrap();
        assert!(cache.contains("max-age="), "{cache}");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["resource"], json!(service.base), "{mode:?}");
        assert_eq!(doc["authorization_servers"], json!([issuer.issuer()]));
        assert_eq!(doc["scopes_supported"], json!([READ, WRITE]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        let algs = &doc["dpop_signing_alg_values_supported"];
        match mode {
            DpopMode::Off => assert!(algs.is_null(), "{doc}"),
            _ => {
                let algs: Vec<&str> = algs
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                assert!(algs.contains(&"ES256") && !algs.contains(&"HS256"), "{doc}");
            }
        }
        assert_eq!(
            doc["dpop_bound_access_tokens_required"].as_bool(),
            (mode == DpopMode::Required).then_some(true),
            "{mode:?}: {doc}"
        );
    }
}

#[tokio::test]
async fn a_resource_with_a_path_is_served_under_the_well_known_prefix() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service_at(&issuer, "/weather", DpopMode::Off).await;
    let doc = get_json(format!("{}{WELL_KNOWN}/weather", service.base)).await;
    assert_eq!(doc["resource"], json!(format!("{}/weather", service.base)));
    // Not at the bare prefix: that would be another resource's (the origin's) document.
    assert_eq!(
        get_status(format!("{}{WELL_KNOWN}", service.base)).await,
        404
    );
}

#[tokio::test]
async fn every_401_points_at_the_metadata_and_the_pointer_serves_it() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service_at(&issuer, "", DpopMode::Allowed).await;
    let pointer = format!("resource_metadata=\"{}{WELL_KNOWN}\"", service.base);
    let api = format!("{}/weatherforecast", service.base);

    // No token: a bare Bearer challenge and the DPoP one, both with the pointer.
    let response = http().get(&api).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let found = challenges(&response);
    assert_eq!(
        found,
        [
            format!("Bearer {pointer}"),
            format!(
                "DPoP algs=\"ES256 ES384 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA\", {pointer}"
            )
        ]
    );
    // A bad token: the error first, the pointer after it.
    let response = http()
        .get(&api)
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let found = challenges(&response);
    assert!(
        found[0].starts_with("Bearer error=\"invalid_token\"") && found[0].ends_with(&pointer),
        "{found:?}"
    );
    // What the pointer points at is the document of this resource.
    let url = pointer
        .strip_prefix("resource_metadata=\"")
        .and_then(|p| p.strip_suffix('"'))
        .unwrap();
    let doc = get_json(url).await;
    assert_eq!(doc["resource"], json!(service.base));
    assert_eq!(doc["authorization_servers"], json!([issuer.issuer()]));

    // Without a configured resource, challenges stay as they were.
    let plain = start_service(&issuer, cognito()).await;
    let response = http()
        .get(format!("{}/weatherforecast", plain.base))
        .send()
        .await
        .unwrap();
    assert!(
        challenges(&response)
            .iter()
            .all(|c| !c.contains("resource_metadata")),
        "{:?}",
        challenges(&response)
    );
    assert_eq!(get_status(format!("{}{WELL_KNOWN}", plain.base)).await, 404);
}

/// The BFF's client, with its token source as given.
fn bff(source: TokenSource) -> ClientDefinition {
    let mut definition =
        ClientDefinition::new(source, ClientId::new(BFF_ID), ClientSecret::new(BFF_SECRET));
    definition.scope = shared_auth::ScopeSet::parse(READ).unwrap();
    definition
}

/// The token source `resource`, trusting `trusted` with the client's secret.
fn by_resource(resource: &str, trusted: &[&str]) -> TokenSource {
    TokenSource::ProtectedResource {
        resource: resource.to_owned(),
        trusted_issuers: trusted.iter().map(|t| (*t).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_client_with_the_resource_url_and_its_trusted_issuer_gets_a_token_and_calls_the_api() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service_at(&issuer, "", DpopMode::Allowed).await;
    let client = bff(by_resource(&service.base, &[issuer.issuer()]))
        .client(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(client.token_endpoint, issuer.token_endpoint());
    let manager = TokenManager::builder().build().unwrap();
    let managed = manager.register("my-service", client).unwrap();
    let http = reqwest_middleware::ClientBuilder::new(http())
        .with(ClientCredentialsMiddleware::new(managed))
        .build();
    let response = http
        .get(format!("{}/weatherforecast", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A trusted issuer is compared as issuers are: a trailing slash aside.
    let with_slash = format!("{}/", issuer.issuer());
    let client = bff(by_resource(
        &service.base,
        &["http://127.0.0.1:9", &with_slash],
    ))
    .client(Duration::from_secs(5))
    .await
    .unwrap();
    assert_eq!(client.token_endpoint, issuer.token_endpoint());
    let e = bff(by_resource(&service.base, &["http://127.0.0.1:9"]))
        .client(Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("names none of the trusted issuers [\"http://127.0.0.1:9\"]"),
        "{e}"
    );
}

/// An authorization server that counts every request it gets and answers discovery as
/// itself (so a client that trusted it would post its credential to its token endpoint).
async fn counting_authorization_server() -> (Bound, std::sync::Arc<std::sync::atomic::AtomicUsize>)
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let (listener, base) = bind().await;
    let counted = hits.clone();
    let me = base.clone();
    let router = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let me = me.clone();
        async move {
            Json(json!({
                "issuer": me,
                "token_endpoint": format!("{me}/token"),
                "jwks_uri": format!("{me}/jwks"),
            }))
        }
    });
    (spawn(listener, base, router), hits)
}

#[tokio::test]
async fn the_secret_goes_only_to_an_issuer_the_client_trusts() {
    use std::sync::atomic::Ordering;
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let (attacker, attacker_hits) = counting_authorization_server().await;
    // Whoever serves the API's well-known path names their own server first.
    let (names_attacker, real) = (attacker.base.clone(), issuer.issuer().to_owned());
    let document = serve_document(
        WELL_KNOWN,
        move |base| json!({"resource": base, "authorization_servers": [names_attacker, real]}),
    )
    .await;

    // No issuer trusted: a secret is refused before any request is made.
    let e = bff(by_resource(&document.base, &[]))
        .client(Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(e, shared_auth::client::TokenError::Credential(_))
            && e.to_string().contains("RFC 9728 section 7"),
        "{e}"
    );
    // Trusting the real issuer: the attacker's first entry is passed over.
    let client = bff(by_resource(&document.base, &[issuer.issuer()]))
        .client(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(client.token_endpoint, issuer.token_endpoint());
    assert_eq!(attacker_hits.load(Ordering::SeqCst), 0);

    // private_key_jwt with the default audience needs no pin: the assertion names the
    // server it goes to, here the first listed, and is worthless at the real issuer.
    let key = shared_auth::client::SigningKey::generate_es256().unwrap();
    let definition = ClientDefinition::new(
        by_resource(&document.base, &[]),
        ClientId::new(BFF_ID),
        shared_auth::client::ClientCredential::private_key_jwt(key),
    );
    let client = definition.client(Duration::from_secs(5)).await.unwrap();
    assert_eq!(client.assertion_audience(), attacker.base);
}

/// A server that answers `path` with `doc` and every other path 404.
async fn serve_document(path: &str, doc: impl Fn(&str) -> Value) -> Bound {
    let (listener, base) = bind().await;
    let body = doc(&base);
    let router = axum::Router::new().route(path, get(move || async move { Json(body) }));
    spawn(listener, base, router)
}

#[tokio::test]
async fn a_document_for_another_resource_or_issuer_is_refused() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;

    // The document names another resource (RFC 9728 section 3.3).
    let elsewhere = issuer.issuer().to_owned();
    let impostor = serve_document(
        WELL_KNOWN,
        |_| json!({"resource": "http://127.0.0.1:1", "authorization_servers": [elsewhere]}),
    )
    .await;
    let e = bff(by_resource(&impostor.base, &[issuer.issuer()]))
        .client(Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("is for resource \"http://127.0.0.1:1\"")
            && e.contains(&format!("not \"{}\"", impostor.base)),
        "{e}"
    );

    // The listed authorization server's discovery document names another issuer (the
    // real one): RFC 8414 section 3.3 refuses it.
    let real = issuer.issuer().to_owned();
    let fake_as = serve_document("/.well-known/openid-configuration", move |_| {
        json!({
            "issuer": real,
            "token_endpoint": "http://127.0.0.1:1/token",
            "jwks_uri": "http://127.0.0.1:1/jwks",
        })
    })
    .await;
    let listed = fake_as.base.clone();
    let resource = serve_document(
        WELL_KNOWN,
        move |base| json!({"resource": base, "authorization_servers": [listed]}),
    )
    .await;
    // Its document asked about with a trailing slash: not identical, so refused (before
    // any authorization server is asked).
    let e = bff(by_resource(
        &format!("{}/", resource.base),
        &[&fake_as.base],
    ))
    .client(Duration::from_secs(5))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("RFC 9728 section 3.3"), "{e}");
    let e = bff(by_resource(&resource.base, &[&fake_as.base]))
        .client(Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("authorization server {}", fake_as.base))
            && e.contains(&format!("names issuer {:?}", issuer.issuer())),
        "{e}"
    );

    // No document at all: the error names the URL read.
    let nothing = serve_document("/elsewhere", |_| json!({})).await;
    let e = bff(by_resource(&nothing.base, &[issuer.issuer()]))
        .client(Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("{}{WELL_KNOWN}", nothing.base)) && e.contains("404"),
        "{e}"
    );
}

#[tokio::test]
async fn a_resource_that_never_answers_fails_within_the_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let started = tokio::time::Instant::now();
    let e = bff(by_resource(&base, &["http://127.0.0.1:9"]))
        .client(Duration::from_millis(300))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("protected resource metadata"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "{e}");
}
