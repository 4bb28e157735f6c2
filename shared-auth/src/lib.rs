#![doc = include_str!("../README.md")]
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
pub use settings::SettingsError;
