//! The resource-server half: validate JWT access tokens and enforce scopes in axum.
//!
//! - [`JwtValidator`] turns a compact JWT into a [`Principal`] (metadata discovery, a
//!   self-refreshing key cache, algorithm, signature, claims, token profile);
//! - [`JwtAuthLayer`] authenticates every request on the routes it wraps (RFC 6750);
//! - [`RequireScopeLayer`] requires scopes or a predicate per route (403 with
//!   `insufficient_scope`);
//! - [`Principal`] is the caller, as a handler argument.

pub(crate) mod auth_layer;
mod challenge;
mod error;
pub(crate) mod jwks;
mod principal;
mod response_future;
mod scope_policy;
mod settings;
mod validated_cache;
mod validation;

pub use auth_layer::{JwtAuth, JwtAuthLayer};
pub use challenge::problem;
pub use error::{SignatureAlgorithm, StartError, ValidationError};
pub use principal::{MissingAuthLayer, Principal};
pub use response_future::AuthFuture;
pub use scope_policy::{RequireScope, RequireScopeLayer};
#[cfg(feature = "clap")]
pub use settings::ValidatorArgs;
pub use settings::{AuthEnv, EnvPrefix, ProfileName, ValidatorSettings};
pub use validation::{JwtValidator, MetadataSource, TokenProfile, ValidatorConfig};
