//! [`MyServiceClient`]: the typed client for my-service (the seed articles use Refit).
//!
//! One async method per endpoint, typed request and response structs, and errors that say
//! which side failed: no token could be had, my-service refused our token, my-service was
//! unavailable or slow, or it answered something we cannot read. Requests go through the
//! token middleware, so each carries a managed bearer token.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest_middleware::ClientWithMiddleware;
use serde::{Deserialize, Serialize};
use shared_auth::TransactionToken;
use shared_auth::client::{
    ClientCredentialsMiddleware, ManagedClient, TokenError, TransactionTokenMiddleware,
    UserSession, UserSessions, UserTokenError, UserTokenMiddleware,
};
use utoipa::ToSchema;

/// One day's forecast, as my-service returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeatherForecast {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// Degrees Celsius.
    pub temperature_c: i32,
    /// Degrees Fahrenheit.
    pub temperature_f: i32,
    /// A word for it.
    pub summary: String,
}

/// A forecast to add.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewForecast {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// Degrees Celsius.
    pub temperature_c: i32,
    /// A word for it.
    pub summary: String,
}

/// Why a call to my-service failed.
#[derive(Debug, thiserror::Error)]
pub enum MyServiceError {
    /// No access token could be obtained; the request was not sent.
    #[error("no access token for my-service: {0}")]
    TokenUnavailable(TokenError),
    /// No user access token could be had for a call on a user's behalf (no session, the
    /// session ended, or its renewal failed for now); the request was not sent.
    #[error("no user access token for my-service: {0}")]
    UserToken(UserTokenError),
    /// my-service answered 401 (after one renewal and retry).
    #[error("my-service rejected the access token (401)")]
    Unauthorized,
    /// my-service answered 403: the token lacks a scope, or the call's Transaction Token
    /// was refused.
    #[error("my-service refused the call (403)")]
    Forbidden,
    /// my-service did not answer in time.
    #[error("my-service did not answer in time")]
    Timeout,
    /// my-service could not be reached or answered 5xx.
    #[error("my-service is unavailable: {0}")]
    Unavailable(String),
    /// my-service answered something unexpected.
    #[error("my-service answered unexpectedly: {0}")]
    BadResponse(String),
}

/// Whose call a request is.
enum Behalf<'a> {
    /// The BFF's own (its client-credentials token).
    Own,
    /// A user's, with the session's access token.
    User(&'a str),
    /// A user's at the edge: the BFF's token and the user's Transaction Token.
    Transaction(&'a TransactionToken),
}

/// The typed my-service client.
#[derive(Clone, Debug)]
pub struct MyServiceClient {
    http: ClientWithMiddleware,
    base_url: String,
}

impl MyServiceClient {
    /// A client for `base_url` whose requests carry the tokens of `tokens`, each request
    /// bounded by `timeout`; a call made in a transaction
    /// ([`forecasts_in`](Self::forecasts_in)) carries its Transaction Token too (my-service
    /// is inside the trust domain).
    pub fn new(tokens: ManagedClient, base_url: impl Into<String>, timeout: Duration) -> Self {
        let http = reqwest_middleware::ClientBuilder::new(http_client(timeout))
            .with(ClientCredentialsMiddleware::new(tokens))
            .with(TransactionTokenMiddleware);
        let http = service_kit::telemetry::traced(http).build();
        Self::with_http(http, base_url)
    }

    /// A client for `base_url` for calls on users' behalf
    /// ([`forecasts_for`](Self::forecasts_for)): each request carries the access token of
    /// the user's session in `sessions`, and nothing of the browser's request (its cookies
    /// stay at the BFF).
    pub fn for_users(
        sessions: UserSessions,
        base_url: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        let http = reqwest_middleware::ClientBuilder::new(http_client(timeout))
            .with(UserTokenMiddleware::new(sessions));
        let http = service_kit::telemetry::traced(http).build();
        Self::with_http(http, base_url)
    }

    /// A client for `base_url` that sends its requests through `http` as it is (its own
    /// middleware stack).
    pub fn with_http(http: ClientWithMiddleware, base_url: impl Into<String>) -> Self {
        MyServiceClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    /// `GET {path}`, as `on` says, expecting 200 with a JSON `T`.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        on: Behalf<'_>,
    ) -> Result<T, MyServiceError> {
        let request = self.http.get(format!("{}{path}", self.base_url));
        let request = match on {
            Behalf::Own => request,
            Behalf::User(session_id) => request.with_extension(UserSession::new(session_id)),
            Behalf::Transaction(txn) => request.with_extension(txn.clone()),
        };
        read(request.send().await, StatusCode::OK).await
    }

    /// `GET /weatherforecast`.
    pub async fn forecasts(&self) -> Result<Vec<WeatherForecast>, MyServiceError> {
        self.get("/weatherforecast", Behalf::Own).await
    }

    /// `GET /weatherforecast` on behalf of the user of `session_id` (a client made with
    /// [`for_users`](Self::for_users)).
    pub async fn forecasts_for(
        &self,
        session_id: &str,
    ) -> Result<Vec<WeatherForecast>, MyServiceError> {
        self.get("/weatherforecast", Behalf::User(session_id)).await
    }

    /// `GET /weatherforecast` in the transaction of `txn` (a user's, at the edge): this
    /// client's own token, and the Transaction Token beside it (a client made with
    /// [`new`](Self::new)).
    pub async fn forecasts_in(
        &self,
        txn: &TransactionToken,
    ) -> Result<Vec<WeatherForecast>, MyServiceError> {
        self.get("/weatherforecast", Behalf::Transaction(txn)).await
    }

    /// `GET /whoami`: the caller as my-service sees it, on behalf of the user of
    /// `session_id` ([`for_users`](Self::for_users)).
    pub async fn whoami_for(&self, session_id: &str) -> Result<serde_json::Value, MyServiceError> {
        self.get("/whoami", Behalf::User(session_id)).await
    }

    /// `GET /whoami` in the transaction of `txn` (see [`forecasts_in`](Self::forecasts_in)).
    pub async fn whoami_in(
        &self,
        txn: &TransactionToken,
    ) -> Result<serde_json::Value, MyServiceError> {
        self.get("/whoami", Behalf::Transaction(txn)).await
    }

    /// `POST /weatherforecast`.
    pub async fn add_forecast(
        &self,
        forecast: &NewForecast,
    ) -> Result<WeatherForecast, MyServiceError> {
        let response = self
            .http
            .post(format!("{}/weatherforecast", self.base_url))
            .json(forecast)
            .send()
            .await;
        read(response, StatusCode::CREATED).await
    }
}

/// The HTTP client under the middleware: every request bounded by `timeout`, and no
/// redirect followed (reqwest would carry the `Txn-Token` header, which it does not know
/// for a credential, to whatever host a redirect names; my-service never redirects).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .build()
        .unwrap_or_default()
}

async fn read<T: serde::de::DeserializeOwned>(
    response: Result<reqwest::Response, reqwest_middleware::Error>,
    expected: StatusCode,
) -> Result<T, MyServiceError> {
    let response = response.map_err(|e| {
        if let Some(token) = TokenError::of(&e) {
            MyServiceError::TokenUnavailable(token.clone())
        } else if let Some(user) = UserTokenError::of(&e) {
            MyServiceError::UserToken(user.clone())
        } else if is_timeout(&e) {
            MyServiceError::Timeout
        } else {
            MyServiceError::Unavailable(e.to_string())
        }
    })?;
    match response.status() {
        s if s == expected => response.json::<T>().await.map_err(|e| {
            if e.is_timeout() {
                MyServiceError::Timeout
            } else {
                MyServiceError::BadResponse(format!("body does not parse: {e}"))
            }
        }),
        StatusCode::UNAUTHORIZED => Err(MyServiceError::Unauthorized),
        StatusCode::FORBIDDEN => Err(MyServiceError::Forbidden),
        s if s.is_server_error() => Err(MyServiceError::Unavailable(format!("HTTP {s}"))),
        s => Err(MyServiceError::BadResponse(format!("HTTP {s}"))),
    }
}

fn is_timeout(e: &reqwest_middleware::Error) -> bool {
    matches!(e, reqwest_middleware::Error::Reqwest(r) if r.is_timeout())
}
