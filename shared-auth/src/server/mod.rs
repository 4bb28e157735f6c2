//! The resource-server half: validate JWT access tokens and enforce scopes in axum.
//!
//! - [`JwtValidator`] turns a compact JWT into a [`Principal`] (metadata discovery, a
//!   self-refreshing key cache, algorithm, signature, claims, token profile), for one
//!   issuer or several ([`IssuerConfig`]: each token is routed to its issuer by `iss`);
//! - [`JwtAuthLayer`] authenticates every request on the routes it wraps (RFC 6750);
//! - [`RequireScopeLayer`] requires scopes or a predicate per route (403 with
//!   `insufficient_scope`);
//! - [`Principal`] is the caller, as a handler argument;
//! - [`DpopConfig`] turns on DPoP (RFC 9449) proof-of-possession checks: allowed beside
//!   bearer tokens by default, or required, with a replay store ([`ReplayStoreConfig`]) and
//!   optional server nonces;
//! - [`ProtectedResource`] publishes the API's OAuth 2.0 protected resource metadata
//!   (RFC 9728) and points the 401 challenges at it;
//! - [`IntrospectionConfig`] turns on opaque access tokens: a token that is not a JWS is
//!   checked at the issuer's introspection endpoint (RFC 7662, RFC 9701), with a cache;
//! - [`TransactionTokenLayer`] checks the `Txn-Token` header (Transaction Tokens,
//!   draft-ietf-oauth-transaction-tokens-08) and gives handlers the [`Transaction`]: who
//!   the call chain is for, and its context.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use shared_auth::server::{JwtAuthLayer, JwtValidator, MetadataSource, Principal, TokenProfile, ValidatorConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = JwtValidator::new(ValidatorConfig::new(
//!     MetadataSource::Authority("http://127.0.0.1:7000".into()),
//!     TokenProfile::Cognito { allowed_client_ids: vec![] },
//! )).await?;
//! let app: Router = Router::new().route(
//!     "/whoami",
//!     get(|p: Principal| async move { p.client_id().to_owned() })
//!         // The method router's route_layer: unknown paths stay 404 and wrong methods
//!         // 405 instead of turning into 401.
//!         .route_layer(JwtAuthLayer::new(validator)),
//! );
//! # Ok(()) }
//! ```

pub(crate) mod auth_layer;
mod certificate;
mod challenge;
mod claims;
mod config;
mod dpop;
mod dpop_nonce;
mod dpop_replay;
mod error;
mod introspection;
mod issuer;
mod principal;
mod resource_metadata;
mod response_future;
mod scope_policy;
mod settings;
mod token_header;
mod transaction;
mod validated_cache;
mod validation;

pub use crate::jose::SignatureAlgorithm;
pub use auth_layer::{JwtAuth, JwtAuthLayer};
pub use certificate::{CertificateBinding, ClientCertificate};
pub use claims::TokenProfile;
pub use config::{IssuerConfig, MetadataSource, ValidatorConfig};
pub use dpop::{DpopConfig, DpopMode, ReplayStoreConfig, SecretValue};
// The replay store's trait, for a store of one's own: this repository's benches (feature
// `internals`); a team chooses in memory or Redis with `ReplayStoreConfig`.
#[cfg(feature = "internals")]
pub use dpop::{InMemoryReplayStore, ReplayStore, ReplayStoreError};
pub use error::{StartError, ValidationError};
pub use introspection::IntrospectionConfig;
pub use principal::Principal;
pub use resource_metadata::ProtectedResource;
pub use response_future::AuthFuture;
pub use scope_policy::{RequireScope, RequireScopeLayer};
#[cfg(feature = "clap")]
pub use settings::ValidatorArgs;
pub use settings::ValidatorSettings;
pub use transaction::{
    Transaction, TransactionTokenConfig, TransactionTokenLayer, TransactionTokenService,
};
// The layer's checks on their own: this repository's benches (feature `internals`).
#[cfg(feature = "internals")]
pub use transaction::{TransactionTokenError, TransactionTokenVerifier};
pub use validation::JwtValidator;
