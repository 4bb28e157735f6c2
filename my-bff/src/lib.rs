//! my-bff: the reference backend-for-frontend.
//!
//! [`build`] registers the token client for my-service ([`token_client`]), makes the
//! typed [`MyServiceClient`] on it, and the router. When the issuer is found through
//! my-service's protected resource metadata, that happens in the background with backoff
//! (my-service may start after the BFF): until then `/readyz` says not ready and the
//! routes answer 503. The BFF's own endpoints are open in
//! this template; a real BFF would authenticate its users. `main.rs` only parses the
//! configuration, starts tracing and serves.

pub mod config;
pub mod my_service_client;
mod user;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use shared_auth::client::{
    BuildError, ManagedClient, RedisCacheError, RedisTokenCache, TokenError, TokenManager,
};
use shared_auth::problem;
use shared_auth::{EnvPrefix as _, UrlError};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{BffConfig, MyBffEnv, TokenSource};
use crate::my_service_client::{MyServiceClient, MyServiceError, WeatherForecast};

/// The name the my-service token client is registered under (its metrics label).
pub const MY_SERVICE_CLIENT: &str = "my-service";

#[derive(OpenApi)]
#[openapi(
    info(title = "my-bff", description = "Backend-for-frontend: calls my-service with a managed client-credentials token."),
    paths(weatherforecast),
    components(schemas(WeatherForecast)),
    tags((name = "weather", description = "Forecasts from my-service"))
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// What the routes call my-service with, once the token client exists.
struct Calls {
    my_service: MyServiceClient,
    tokens: ManagedClient,
}

struct AppState {
    /// Set once the token client exists: at start, or when background discovery succeeds.
    calls: std::sync::OnceLock<Calls>,
}

/// Why my-bff could not start. The messages name the settings by [`MyBffEnv`]'s
/// variables, and offer the plain-http opt-in only when plain http was what was refused.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token client could not be set up (discovery from the authority, or from the
    /// protected resource's metadata, failed). The error names the URL that failed.
    #[error(
        "cannot set up the token client ({authority} or {resource}): {0}{hint}",
        authority = issuer_variable("authority"),
        resource = issuer_variable("protected_resource"),
        hint = insecure_hint(refused_plain_http(.0))
    )]
    Token(#[from] TokenError),
    /// The shared token cache could not be set up.
    #[error("{prefix}REDIS_URL: {0}", prefix = MyBffEnv::TOKEN_CACHE_PREFIX)]
    TokenCache(#[from] RedisCacheError),
    /// The token manager could not be built or the client not registered.
    #[error(
        "cannot set up the token client ({endpoint}): {0}{hint}",
        endpoint = issuer_variable("token_endpoint_url"),
        hint = insecure_hint(matches!(.0, BuildError::TokenEndpoint { source: UrlError::Insecure { .. }, .. }))
    )]
    TokenManager(#[from] BuildError),
    /// User login could not be set up (the login issuer's discovery failed).
    #[error("cannot set up user login (BFF_LOGIN_AUTHORITY or {authority}): {0}", authority = issuer_variable("authority"))]
    Login(#[from] shared_auth::client::LoginError),
}

/// An issuer setting's variable (`AUTH_SERVER_AUTHORITY`).
fn issuer_variable(field: &str) -> String {
    format!("{}{}", MyBffEnv::ISSUER_PREFIX, field.to_ascii_uppercase())
}

/// The opt-in, offered when plain http was refused.
fn insecure_hint(refused: bool) -> String {
    if refused {
        format!(
            " (a plain-http issuer on a test network needs {}=true)",
            issuer_variable("allow_insecure_http")
        )
    } else {
        String::new()
    }
}

/// Whether discovery stopped at the transport policy: shared-auth reports that as the
/// text of its `UrlError::Insecure`, which is compared here rather than copied.
fn refused_plain_http(error: &TokenError) -> bool {
    let insecure = UrlError::Insecure { url: String::new() }.to_string();
    let refusal = insecure.trim_start_matches(": ");
    matches!(error, TokenError::Discovery(reason) if reason.contains(refusal))
}

/// The token client for my-service, registered with a new token manager (discovers the
/// token endpoint if an authority is set; shares tokens through Redis if a token cache is
/// configured).
pub async fn token_client(config: &BffConfig) -> Result<ManagedClient, StartError> {
    let timeout = std::time::Duration::from_secs(10);
    let client = config.client.client(timeout).await?;
    let mut builder =
        TokenManager::builder().allow_insecure_http(config.client.allow_insecure_http);
    if let Some(cache) = &config.token_cache {
        builder = builder.redis_cache(RedisTokenCache::new(cache.clone())?);
    }
    Ok(builder.build()?.register(MY_SERVICE_CLIENT, client)?)
}

/// Builds the app from its configuration. With the token source
/// [`TokenSource::ProtectedResource`], the token client is set up in the background
/// (`discover_in_background`); otherwise now, and a failure stops the start.
pub async fn build(config: &BffConfig) -> Result<Router, StartError> {
    // First, so the token manager's counters register with it.
    service_kit::metrics::prometheus();
    shared_auth::describe_metrics();
    let state = Arc::new(AppState {
        calls: std::sync::OnceLock::new(),
    });
    if matches!(
        config.client.token_source,
        TokenSource::ProtectedResource { .. }
    ) {
        tokio::spawn(discover_in_background(config.clone(), state.clone()));
    } else {
        let tokens = token_client(config).await?;
        let _ = state.calls.set(calls(config, tokens));
    }
    let app = routes(state.clone());
    let Some(login) = &config.login else {
        return Ok(app);
    };
    let users = Arc::new(user::Users {
        ready: std::sync::OnceLock::new(),
        secure_cookies: login.secure_cookies,
        edge: login.trust_domain.clone().map(|trust_domain| user::Edge {
            trust_domain,
            app: state.clone(),
        }),
    });
    // The login issuer may start after the BFF: found in the background, with backoff;
    // until then the user routes answer 503.
    tokio::spawn(discover_login(
        login.clone(),
        users.clone(),
        (
            config.my_service_base_url.clone(),
            config.my_service_timeout,
        ),
    ));
    Ok(app.merge(user::routes(users)))
}

/// Finds the login issuer (discovery, keys), retrying with backoff (0.5 s doubling to
/// 30 s, jittered) while it cannot be read; each failure is logged with the wait.
async fn discover_login(
    login: config::LoginConfig,
    users: Arc<user::Users>,
    (my_service_url, my_service_timeout): (String, std::time::Duration),
) {
    use backon::{ExponentialBuilder, Retryable as _};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(500))
        .with_max_delay(std::time::Duration::from_secs(30))
        .with_jitter()
        .without_max_times();
    let found = (|| {
        shared_auth::client::UserSessions::discover(login.user.clone(), login.sessions.clone())
    })
    .retry(backoff)
    .notify(|error, wait| {
        tracing::warn!(%error, retry_in = ?wait, "the login issuer is not found yet; user login answers 503");
    })
    .await;
    if let Ok(sessions) = found {
        let my_service =
            MyServiceClient::for_users(sessions.clone(), my_service_url, my_service_timeout);
        let _ = users.ready.set(user::Ready {
            sessions,
            my_service,
        });
        tracing::info!("user login is ready");
    }
}

fn calls(config: &BffConfig, tokens: ManagedClient) -> Calls {
    let my_service = MyServiceClient::new(
        tokens.clone(),
        config.my_service_base_url.clone(),
        config.my_service_timeout,
    );
    Calls { my_service, tokens }
}

/// Sets up the token client, retrying with backoff (0.5 s doubling to 30 s, jittered)
/// while my-service's metadata or the issuer cannot be read: a BFF started before
/// my-service waits for it instead of exiting. Each failure is logged with the wait; an
/// error retrying cannot fix (the credential, the cache, the token endpoint refused by
/// the transport policy) is logged once as an error, and the BFF stays not ready.
async fn discover_in_background(config: BffConfig, state: Arc<AppState>) {
    use backon::{ExponentialBuilder, Retryable as _};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(500))
        .with_max_delay(std::time::Duration::from_secs(30))
        .with_jitter()
        .without_max_times();
    let result = (|| token_client(&config))
        .retry(backoff)
        .when(|e| {
            matches!(
                e,
                StartError::Token(TokenError::Discovery(_) | TokenError::Transport(_))
            )
        })
        .notify(|error, wait| {
            tracing::warn!(%error, retry_in = ?wait, "the issuer is not found yet; not ready");
        })
        .await;
    match result {
        Ok(tokens) => {
            let _ = state.calls.set(calls(&config, tokens));
            tracing::info!("the issuer is found through my-service's metadata; ready");
        }
        Err(error) => tracing::error!(%error, "the token client cannot be set up; not ready"),
    }
}

/// The app: `GET /weatherforecast` through `my_service`, `/healthz`, `/readyz` (a token
/// from `tokens` can be had), `/metrics` (Prometheus), `/api-docs/openapi.json`,
/// `/swagger-ui/`.
pub fn router(my_service: MyServiceClient, tokens: ManagedClient) -> Router {
    let state = AppState {
        calls: std::sync::OnceLock::from(Calls { my_service, tokens }),
    };
    routes(Arc::new(state))
}

fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/weatherforecast", get(weatherforecast))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| service_kit::metrics::render(shared_auth::publish_metrics)),
        )
        .with_state(state)
        .merge(SwaggerUi::new("/swagger-ui").url("/api-docs/openapi.json", openapi()))
        .layer(service_kit::telemetry::http_layer())
}

/// Forecasts from my-service.
#[utoipa::path(
    get,
    path = "/weatherforecast",
    tag = "weather",
    responses(
        (status = 200, description = "Five forecasts from my-service", body = [WeatherForecast]),
        (status = 502, description = "my-service refused our token, failed, or answered unexpectedly", content_type = "application/problem+json"),
        (status = 503, description = "No access token could be obtained from the issuer", content_type = "application/problem+json"),
        (status = 504, description = "my-service did not answer in time", content_type = "application/problem+json"),
    )
)]
async fn weatherforecast(State(state): State<Arc<AppState>>) -> Response {
    let Some(calls) = state.calls.get() else {
        return unavailable("my-bff has not found its issuer yet; try again shortly.");
    };
    match calls.my_service.forecasts().await {
        Ok(forecasts) => Json(forecasts).into_response(),
        Err(error) => downstream_problem(&error),
    }
}

/// Maps a downstream failure to a problem response. The detail is safe for any caller;
/// the full error goes to the log.
pub(crate) fn downstream_problem(error: &MyServiceError) -> Response {
    tracing::warn!(%error, "call to my-service failed");
    let (status, detail) = match error {
        MyServiceError::TokenUnavailable(_) | MyServiceError::UserToken(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Could not obtain an access token for my-service; try again shortly.",
        ),
        MyServiceError::Unauthorized | MyServiceError::Forbidden => (
            StatusCode::BAD_GATEWAY,
            "my-service refused this service's credentials.",
        ),
        MyServiceError::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "my-service did not answer in time.",
        ),
        MyServiceError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "my-service is unavailable."),
        MyServiceError::BadResponse(_) => {
            (StatusCode::BAD_GATEWAY, "my-service answered unexpectedly.")
        }
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return unavailable(detail);
    }
    problem(status, detail).into_response()
}

/// 503 with a problem body and `Retry-After: 5`.
pub(crate) fn unavailable(detail: &str) -> Response {
    let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, detail);
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("5"),
    );
    response.into_response()
}

/// Ready when the issuer is known and a token for my-service can be had (cached, or
/// fetched now).
async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    let Some(calls) = state.calls.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "issuer not found yet");
    };
    match calls.tokens.token().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no access token for my-service",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insecure_http_hint_only_when_plain_http_was_refused() {
        let refused = StartError::TokenManager(BuildError::TokenEndpoint {
            client: "my-service".into(),
            source: UrlError::Insecure {
                url: "http://issuer.example/token".into(),
            },
        })
        .to_string();
        assert!(
            refused.contains("AUTH_SERVER_TOKEN_ENDPOINT_URL")
                && refused.contains("AUTH_SERVER_ALLOW_INSECURE_HTTP=true"),
            "{refused}"
        );
        let discovery =
            |reason: String| StartError::Token(TokenError::Discovery(reason)).to_string();
        let insecure = UrlError::Insecure {
            url: "http://issuer.example".into(),
        };
        let e = discovery(insecure.to_string());
        assert!(e.contains("AUTH_SERVER_ALLOW_INSECURE_HTTP=true"), "{e}");
        let e = discovery("connection refused".into());
        assert!(
            e.contains("AUTH_SERVER_AUTHORITY") && !e.contains("ALLOW_INSECURE_HTTP"),
            "{e}"
        );
        let e = StartError::Token(TokenError::Http { status: 500 }).to_string();
        assert!(!e.contains("ALLOW_INSECURE_HTTP"), "{e}");
    }
}
