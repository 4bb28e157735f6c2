//! Service-to-service authorization with OAuth 2.0 client credentials.
//!
//! - [`client`]: get, cache and attach client-credentials tokens (reqwest-middleware);
//! - [`server`]: validate JWT access tokens and require scopes in axum (tower layers);
//! - [`scope`]: the scope vocabulary both halves share;
#![warn(missing_docs)]

pub mod client;
mod client_auth;
pub mod clock;
mod discovery;
#[cfg(test)]
mod fuzz;
mod issuer_http;
mod jose;
pub mod metrics;
mod problem;
mod scope;
pub mod server;
mod settings;

pub use issuer_http::UrlError;
pub use problem::problem;
pub use scope::{InvalidScope, Scope, ScopeSet};
pub use settings::SettingsError;
