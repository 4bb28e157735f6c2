//! A small, honest OAuth 2.0 authorization server for local runs and tests.
//!
//! It serves the client credentials grant the way AWS Cognito and IdentityServer do:
//! discovery, a JWKS, and a token endpoint that authenticates clients with
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523) or a JWT from
//! a trusted platform issuer (federated client authentication, as Keycloak's for
//! Kubernetes service-account tokens and SPIFFE JWT-SVIDs), and mints RS256 (or ES256) JWT
//! access tokens in the `cognito` or `rfc9068` shape. With a DPoP proof (RFC 9449) the
//! token is bound to the proof's key (`cnf.jkt`, `token_type: DPoP`), optionally behind a
//! server nonce. For a backend-for-frontend it also logs users in: the authorization code
//! flow with PKCE (S256) through a small login page for the configured [`UserConfig`]s, ID
//! tokens, rotating refresh tokens with reuse detection, revocation and RP-initiated
//! logout. It is **not** for production: clients, users and secrets come from a file, keys
//! live in memory.
//!
//! As a library it starts on an ephemeral port and hands back an [`IssuerHandle`] with
//! counters and fault knobs, so tests can assert how many token requests a client made, or
//! make the issuer slow, failing, rotating its key or serving what a given provider serves:
//!
//! ```no_run
//! # async fn demo() -> Result<(), mock_issuer::StartError> {
//! use mock_issuer::{ClientConfig, IssuerConfig, TokenProfile};
//! let config = IssuerConfig::new(TokenProfile::Cognito)
//!     .with_resource_server("MyService", ["weather_read"])
//!     .with_client(ClientConfig::new("my-bff", "a-long-secret", ["MyService/weather_read"]));
//! let issuer = mock_issuer::start(config).await?;
//! println!("token endpoint: {}", issuer.token_endpoint());
//! issuer.fail_next_token_requests(2, 503);
//! assert_eq!(issuer.stats().token_requests, 0);
//! # Ok(()) }
//! ```

pub mod admin;
mod authorization;
mod client_auth;
pub mod config;
mod discovery;
mod dpop;
mod end_session;
mod introspection;
mod jose;
pub mod keys;
mod mtls;
mod state;
mod token_endpoint;
mod token_exchange;
mod txn_tokens;
mod user_flows;
mod user_tokens;
pub mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use admin::{AdminToken, AdminTokenError};
pub use config::{
    ASSERTION_TYPE_JWT_BEARER, ASSERTION_TYPE_JWT_SPIFFE, ClientConfig, ConfigError,
    FederatedTrust, IssuerConfig, ResourceServer, ScopeFormat, TokenProfile,
};
pub use keys::{Algorithm, KeyError};
pub use mtls::ClientCertificatePem;
pub use state::IssuerStats;
pub use users::UserConfig;

use state::IssuerState;

/// Why the issuer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The signing key could not be made or loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The HTTP client for federated key sets could not be built.
    #[error("cannot build the HTTP client for federated JWKS: {0}")]
    HttpClient(reqwest::Error),
    /// The mTLS endpoint's CA or certificates could not be made.
    #[error("cannot set up the mTLS token endpoint: {0}")]
    Tls(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A configured issuer with its keys, ready to be served.
#[derive(Clone)]
pub struct MockIssuer {
    state: Arc<IssuerState>,
}

impl MockIssuer {
    /// Validates `config` and makes (or loads) the signing key. `bound` is the address the
    /// server listens on; it gives the issuer URL when the config does not set one (with
    /// 127.0.0.1 for an unspecified address such as 0.0.0.0).
    pub fn new(config: IssuerConfig, bound: SocketAddr) -> Result<Self, StartError> {
        config.validate()?;
        // Bound to every interface (0.0.0.0, as in a container), the address is no URL a
        // client can use: loopback with the same port is.
        let mut reachable = bound;
        if reachable.ip().is_unspecified() {
            reachable.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let issuer = config.issuer.clone().unwrap_or_else(|| {
            format!(
                "http://{reachable}{}",
                config.path_prefix.as_deref().unwrap_or("")
            )
        });
        Ok(MockIssuer {
            state: Arc::new(IssuerState::new(config, issuer)?),
        })
    }

    /// The `iss` value, also the base URL of every endpoint.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// With `mtls`, serves `app` (the issuer's router) over mutual TLS (RFC 8705) on an
    /// ephemeral port of `bound`'s address, beside the plain listener: the task serving
    /// it, `None` without `mtls`. The endpoint is then in discovery
    /// (`mtls_endpoint_aliases`) and [`Self::mtls_token_endpoint`].
    pub async fn serve_mtls(
        &self,
        bound: SocketAddr,
        app: Router,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, StartError> {
        let Some(mtls) = self.state.mtls.clone() else {
            return Ok(None);
        };
        let listener = mtls::bind(bound).await?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: bound,
                source,
            })?
            .port();
        let _ = mtls.base.set(format!("https://127.0.0.1:{port}"));
        Ok(Some(tokio::spawn(async move {
            mtls.serve(listener, app).await
        })))
    }

    /// The mTLS token endpoint once served ([`Self::serve_mtls`]):
    /// `https://127.0.0.1:{port}/oauth2/token`.
    pub fn mtls_token_endpoint(&self) -> Option<String> {
        let base = self.state.mtls.as_ref()?.base.get()?.clone();
        Some(format!("{base}/oauth2/token"))
    }

    /// The local CA (PEM) the mTLS endpoint's certificate is signed by, and every client
    /// certificate this issuer issues.
    pub fn mtls_ca_pem(&self) -> Option<String> {
        Some(self.state.mtls.as_ref()?.ca_pem())
    }

    /// A new client certificate for `client_id`, signed by the local CA and registered
    /// for that client: presented at the mTLS endpoint, it authenticates the client
    /// (`tls_client_auth`) and binds its tokens (`cnf.x5t#S256`). `None` without `mtls`.
    pub fn issue_client_certificate(&self, client_id: &str) -> Option<ClientCertificatePem> {
        self.state.mtls.as_ref()?.issue(client_id).ok()
    }

    /// Registers a certificate the client made itself (DER; `self_signed_tls_client_auth`,
    /// RFC 8705 section 2.2) for `client_id`: presented at the mTLS endpoint, it
    /// authenticates the client and binds its tokens, as an issued one does. `false`
    /// without `mtls`.
    pub fn register_client_certificate(&self, client_id: &str, certificate_der: &[u8]) -> bool {
        match self.state.mtls.as_ref() {
            Some(mtls) => {
                mtls.register(client_id, certificate_der);
                true
            }
            None => false,
        }
    }

    /// The router: discovery, JWKS, token endpoint (and its `/connect/token` alias),
    /// `/introspect`, `/revoke`, `/authorize` (login page), `/end_session`, `/healthz`, and with an admin token the `/admin/*` endpoints, which answer only
    /// requests addressed to a loopback host that carry `Authorization: Bearer <token>`
    /// (see [`admin`]).
    pub fn router(&self, admin: Option<AdminToken>) -> Router {
        let prefix = self.state.config.path_prefix.as_deref().unwrap_or("");
        let mut app = Router::new()
            .route(
                &format!("{prefix}/.well-known/openid-configuration"),
                get(discovery::openid_configuration),
            )
            .route(
                &format!("{prefix}/.well-known/jwks.json"),
                get(discovery::jwks),
            )
            .route("/oauth2/token", post(token_endpoint::token))
            .route("/connect/token", post(token_endpoint::token))
            .route("/introspect", post(introspection::introspect))
            .route("/revoke", post(introspection::revoke_endpoint))
            .route(
                "/authorize",
                get(authorization::authorize).post(authorization::login),
            )
            .route(
                "/end_session",
                get(end_session::end_session_get).post(end_session::end_session_post),
            )
            .layer(DefaultBodyLimit::max(64 * 1024));
        let origins: Vec<HeaderValue> = self
            .state
            .config
            .cors_allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        if !origins.is_empty() {
            // Swagger UI's "Authorize" posts to the token endpoint from the browser, with
            // Accept and X-Requested-With besides the credentials. Only the configured
            // origins may, and never with cookies.
            app = app.layer(
                CorsLayer::new()
                    .allow_origin(AllowOrigin::list(origins))
                    .allow_methods([Method::GET, Method::POST])
                    .allow_headers([
                        header::AUTHORIZATION,
                        header::CONTENT_TYPE,
                        header::ACCEPT,
                        header::HeaderName::from_static("x-requested-with"),
                        header::HeaderName::from_static("dpop"),
                    ])
                    // A browser client must be able to read the nonce (RFC 9449 section 8).
                    .expose_headers([header::HeaderName::from_static("dpop-nonce")])
                    .max_age(Duration::from_secs(600)),
            );
        }
        app = app.route("/healthz", get(|| async { "ok" }));
        // Added after the CORS layer on purpose: `Router::layer` wraps only the routes that
        // exist when it is called, so no origin, configured or not, gets a preflight approved
        // for the admin endpoints, and a browser page cannot send them the admin token.
        if let Some(token) = admin {
            app = app.merge(admin::routes(token));
        }
        app.layer(service_kit::telemetry::http_layer())
            .with_state(self.state.clone())
    }
}

/// Starts an issuer on `127.0.0.1:0` (an ephemeral port) in the background.
pub async fn start(config: IssuerConfig) -> Result<IssuerHandle, StartError> {
    start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Starts an issuer on `addr` in the background (without the admin endpoints: the handle
/// has the same knobs).
pub async fn start_on(config: IssuerConfig, addr: SocketAddr) -> Result<IssuerHandle, StartError> {
    serve(config, addr, None).await
}

/// Starts an issuer on `127.0.0.1:0` with the `/admin/*` endpoints, guarded by `token` as
/// the binary's `--admin` guards them (tests of the admin endpoints themselves).
pub async fn start_with_admin(
    config: IssuerConfig,
    token: AdminToken,
) -> Result<IssuerHandle, StartError> {
    serve(config, SocketAddr::from(([127, 0, 0, 1], 0)), Some(token)).await
}

async fn serve(
    config: IssuerConfig,
    addr: SocketAddr,
    admin: Option<AdminToken>,
) -> Result<IssuerHandle, StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let issuer = MockIssuer::new(config, bound)?;
    let app = issuer.router(admin);
    let mtls_task = issuer.serve_mtls(bound, app.clone()).await?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "mock issuer stopped with an error");
        }
    });
    Ok(IssuerHandle {
        issuer,
        addr: bound,
        shutdown: Some(tx),
        task: Some(task),
        mtls_task,
    })
}

/// A running issuer. Dropping it shuts the server down.
pub struct IssuerHandle {
    issuer: MockIssuer,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The mTLS endpoint's server, when there is one (aborted with the handle).
    mtls_task: Option<tokio::task::JoinHandle<()>>,
}

impl IssuerHandle {
    fn state(&self) -> &IssuerState {
        &self.issuer.state
    }

    /// The socket address the issuer listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The mTLS token endpoint (`mtls = true`): `https://127.0.0.1:{port}/oauth2/token`.
    pub fn mtls_token_endpoint(&self) -> Option<String> {
        self.issuer.mtls_token_endpoint()
    }

    /// See [`MockIssuer::mtls_ca_pem`].
    pub fn mtls_ca_pem(&self) -> Option<String> {
        self.issuer.mtls_ca_pem()
    }

    /// See [`MockIssuer::issue_client_certificate`].
    pub fn issue_client_certificate(&self, client_id: &str) -> Option<ClientCertificatePem> {
        self.issuer.issue_client_certificate(client_id)
    }

    /// See [`MockIssuer::register_client_certificate`].
    pub fn register_client_certificate(&self, client_id: &str, certificate_der: &[u8]) -> bool {
        self.issuer
            .register_client_certificate(client_id, certificate_der)
    }

    /// The issuer URL (`iss`), also the base of every endpoint.
    pub fn issuer(&self) -> &str {
        self.issuer.issuer()
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// `{issuer}/oauth2/token` (without the path prefix, if one is set).
    pub fn token_endpoint(&self) -> String {
        self.state().token_endpoint()
    }

    /// `{issuer}/.well-known/jwks.json`.
    pub fn jwks_uri(&self) -> String {
        self.state().jwks_uri()
    }

    /// `{issuer}/introspect` (RFC 7662; without the path prefix, like the token endpoint).
    pub fn introspection_endpoint(&self) -> String {
        self.state().introspection_endpoint()
    }

    /// `{issuer}/revoke` (RFC 7009; without the path prefix).
    pub fn revocation_endpoint(&self) -> String {
        self.state().revocation_endpoint()
    }

    /// Issues an opaque access token for `client_id` with `scopes`, valid for the current
    /// token lifetime (see [`Self::set_token_lifetime`]), whatever the client's
    /// configuration says. `jkt`: the DPoP key thumbprint it is bound to (`cnf.jkt`).
    pub fn issue_opaque_token(
        &self,
        client_id: &str,
        scopes: &[&str],
        jkt: Option<&str>,
    ) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        introspection::issue_opaque(
            self.state(),
            client_id,
            &scopes,
            state::unix_now(),
            self.state().token_lifetime(),
            jkt.map(str::to_owned),
        )
    }

    /// Revokes a token the issuer issued (opaque or JWT): from now on `/introspect`
    /// answers `{"active":false}` for it. (JWTs are still accepted by a validator that
    /// checks them locally; only introspection sees a revocation.)
    pub fn revoke(&self, token: &str) {
        introspection::revoke(self.state(), token);
    }

    /// Delays every `/introspect` response by `delay` (the request is counted, and in
    /// progress, from its arrival).
    pub fn set_introspection_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state()
            .faults
            .introspection_delay_ms
            .store(ms, Ordering::SeqCst);
    }

    /// Answers the next `n` introspection requests with `status` (an RFC 6749 error body).
    pub fn fail_next_introspection_requests(&self, n: u32, status: u16) {
        let faults = &self.state().faults;
        faults
            .introspection_fail_status
            .store(u32::from(status), Ordering::SeqCst);
        faults.fail_next_introspection.store(n, Ordering::SeqCst);
    }

    /// Takes `/introspect` down (every request answered 503, still counted) or brings it
    /// back.
    pub fn set_introspection_available(&self, available: bool) {
        self.state()
            .faults
            .introspection_available
            .store(available, Ordering::SeqCst);
    }

    /// With `true`, RFC 9701 JWT introspection responses are signed with a fresh key that
    /// is never published, under the current key's `kid`: a resource server must refuse
    /// them. `false` signs with the current key again.
    pub fn sign_introspection_with_foreign_key(&self, foreign: bool) -> Result<(), KeyError> {
        let key = if foreign {
            let current = self.state().current_key();
            Some(Arc::new(
                keys::SigningKey::generate(current.alg())?.with_kid(current.kid().to_owned()),
            ))
        } else {
            None
        };
        *self
            .state()
            .faults
            .introspection_foreign_key
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    /// The counters so far.
    pub fn stats(&self) -> IssuerStats {
        self.state().stats()
    }

    /// The `kid` of the key that signs new tokens.
    pub fn current_kid(&self) -> String {
        self.state().current_key().kid().to_owned()
    }

    /// Makes a new key current; the previous one stays published until its tokens
    /// expire. Returns the new `kid`.
    pub fn rotate_key(&self) -> Result<String, KeyError> {
        self.state().rotate_key()
    }

    /// Replaces the current key with freshly generated material of the same algorithm
    /// that keeps the current `kid`: from now on the JWKS publishes the new material under
    /// the old `kid` (the old material is no longer published) and new tokens are signed
    /// with it. Tokens signed before no longer verify against the JWKS. Retired keys are
    /// left as they are. This is what a provider that reuses a `kid` looks like to a
    /// validator that caches keys by `kid`.
    pub fn replace_current_key_material(&self) -> Result<(), KeyError> {
        self.state().replace_current_key_material()
    }

    /// Stops publishing all retired keys now.
    pub fn drop_previous_keys(&self) {
        self.state().drop_previous_keys();
    }

    /// Lifetime of tokens issued from now on (whole seconds, at least 1).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state()
            .token_lifetime_secs
            .store(lifetime.as_secs().max(1), Ordering::SeqCst);
    }

    /// Delays every token endpoint response by `delay`.
    pub fn set_token_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state()
            .faults
            .token_delay_ms
            .store(ms, Ordering::SeqCst);
    }

    /// Delays every JWKS response by `delay`.
    pub fn set_jwks_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state()
            .faults
            .jwks_delay_ms
            .store(ms, Ordering::SeqCst);
    }

    /// Answers the next `n` token requests with `status` (an RFC 6749 error body:
    /// `temporarily_unavailable` for 503, `server_error` for other 5xx).
    pub fn fail_next_token_requests(&self, n: u32, status: u16) {
        let faults = &self.state().faults;
        faults
            .fail_status
            .store(u32::from(status), Ordering::SeqCst);
        faults.fail_next_token.store(n, Ordering::SeqCst);
    }

    /// Takes the JWKS endpoint down or brings it back. While down it answers every request
    /// with 503 and no key set (after the [`Self::set_jwks_delay`] delay, if any); those
    /// requests still count in [`IssuerStats::jwks_fetches`]. To serve no JWKS for a while,
    /// call it with `false`, then with `true`.
    pub fn set_jwks_available(&self, available: bool) {
        self.state()
            .faults
            .jwks_available
            .store(available, Ordering::SeqCst);
    }

    /// Whether each JWK in the JWKS carries its `alg` member (default `true`). With
    /// `false` the JWKS omits `alg` from every key, as Microsoft Entra ID's does, so a
    /// validator must take the algorithm from elsewhere (its configuration, `kty`/`crv`);
    /// the keys and tokens are otherwise unchanged.
    pub fn set_publish_alg(&self, publish: bool) {
        self.state()
            .faults
            .publish_alg
            .store(publish, Ordering::SeqCst);
    }

    /// Takes the discovery document down or brings it back. While down it answers every
    /// request with 503; those requests still count in [`IssuerStats::discovery_fetches`].
    /// The JWKS and token endpoints are not affected.
    pub fn set_discovery_available(&self, available: bool) {
        self.state()
            .faults
            .discovery_available
            .store(available, Ordering::SeqCst);
    }

    /// The header and claims the issuer would put in a token for `client_id` with
    /// `scopes` now, signed by the current key. Tests change them and call [`Self::sign`].
    pub fn token_template(&self, client_id: &str, scopes: &[&str]) -> (Value, Value) {
        let key = self.state().current_key();
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        token_endpoint::token_contents(
            self.state(),
            key.kid(),
            key.alg().as_str(),
            client_id,
            &scopes,
            state::unix_now(),
            self.state().token_lifetime(),
        )
    }

    /// The current signing key (its public parts, and signing for crafted tokens).
    pub fn current_key(&self) -> Arc<keys::SigningKey> {
        self.state().current_key()
    }

    /// Signs a header and claims with the current key (the header is used as given).
    pub fn sign(&self, header: &Value, claims: &Value) -> Result<String, KeyError> {
        self.state().current_key().sign_json(header, claims)
    }

    /// Test hook for "a key is used with exactly one algorithm" (RFC 8725 section 3.1):
    /// signs with the current key's material under `alg` (an RSA key: RS256..RS512,
    /// PS256..PS512) while the JWKS keeps publishing the key with its own `alg`. The header
    /// is used as given, so set its `alg` to say what was signed.
    pub fn sign_with_alg(
        &self,
        alg: jsonwebtoken::Algorithm,
        header: &Value,
        claims: &Value,
    ) -> Result<String, KeyError> {
        self.state().current_key().sign_json_as(alg, header, claims)
    }

    /// Signs `claims` with the current key under the header `{alg, kid, typ: "JWT"}`. With
    /// this issuer as a "platform" (Kubernetes, SPIFFE), it mints the JWTs a federated
    /// client presents to another issuer; its [`Self::jwks_uri`] serves the keys.
    pub fn sign_claims(&self, claims: &Value) -> Result<String, KeyError> {
        let key = self.state().current_key();
        let header = serde_json::json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": "JWT"});
        key.sign_json(&header, claims)
    }

    /// Whether every DPoP proof must carry the current server nonce (RFC 9449 section 8).
    /// While on, a proof without it is answered `400 use_dpop_nonce`, and every token
    /// endpoint answer carries the nonce in a `DPoP-Nonce` header.
    pub fn require_dpop_nonce(&self, required: bool) {
        self.state().dpop_nonce.set_required(required);
    }

    /// The current DPoP nonce (whether or not nonces are required).
    pub fn dpop_nonce(&self) -> String {
        self.state().dpop_nonce.current()
    }

    /// Replaces the DPoP nonce and returns the new one. Only the current nonce is accepted,
    /// so proofs made with the previous one are answered `use_dpop_nonce` from now on.
    pub fn rotate_dpop_nonce(&self) -> String {
        self.state().dpop_nonce.rotate()
    }

    /// Signs raw header and payload bytes with the current key (for malformed tokens).
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> Result<String, KeyError> {
        self.state().current_key().sign_raw(header, payload)
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for IssuerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mtls) = self.mtls_task.take() {
            mtls.abort();
        }
    }
}
