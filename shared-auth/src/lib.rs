#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod client;
mod clock;
mod discovery;
mod endpoint_auth;
#[cfg(test)]
mod fuzz;
mod issuer_http;
#[cfg(feature = "jose")]
pub mod jose;
#[cfg(not(feature = "jose"))]
mod jose;
mod jwks;
mod metrics;
mod problem;
#[cfg(feature = "redis")]
mod redis_engine;
mod scope;
pub mod server;
mod settings;
mod trace;
mod transaction;

pub use clock::Clock;
#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use issuer_http::UrlError;
pub use metrics::{describe as describe_metrics, publish as publish_metrics};
pub use problem::problem;
pub use scope::{InvalidScope, Scope, ScopeSet};
pub use settings::{AuthEnv, EnvPrefix, HttpUrl, SettingsError};
pub use transaction::TransactionToken;
