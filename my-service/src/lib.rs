//! my-service: the reference resource server.
//!
//! [`router`] builds the whole app from a validator: the weather [`api`] behind
//! [`JwtAuthLayer`] with a scope per operation, and around it ([`around`]) the health
//! probes, the metrics, the OpenAPI document with Swagger UI, and with `AUTH_RESOURCE`
//! set, the OAuth 2.0 protected resource metadata (RFC 9728).
//! `main.rs` only parses the configuration, starts tracing and serves.
//!
//! To start a new service from this template, change the routes in `weather.rs`, the
//! scope constants, and the OpenAPI `info`.

pub mod caller;
pub mod config;
pub mod weather;

use axum::Router;
use axum::extract::State;
use axum::handler::Handler as _;
use axum::http::StatusCode;
use axum::routing::{get, post};
use shared_auth::server::{
    JwtAuthLayer, JwtValidator, RequireScopeLayer, StartError, TransactionTokenLayer,
};
use utoipa::OpenApi;
use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};
use utoipa_swagger_ui::SwaggerUi;

use crate::config::ServiceConfig;
use crate::weather::{READ_SCOPE, WRITE_SCOPE};

#[derive(OpenApi)]
#[openapi(
    info(title = "my-service", description = "Scope-protected weather API. Authorize with the OAuth2 client-credentials flow, then try the operations."),
    paths(weather::list, weather::create, caller::whoami),
    components(schemas(weather::WeatherForecast, weather::NewForecast, caller::Caller, caller::CallerTransaction)),
    tags((name = "weather", description = "Forecasts"), (name = "caller", description = "Who is calling, and for whom"))
)]
struct ApiDoc;

/// The OpenAPI 3.1 document, with the `oauth2` client-credentials scheme at `token_url`.
pub fn openapi(token_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let scopes = Scopes::from_iter([
        (READ_SCOPE, "Read weather forecasts"),
        (WRITE_SCOPE, "Add weather forecasts"),
    ]);
    let scheme = SecurityScheme::OAuth2(OAuth2::with_description(
        [Flow::ClientCredentials(ClientCredentials::new(
            token_url, scopes,
        ))],
        "OAuth 2.0 client credentials: enter a client id and secret of the issuer. Swagger UI \
         sends the token as a Bearer token, which the API accepts while AUTH_DPOP is `allowed` \
         (the default) or `off`. With AUTH_DPOP=`required` only DPoP-bound tokens with a \
         fresh DPoP proof per request are accepted, and Swagger UI cannot make proofs: \
         every operation tried here then answers 401. Use `allowed` locally.",
    ));
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme("oauth2", scheme);
    doc
}

/// The token URL to advertise: explicit, else discovered, else `{issuer}/oauth2/token`
/// (with lazy start, discovery may not have run yet: then the configured authority's).
pub fn token_url(config: &ServiceConfig, validator: &JwtValidator) -> String {
    let issuer =
        validator
            .issuer()
            .map(str::to_owned)
            .or_else(|| match &config.validator.metadata {
                shared_auth::server::MetadataSource::Authority(a) => Some(a.clone()),
                _ => config.validator.issuer.clone(),
            });
    config
        .openapi_token_url
        .clone()
        .or_else(|| validator.token_endpoint().map(str::to_owned))
        .unwrap_or_else(|| {
            format!(
                "{}/oauth2/token",
                issuer.as_deref().unwrap_or_default().trim_end_matches('/')
            )
        })
}

/// Builds the validator (reads metadata, loads keys) and the router.
pub async fn build(config: &ServiceConfig) -> Result<Router, StartError> {
    // First, so the validator's and the layers' counters register with it.
    service_kit::metrics::prometheus();
    shared_auth::describe_metrics();
    let validator = JwtValidator::new(config.validator.clone()).await?;
    let transactions = match &config.transaction_tokens {
        Some(txn) => Some(TransactionTokenLayer::start(txn.clone()).await?),
        None => None,
    };
    let token_url = token_url(config, &validator);
    Ok(around(
        api_with(&validator, transactions),
        validator,
        &token_url,
    ))
}

/// The app: the protected weather [`api`] and everything [`around`] it.
pub fn router(validator: JwtValidator, token_url: &str) -> Router {
    around(api(&validator), validator, token_url)
}

/// The weather API: `GET` and `POST /weatherforecast`, each authenticated by `validator`
/// and requiring its scope.
pub fn api(validator: &JwtValidator) -> Router {
    api_with(validator, None)
}

/// [`api`], and `GET /whoami`; with `transactions`, each request's `Txn-Token` header is
/// checked after its access token (a present one must pass; none is required).
pub fn api_with(validator: &JwtValidator, transactions: Option<TransactionTokenLayer>) -> Router {
    // Authentication, then the Transaction Token, then the method's scope, on each
    // handler: they run only for methods that exist, so a wrong method stays 405 (a
    // Router-level route_layer would answer 401), and each request clones one boxed
    // service, not two.
    let auth = JwtAuthLayer::new(validator.clone());
    let read = RequireScopeLayer::one(READ_SCOPE);
    let write = RequireScopeLayer::one(WRITE_SCOPE);
    let (list, create, whoami) = match transactions {
        None => (
            get(weather::list.layer((auth.clone(), read))),
            post(weather::create.layer((auth.clone(), write))),
            get(caller::whoami.layer(auth)),
        ),
        Some(txn) => (
            get(weather::list.layer((auth.clone(), txn.clone(), read))),
            post(weather::create.layer((auth.clone(), txn.clone(), write))),
            get(caller::whoami.layer((auth, txn))),
        ),
    };
    Router::new()
        .route("/weatherforecast", list.merge(create))
        .route("/whoami", whoami)
}

/// `api` with the service's plumbing: `/healthz`, `/readyz` (the validator's keys are
/// loaded), `/metrics` (Prometheus), `/api-docs/openapi.json`, `/swagger-ui/`, the
/// protected resource metadata (`/.well-known/oauth-protected-resource`, when
/// `AUTH_RESOURCE` is set; no route otherwise), request tracing.
pub fn around(api: Router, validator: JwtValidator, token_url: &str) -> Router {
    let resource_metadata = validator.resource_metadata_router();
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| service_kit::metrics::render(shared_auth::publish_metrics)),
        )
        .with_state(validator);
    Router::new()
        .merge(api)
        .merge(probes)
        .merge(resource_metadata)
        .merge(SwaggerUi::new("/swagger-ui").url("/api-docs/openapi.json", openapi(token_url)))
        .layer(service_kit::telemetry::http_layer())
}

/// Ready once the issuer's signing keys are loaded.
async fn readyz(State(validator): State<JwtValidator>) -> (StatusCode, &'static str) {
    if validator.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "signing keys not loaded")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_declares_client_credentials_and_per_operation_scopes() {
        let doc = serde_json::to_value(openapi("http://issuer/oauth2/token")).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let flow = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"];
        assert_eq!(flow["tokenUrl"], "http://issuer/oauth2/token");
        assert!(flow["scopes"][READ_SCOPE].is_string());
        let op = &doc["paths"]["/weatherforecast"];
        assert_eq!(op["get"]["security"][0]["oauth2"][0], READ_SCOPE);
        assert_eq!(op["post"]["security"][0]["oauth2"][0], WRITE_SCOPE);
        // What DPoP `required` means for a Swagger UI user is said where they look.
        let description = doc["components"]["securitySchemes"]["oauth2"]["description"]
            .as_str()
            .unwrap();
        assert!(
            description.contains("AUTH_DPOP") && description.contains("required"),
            "{description}"
        );
    }
}
