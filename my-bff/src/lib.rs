//! my-bff: the reference backend-for-frontend.
//!
//! [`build`] registers the token client for my-service ([`token_client`]), makes the
//! typed [`MyServiceClient`] on it, and the router. The BFF's own endpoints are open in
//! this template; a real BFF would authenticate its users. `main.rs` only parses the
//! configuration, starts tracing and serves.

pub mod config;
pub mod my_service_client;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use shared_auth::client::{
    ManagedClient, RedisCacheError, RedisTokenCache, TokenError, TokenManager,
};
use shared_auth::problem;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::BffConfig;
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

struct AppState {
    my_service: MyServiceClient,
    tokens: ManagedClient,
}

/// Why my-bff could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token client could not be set up (discovery from the authority, or from the
    /// protected resource's metadata, failed). The error names the URL that failed.
    #[error(
        "cannot set up the token client (AUTH_SERVER_AUTHORITY or AUTH_SERVER_PROTECTED_RESOURCE): {0} (a plain-http issuer on a test network needs AUTH_SERVER_ALLOW_INSECURE_HTTP=true)"
    )]
    Token(#[from] TokenError),
    /// The shared token cache could not be set up.
    #[error("AUTH_TOKEN_CACHE_REDIS_URL: {0}")]
    TokenCache(#[from] RedisCacheError),
    /// The token manager could not be built or the client not registered.
    #[error(
        "cannot set up the token client (AUTH_SERVER_TOKEN_ENDPOINT_URL): {0} (a plain-http issuer on a test network needs AUTH_SERVER_ALLOW_INSECURE_HTTP=true)"
    )]
    TokenManager(#[from] shared_auth::client::BuildError),
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

/// Builds the app from its configuration.
pub async fn build(config: &BffConfig) -> Result<Router, StartError> {
    // First, so the token manager's counters register with it.
    service_kit::metrics::prometheus();
    shared_auth::metrics::describe();
    let tokens = token_client(config).await?;
    let my_service = MyServiceClient::new(
        tokens.clone(),
        config.my_service_base_url.clone(),
        config.my_service_timeout,
    );
    Ok(router(my_service, tokens))
}

/// The app: `GET /weatherforecast` through `my_service`, `/healthz`, `/readyz` (a token
/// from `tokens` can be had), `/metrics` (Prometheus), `/api-docs/openapi.json`,
/// `/swagger-ui/`.
pub fn router(my_service: MyServiceClient, tokens: ManagedClient) -> Router {
    let state = Arc::new(AppState { my_service, tokens });
    Router::new()
        .route("/weatherforecast", get(weatherforecast))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| service_kit::metrics::render(shared_auth::metrics::publish)),
        )
        .with_state(state)
        .merge(SwaggerUi::new("/swagger-ui").url("/api-docs/openapi.json", openapi()))
        .layer(TraceLayer::new_for_http())
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
    match state.my_service.forecasts().await {
        Ok(forecasts) => Json(forecasts).into_response(),
        Err(error) => downstream_problem(&error),
    }
}

/// Maps a downstream failure to a problem response. The detail is safe for any caller;
/// the full error goes to the log.
fn downstream_problem(error: &MyServiceError) -> Response {
    tracing::warn!(%error, "call to my-service failed");
    let (status, detail) = match error {
        MyServiceError::TokenUnavailable(_) => (
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
    let mut response = problem(status, detail);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("5"),
        );
    }
    response.into_response()
}

/// Ready when a token for my-service can be had (cached, or fetched now).
async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match state.tokens.token().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no access token for my-service",
        ),
    }
}
