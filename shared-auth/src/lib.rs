//! Service-to-service authorization with OAuth 2.0 client credentials.
//!
//! - [`client`]: get, cache and attach client-credentials tokens (reqwest-middleware);
//! - [`server`]: validate JWT access tokens and require scopes in axum (tower layers);
//! - [`scope`]: the scope vocabulary both halves share;
#![warn(missing_docs)]

pub mod client;
pub mod clock;
mod discovery;
#[cfg(test)]
mod fuzz;
mod issuer_http;
pub mod metrics;
pub mod scope;
pub mod server;
mod settings;

pub use issuer_http::UrlError;
pub use scope::{Scope, ScopeSet};
pub use settings::{HttpUrl, SettingsError};
