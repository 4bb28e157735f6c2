//! Settings of a validator as a service configures it: the values an operator sets
//! (authority, profile, audience, ...), checked and turned into a [`ValidatorConfig`] with
//! errors that name the setting. The service embeds them as they are:
//!
//! - with the `clap` feature, [`ValidatorArgs`] is a `clap::Args` group to flatten into
//!   the service's own arguments, each value also read from an environment variable whose
//!   prefix the service chooses ([`EnvPrefix`](crate::EnvPrefix); my-service keeps `AUTH_AUTHORITY`, ...);
//! - with the `serde` feature, [`ValidatorSettings`] deserializes from a configuration
//!   file (field names as below, snake_case).
//!
//! Each setting is written once, as a field of [`ValidatorSettings`]: its doc is the
//! `--help` text, its `#[arg]` the flag and parser, its default in `Default` (see
//! `crate::settings` for how the prefix is applied).
//!
//! ```
//! # #[cfg(feature = "clap")] {
//! use clap::Parser;
//! use shared_auth::AuthEnv;
//! use shared_auth::server::ValidatorArgs;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     auth: ValidatorArgs<AuthEnv>, // AUTH_AUTHORITY, AUTH_TOKEN_PROFILE, ...
//! }
//! // DPoP is on by default: it checks proofs against this API's own URL.
//! let args = Args::parse_from([
//!     "svc",
//!     "--authority",
//!     "https://issuer.example",
//!     "--resource",
//!     "https://api.example",
//! ]);
//! let config = args.auth.into_config().expect("valid settings");
//! # let _ = config; }
//! ```

// The fields' doc comments are also their --help texts (clap's derive): they show URLs
// and placeholders as an operator types them, not as rustdoc links.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]

use std::time::Duration;

use super::claims::TokenProfile;
use super::config::{IssuerConfig, MetadataSource, ValidatorConfig};
use super::dpop::{DpopConfig, DpopMode, SecretValue};
use super::error::StartError;
use super::introspection::IntrospectionConfig;
use super::resource_metadata::ProtectedResource;
use crate::jose::SignatureAlgorithm;
use crate::settings::{HttpUrl, SettingsError};

/// The token profiles, by their setting names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub(crate) enum ProfileName {
    /// AWS Cognito access tokens (`token_use: access`, no `aud`).
    #[default]
    Cognito,
    /// RFC 9068 JWT access tokens (`typ: at+jwt`, `aud` required).
    Rfc9068,
    /// Any JWT access token (`aud` checked only if configured).
    Generic,
}

/// What an operator sets for a validator. See the module documentation. As a clap group
/// (through [`ValidatorArgs`]) each field is a flag and a variable; a field's name in
/// backquotes in these docs becomes its variable in `--help`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct ValidatorSettings {
    /// Issuer URL; discovery at {authority}/.well-known/openid-configuration.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub authority: Option<HttpUrl>,
    /// Full discovery document URL (Cognito:
    /// https://cognito-idp.REGION.amazonaws.com/POOL/.well-known/openid-configuration).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub metadata_address: Option<HttpUrl>,
    /// JWKS URL, without discovery (needs `issuer`).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub jwks_uri: Option<HttpUrl>,
    /// Expected iss: required with `jwks_uri`, and when `metadata_address` has a shape that
    /// does not imply the issuer (one not ending in /.well-known/openid-configuration nor
    /// under /.well-known/oauth-authorization-server).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub issuer: Option<String>,
    /// Token profile: cognito (token_use=access, no aud), rfc9068 (typ at+jwt, aud
    /// required), generic (aud checked only if `audience` is set).
    #[cfg_attr(
        feature = "clap",
        arg(long, env, value_enum, default_value_t = Self::default().token_profile)
    )]
    pub(crate) token_profile: ProfileName,
    /// This API's audience (required for rfc9068, refused for cognito).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub audience: Option<String>,
    /// Comma-separated client ids accepted under the cognito profile (default: any).
    #[cfg_attr(feature = "clap", arg(long, env, value_delimiter = ','))]
    pub allowed_client_ids: Vec<String>,
    /// Clock skew allowed on exp/nbf/iat, in seconds.
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().clock_skew_secs))]
    pub clock_skew_secs: u64,
    /// Start even if the issuer is unreachable: discovery and keys load in the background
    /// and on first use; until then requests get 503 with Retry-After.
    #[cfg_attr(feature = "clap", arg(long, env, action = clap::ArgAction::Set, default_value_t = Self::default().lazy_keys))]
    pub lazy_keys: bool,
    /// Allow plain http to non-loopback issuer hosts (discovery and JWKS, configured or
    /// discovered). Off: https, or http to localhost, 127.0.0.0/8 or ::1 only. Test
    /// networks only.
    #[cfg_attr(feature = "clap", arg(long, env, action = clap::ArgAction::Set, default_value_t = Self::default().allow_insecure_http))]
    pub allow_insecure_http: bool,
    /// DPoP-bound tokens (RFC 9449): off (Bearer only), allowed (Bearer or DPoP), required
    /// (DPoP only; Swagger UI cannot make proofs). A DPoP-bound token sent as Bearer is
    /// refused in every mode. On, it needs `public_base_url` or `resource`.
    #[cfg_attr(
        feature = "clap",
        arg(long, env, value_parser = cli::dpop_mode(), default_value = cli::dpop_mode_name(Self::default().dpop))
    )]
    pub dpop: DpopMode,
    /// Space-separated DPoP proof algorithms (default: ES256 ES384 PS256 PS384 PS512 RS256
    /// RS384 RS512 EdDSA; never HS* or none).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub dpop_algs: Vec<String>,
    /// How old a DPoP proof's iat may be, in seconds (5 s of future skew are allowed).
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().dpop_proof_max_age_secs))]
    pub dpop_proof_max_age_secs: u64,
    /// Server-issued DPoP nonces: off, on. Several replicas need the same
    /// `dpop_nonce_secret`.
    #[cfg_attr(
        feature = "clap",
        arg(long, env, action = clap::ArgAction::Set, value_parser = cli::on_off(), default_value = cli::on_off_name(Self::default().dpop_nonce))
    )]
    pub dpop_nonce: bool,
    /// The DPoP nonce key, at least 32 bytes, shared by the replicas (default: random per
    /// process).
    #[cfg_attr(feature = "clap", arg(long, env, hide_env_values = true, value_parser = cli::secret))]
    pub dpop_nonce_secret: Option<SecretValue>,
    /// A file holding the DPoP nonce key.
    #[cfg_attr(feature = "clap", arg(long, env, conflicts_with = "dpop_nonce_secret"))]
    pub dpop_nonce_secret_file: Option<String>,
    /// This API's public base URL (https://api.example.com/orders, a proxy's path prefix
    /// included): the htu of DPoP proofs is checked against it plus the request path.
    /// Default: the origin of `resource`. With DPoP on, one of the two is required: the
    /// request's Host never decides.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub public_base_url: Option<HttpUrl>,
    /// Redis URL of a DPoP replay store shared by the replicas (default: in memory, per
    /// process); several, comma-separated: a Redis Cluster's nodes. Redis or Valkey
    /// failures refuse DPoP requests with 503. Feature `redis`: a build without it hides
    /// the setting and refuses it.
    #[cfg_attr(
        feature = "clap",
        arg(long, env, hide_env_values = true, hide = !cfg!(feature = "redis"), value_parser = cli::secret)
    )]
    pub dpop_replay_redis_url: Option<SecretValue>,
    /// DPoP proofs the in-memory replay store remembers at once (each for the proof max age
    /// plus 5 s; the default is about 1,500 proofs a second). Full of unexpired proofs, it
    /// refuses new ones with 503 and Retry-After rather than forget one.
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().dpop_replay_capacity))]
    pub dpop_replay_capacity: u64,
    /// One client's share of the replay store, so that it cannot fill it for all: a DPoP key
    /// (jkt) holding this many unexpired proofs gets more only while the in-memory store is
    /// less than half full (one client alone may use half of it), else 503 with
    /// Retry-After. In Redis, a hard bound: proofs per window from the key's first (the
    /// default is about 150 proofs a second for one key there).
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().dpop_replay_per_key))]
    pub dpop_replay_per_key: u64,
    /// Validated tokens remembered, so a repeated token is not verified again (each about
    /// 2.3 times the token's size in memory; 0 disables).
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().validated_cache_capacity))]
    pub validated_cache_capacity: usize,
    /// Token signatures verified at once; over it a first-seen token waits up to 50 ms,
    /// then gets 503 with Retry-After, while cached tokens never wait (default: one less
    /// than the cores, at least 1; 0: no bound).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub max_concurrent_verifications: Option<usize>,
    /// This API's resource identifier, as clients address it
    /// (https://api.example.com/orders; http only to loopback): publishes the OAuth 2.0
    /// protected resource metadata (RFC 9728) at /.well-known/oauth-protected-resource
    /// plus the URL's path, and adds resource_metadata="..." to the 401 challenges. Unset:
    /// neither.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub resource: Option<HttpUrl>,
    /// Comma-separated scopes listed in the protected resource metadata (with `resource`;
    /// a service may also set them in code on `ValidatorConfig::resource`).
    #[cfg_attr(feature = "clap", arg(long, env, value_delimiter = ','))]
    pub scopes_supported: Vec<String>,
    /// A TOML file of more trusted issuers: one [[issuer]] table each, with the fields
    /// authority, metadata_address, jwks_uri, issuer, token_profile, audience,
    /// allowed_client_ids, lazy_keys (as the variables of those names), and scope_aliases
    /// (a table mapping the issuer's scope names to the routes'). Tokens are routed to their
    /// issuer by iss; without `authority` (or `metadata_address` or `jwks_uri`), the file's
    /// first issuer is the main one. The other issuers load lazily unless their entry sets
    /// lazy_keys = false: one of them being down does not stop the start.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub issuers_file: Option<String>,
    /// More trusted issuers, inline (in a configuration file: `[[issuers]]` tables).
    #[cfg_attr(feature = "clap", arg(skip))]
    pub(crate) issuers: Vec<IssuerSettings>,
    /// Opaque access tokens (RFC 7662): a token that is not a JWS is checked at the
    /// issuer's introspection endpoint, as `introspection_client_id` with
    /// `introspection_client_secret`. JWTs are still validated locally.
    #[cfg_attr(feature = "clap", arg(long, env, action = clap::ArgAction::Set, default_value_t = Self::default().introspection))]
    pub introspection: bool,
    /// The introspection endpoint (default: introspection_endpoint from the issuer's
    /// discovery document).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub introspection_endpoint: Option<HttpUrl>,
    /// This API's client id at the issuer, for introspection calls.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub introspection_client_id: Option<String>,
    /// Its client secret (HTTP Basic unless `introspection_client_secret_post` is on).
    #[cfg_attr(feature = "clap", arg(long, env, hide_env_values = true, value_parser = cli::secret))]
    pub introspection_client_secret: Option<SecretValue>,
    /// A file holding the introspection client secret.
    #[cfg_attr(
        feature = "clap",
        arg(long, env, conflicts_with = "introspection_client_secret")
    )]
    pub introspection_client_secret_file: Option<String>,
    /// Send the introspection client secret in the form body (client_secret_post).
    #[cfg_attr(feature = "clap", arg(long, env, action = clap::ArgAction::Set, default_value_t = Self::default().introspection_client_secret_post))]
    pub introspection_client_secret_post: bool,
    /// Or authenticate introspection calls with private_key_jwt: a file with the private
    /// key (PEM or JWK).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub introspection_client_assertion_key_file: Option<String>,
    /// Or with a platform-issued client assertion read from this file for every call
    /// (workload identity, RFC 7523).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub introspection_client_assertion_file: Option<String>,
    /// An active introspection answer is cached until min(exp, this many seconds): a
    /// revoked token stays accepted for up to this long.
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().introspection_cache_secs))]
    pub introspection_cache_secs: u64,
    /// An inactive introspection answer is cached this many seconds.
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().introspection_negative_cache_secs))]
    pub introspection_negative_cache_secs: u64,
    /// Ask for signed introspection answers (RFC 9701) and verify them with the issuer's
    /// keys.
    #[cfg_attr(feature = "clap", arg(long, env, action = clap::ArgAction::Set, default_value_t = Self::default().introspection_jwt))]
    pub introspection_jwt: bool,
    /// Accept introspected (opaque) tokens whatever their audience. Off: introspection
    /// needs `audience`, since the issuer says active for a token issued to any API.
    #[cfg_attr(feature = "clap", arg(long, env, action = clap::ArgAction::Set, default_value_t = Self::default().introspection_any_audience))]
    pub introspection_any_audience: bool,
    /// Introspection calls at once; over it a check waits up to 50 ms, then gets 503 with
    /// Retry-After.
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().introspection_max_concurrent))]
    pub introspection_max_concurrent: usize,
    /// Turns on Transaction Token checks (the Txn-Token header,
    /// draft-ietf-oauth-transaction-tokens-08): the trust domain every token must be for.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub txn_token_trust_domain: Option<String>,
    /// The Transaction Token Service (discovery at {this}/.well-known/openid-configuration);
    /// default: `authority`.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub txn_token_authority: Option<HttpUrl>,
    /// The header a TLS-terminating proxy puts the client certificate in, for
    /// certificate-bound tokens (RFC 8705): `client-cert` (RFC 9440) or a URL-encoded PEM
    /// (nginx, AWS ALB). Read only from `client_certificate_proxies`.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_certificate_header: Option<String>,
    /// Comma-separated IP addresses of the proxies trusted to set that header.
    #[cfg_attr(feature = "clap", arg(long, env, value_delimiter = ','))]
    pub client_certificate_proxies: Vec<String>,
}

impl Default for ValidatorSettings {
    /// The defaults, written here only: `--help` prints them from here.
    fn default() -> Self {
        ValidatorSettings {
            authority: None,
            metadata_address: None,
            jwks_uri: None,
            issuer: None,
            token_profile: ProfileName::Cognito,
            audience: None,
            allowed_client_ids: Vec::new(),
            clock_skew_secs: 60,
            lazy_keys: false,
            allow_insecure_http: false,
            dpop: DpopMode::Allowed,
            dpop_algs: Vec::new(),
            dpop_proof_max_age_secs: 60,
            dpop_nonce: false,
            dpop_nonce_secret: None,
            dpop_nonce_secret_file: None,
            public_base_url: None,
            dpop_replay_redis_url: None,
            dpop_replay_capacity: 100_000,
            dpop_replay_per_key: 10_000,
            validated_cache_capacity: 10_000,
            max_concurrent_verifications: None,
            issuers_file: None,
            issuers: Vec::new(),
            resource: None,
            scopes_supported: Vec::new(),
            introspection: false,
            introspection_endpoint: None,
            introspection_client_id: None,
            introspection_client_secret: None,
            introspection_client_secret_file: None,
            introspection_client_secret_post: false,
            introspection_client_assertion_key_file: None,
            introspection_client_assertion_file: None,
            introspection_cache_secs: 300,
            introspection_negative_cache_secs: 10,
            introspection_jwt: false,
            introspection_any_audience: false,
            introspection_max_concurrent: 8,
            txn_token_trust_domain: None,
            txn_token_authority: None,
            client_certificate_header: None,
            client_certificate_proxies: Vec::new(),
        }
    }
}

mod issuers;
pub(crate) use issuers::IssuerSettings;
mod transaction;
use issuers::{IssuerParts, IssuersFile};

impl ValidatorSettings {
    /// The introspection part of the configuration (`None` when off). The secret is never
    /// part of an error.
    fn introspection_config(
        &mut self,
        prefix: &str,
    ) -> Result<Option<IntrospectionConfig>, SettingsError> {
        if !self.introspection {
            return Ok(None);
        }
        let name = |field: &str| crate::settings::setting_name(prefix, field);
        let fail = |field: &str, reason: String| SettingsError {
            setting: name(field),
            reason,
        };
        let endpoint = self.introspection_endpoint.take().map(String::from);
        if let Some(endpoint) = &endpoint {
            let optin = name("allow_insecure_http");
            crate::settings::transport_allowed(endpoint, self.allow_insecure_http, &optin)
                .map_err(|e| fail("introspection_endpoint", e))?;
        }
        let client_id = self
            .introspection_client_id
            .take()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                fail(
                    "introspection_client_id",
                    format!("required when {}=true", name("introspection")),
                )
            })?;
        // The credential kinds the client half has too, checked by the shared settings
        // code: a secret (or its file), a private_key_jwt key, or an assertion file.
        let field = |f: &str| name(&format!("introspection_{f}"));
        let path = |v: Option<String>| {
            v.filter(|f| !f.trim().is_empty())
                .map(std::path::PathBuf::from)
        };
        let secret = self.introspection_client_secret.take();
        let (client_id, credential, style) = crate::settings::credential::introspection_client(
            &field,
            client_id,
            secret.as_ref().map(|s| s.expose()),
            path(self.introspection_client_secret_file.take()),
            path(self.introspection_client_assertion_key_file.take()),
            path(self.introspection_client_assertion_file.take()),
            self.introspection_client_secret_post,
        )?;
        if self.introspection_cache_secs == 0 {
            return Err(fail(
                "introspection_cache_secs",
                "must be at least 1 second".to_owned(),
            ));
        }
        if self.introspection_max_concurrent == 0 {
            return Err(fail(
                "introspection_max_concurrent",
                "must be at least 1".to_owned(),
            ));
        }
        let mut config = IntrospectionConfig::new(client_id, credential);
        config.endpoint = endpoint;
        config.credential_style = style;
        config.max_cache = Duration::from_secs(self.introspection_cache_secs);
        config.negative_cache = Duration::from_secs(self.introspection_negative_cache_secs);
        config.jwt_response = self.introspection_jwt;
        config.any_audience = self.introspection_any_audience;
        config.max_concurrent = self.introspection_max_concurrent;
        Ok(Some(config))
    }
}

/// A DPoP proof algorithm by its JOSE name; HMAC and `none` are refused by name.
fn proof_algorithm(name: &str) -> Result<SignatureAlgorithm, String> {
    if let Some(alg) = SignatureAlgorithm::from_name(name) {
        return Ok(alg);
    }
    Err(match name {
        "HS256" | "HS384" | "HS512" | "none" => {
            format!("{name} is not allowed: DPoP proofs are signed with an asymmetric key")
        }
        "ES512" => "ES512 is not supported (no P-521 verification)".to_owned(),
        other => format!("unknown algorithm {other:?}"),
    })
}

impl ValidatorSettings {
    /// The DPoP part of the configuration.
    fn dpop_config(&mut self, prefix: &str) -> Result<DpopConfig, SettingsError> {
        let name = |field: &str| crate::settings::setting_name(prefix, field);
        let fail = |field: &str, reason: String| SettingsError {
            setting: name(field),
            reason,
        };
        let mut dpop = DpopConfig {
            mode: self.dpop,
            ..DpopConfig::default()
        };
        let algs: Vec<&str> = self
            .dpop_algs
            .iter()
            .flat_map(|a| a.split([' ', ',']))
            .filter(|a| !a.is_empty())
            .collect();
        if !algs.is_empty() {
            dpop.algorithms = algs
                .into_iter()
                .map(proof_algorithm)
                .collect::<Result<_, _>>()
                .map_err(|e| fail("dpop_algs", e))?;
        }
        if self.dpop_proof_max_age_secs == 0 || self.dpop_proof_max_age_secs > 3600 {
            return Err(fail(
                "dpop_proof_max_age_secs",
                "must be 1 to 3600 seconds".to_owned(),
            ));
        }
        dpop.max_age = Duration::from_secs(self.dpop_proof_max_age_secs);
        if let Some(base) = self.public_base_url.take().map(String::from) {
            let ok = url::Url::parse(&base).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
            });
            if !ok {
                return Err(fail(
                    "public_base_url",
                    "must be an http(s)://host[:port][/path] URL without query, fragment or user"
                        .to_owned(),
                ));
            }
            dpop.public_base_url = Some(base);
        }
        let secret = match (
            self.dpop_nonce_secret.take(),
            self.dpop_nonce_secret_file.take().filter(|f| !f.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    "dpop_nonce_secret",
                    format!("set it or {}, not both", name("dpop_nonce_secret_file")),
                ));
            }
            (Some(secret), None) => Some((secret, "dpop_nonce_secret")),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    fail("dpop_nonce_secret_file", format!("cannot read {file}: {e}"))
                })?;
                Some((
                    SecretValue::new(text.trim_end_matches(['\n', '\r'])),
                    "dpop_nonce_secret_file",
                ))
            }
            (None, None) => None,
        };
        if let Some((secret, field)) = &secret
            && secret.expose().len() < super::dpop_nonce::MIN_SECRET_LEN
        {
            // Never the value itself.
            return Err(fail(
                field,
                format!(
                    "must be at least {} bytes",
                    super::dpop_nonce::MIN_SECRET_LEN
                ),
            ));
        }
        dpop.nonces = self.dpop_nonce;
        dpop.nonce_secret = secret.map(|(s, _)| s);
        if self.dpop_replay_capacity == 0 {
            return Err(fail(
                "dpop_replay_capacity",
                "must be at least 1".to_owned(),
            ));
        }
        if self.dpop_replay_per_key == 0 || self.dpop_replay_per_key > self.dpop_replay_capacity {
            return Err(fail(
                "dpop_replay_per_key",
                format!("must be 1 to {}", name("dpop_replay_capacity")),
            ));
        }
        dpop.replay_store = super::dpop::ReplayStoreConfig::InMemory {
            capacity: self.dpop_replay_capacity,
            per_key: self.dpop_replay_per_key,
        };
        #[cfg(feature = "redis")]
        if let Some(url) = self
            .dpop_replay_redis_url
            .take()
            .filter(|u| !u.expose().is_empty())
        {
            // The error never repeats the URL: it may hold a password.
            crate::redis_engine::Engine::check(url.expose()).map_err(|_| {
                fail(
                    "dpop_replay_redis_url",
                    "not a Redis URL (redis://, rediss:// or unix://, or several \
                     comma-separated for a cluster)"
                        .to_owned(),
                )
            })?;
            dpop.replay_store = super::dpop::ReplayStoreConfig::Redis {
                url,
                key_prefix: "shared-auth:".to_owned(),
                timeout: Duration::from_millis(200),
                per_key: self.dpop_replay_per_key,
            };
        }
        // Without the feature the setting cannot work: refusing it beats a per-process
        // store the operator believes is shared (replays to another replica would pass).
        #[cfg(not(feature = "redis"))]
        if self
            .dpop_replay_redis_url
            .as_ref()
            .is_some_and(|u| !u.expose().is_empty())
        {
            return Err(fail(
                "dpop_replay_redis_url",
                "this build has no Redis support (shared-auth feature `redis`)".to_owned(),
            ));
        }
        Ok(dpop)
    }
}

impl ValidatorSettings {
    /// Checks the settings together and builds the validator's configuration. Errors name
    /// the setting as `prefix` + its upper-case name (`AUTH_` gives `AUTH_AUDIENCE`), or
    /// by field name when `prefix` is empty.
    pub fn into_config_named(mut self, prefix: &str) -> Result<ValidatorConfig, SettingsError> {
        let dpop = self.dpop_config(prefix)?;
        let introspection = self.introspection_config(prefix)?;
        let certificates = self.certificate_binding(prefix)?;
        let name = |field: &str| crate::settings::setting_name(prefix, field);
        let fail = |field: &str, reason: String| SettingsError {
            setting: name(field),
            reason,
        };
        let insecure = self.allow_insecure_http;
        let optin = name("allow_insecure_http");
        let mut more = std::mem::take(&mut self.issuers);
        if let Some(file) = self.issuers_file.take().filter(|f| !f.trim().is_empty()) {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| fail("issuers_file", format!("cannot read {file}: {e}")))?;
            let parsed: IssuersFile = toml::from_str(&text)
                .map_err(|e| fail("issuers_file", format!("{file}: {}", e.message())))?;
            more.extend(parsed.issuer);
        }
        let primary_set = [&self.authority, &self.metadata_address, &self.jwks_uri]
            .iter()
            .any(|v| v.is_some());
        // Without the single-issuer settings, the first listed issuer stands in for them.
        let from_list = !primary_set && !more.is_empty();
        let primary = if from_list {
            more.remove(0)
        } else {
            IssuerSettings {
                authority: self.authority.map(String::from),
                metadata_address: self.metadata_address.map(String::from),
                jwks_uri: self.jwks_uri.map(String::from),
                issuer: self.issuer,
                token_profile: self.token_profile,
                audience: self.audience,
                allowed_client_ids: self.allowed_client_ids,
                lazy_keys: Some(self.lazy_keys),
                scope_aliases: Default::default(),
            }
        };
        let check = |field: &str, url: &str| {
            crate::settings::transport_allowed(url, insecure, &optin).map_err(|e| fail(field, e))
        };
        let scopes: Vec<String> = self
            .scopes_supported
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                crate::scope::Scope::new(s)
                    .map(|s| s.as_str().to_owned())
                    .map_err(|e| fail("scopes_supported", e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let resource = match self.resource.map(String::from) {
            Some(resource) => {
                check("resource", &resource)?;
                crate::discovery::resource_metadata_url(&resource)
                    .map_err(|reason| fail("resource", reason))?;
                Some(ProtectedResource::new(resource).with_scopes(scopes))
            }
            None if !scopes.is_empty() => {
                return Err(fail(
                    "scopes_supported",
                    format!("only used with {}", name("resource")),
                ));
            }
            None => None,
        };
        let listed = |n: usize| {
            let file = name("issuers_file");
            move |field: &str, reason: String| SettingsError {
                setting: file.clone(),
                reason: format!("issuer {n}, {field}: {reason}"),
            }
        };
        let plain = |field: &str| field.to_owned();
        if introspection.is_some() && primary.audience.is_none() && !self.introspection_any_audience
        {
            return Err(fail(
                "introspection",
                format!(
                    "the issuer says active for opaque tokens issued to any API: set {} \
                     (token profile generic or rfc9068), or accept any audience with {}=true",
                    name("audience"),
                    name("introspection_any_audience"),
                ),
            ));
        }
        let lazy = primary.lazy_keys.unwrap_or(false);
        let aliases: Vec<(String, String)> = primary.scope_aliases.clone().into_iter().collect();
        let IssuerParts {
            metadata,
            issuer,
            profile,
        } = if from_list {
            primary.into_parts(insecure, &optin, &plain, &listed(1))?
        } else {
            primary.into_parts(insecure, &optin, &name, &fail)?
        };
        let first_listed = if from_list { 2 } else { 1 };
        let mut additional = Vec::with_capacity(more.len());
        for (i, settings) in more.into_iter().enumerate() {
            let lazy = settings.lazy_keys.unwrap_or(true);
            let aliases = settings.scope_aliases.clone().into_iter().collect();
            let parts = settings.into_parts(insecure, &optin, &plain, &listed(first_listed + i))?;
            let mut config = IssuerConfig::new(parts.metadata, parts.profile);
            config.issuer = parts.issuer;
            config.lazy = lazy;
            config.scope_aliases = aliases;
            additional.push(config);
        }
        if dpop.mode != DpopMode::Off && dpop.public_base_url.is_none() && resource.is_none() {
            return Err(fail(
                "dpop",
                format!(
                    "a DPoP proof's htu is checked against this API's public URL, never the \
                     request's Host (which the caller writes): set {} or {}, or {}=off",
                    name("public_base_url"),
                    name("resource"),
                    name("dpop"),
                ),
            ));
        }
        let mut config = ValidatorConfig::new(metadata, profile);
        config.additional_issuers = additional;
        config.scope_aliases = aliases;
        config.resource = resource;
        config.leeway = Duration::from_secs(self.clock_skew_secs);
        config.lazy = lazy;
        config.issuer = issuer;
        config.allow_insecure_http = insecure;
        config.dpop = dpop;
        config.introspection = introspection;
        config.certificates = certificates;
        config.validated_cache_capacity = self.validated_cache_capacity;
        if let Some(bound) = self.max_concurrent_verifications {
            config.max_concurrent_verifications = bound;
        }
        Ok(config)
    }
}

impl ValidatorSettings {
    /// A start error of the validator built from these settings (checked into `config`
    /// with `prefix`), with the setting to check in front: `AUTH_AUTHORITY: cannot read
    /// ...`, or for an issuer of the issuers file `AUTH_ISSUERS_FILE: issuer 2, authority:
    /// ...`; a refused plain-http endpoint names the opt-in under the same prefix.
    pub fn explain_start_error(
        &self,
        prefix: &str,
        config: &ValidatorConfig,
        error: &StartError,
    ) -> String {
        let name = |field: &str| crate::settings::setting_name(prefix, field);
        let field = |source: &MetadataSource| match source {
            MetadataSource::Authority(_) => "authority",
            MetadataSource::MetadataAddress(_) => "metadata_address",
            _ => "jwks_uri",
        };
        // The issuers in the order into_config_named made them, numbered as its errors
        // number them: the single-issuer settings (if set), then the listed issuers.
        let primary_set =
            self.authority.is_some() || self.metadata_address.is_some() || self.jwks_uri.is_some();
        let sources = std::iter::once(&config.metadata)
            .chain(config.additional_issuers.iter().map(|i| &i.metadata))
            .enumerate()
            .map(|(i, source)| match (primary_set, i) {
                (true, 0) => (source, name(field(source))),
                (_, n) => {
                    let n = if primary_set { n } else { n + 1 };
                    let file = name("issuers_file");
                    (source, format!("{file}: issuer {n}, {}", field(source)))
                }
            });
        let url = match error {
            StartError::Discovery { url, .. }
            | StartError::UnusableEndpoint { url, .. }
            | StartError::IssuerRequired { url }
            | StartError::IssuerMismatch { url, .. } => url.as_str(),
            _ => return error.to_string(),
        };
        let from = sources
            .filter(|(source, _)| match source {
                MetadataSource::Authority(a) => url.starts_with(a.trim_end_matches('/')),
                MetadataSource::MetadataAddress(m) => url == m,
                _ => false,
            })
            .map(|(_, setting)| setting)
            .last();
        let mut text = match from {
            Some(setting) => format!("{setting}: {error}"),
            None => error.to_string(),
        };
        if matches!(error, StartError::UnusableEndpoint { .. }) {
            text.push_str(&format!(
                " ({}=true allows plain http on a test network)",
                name("allow_insecure_http")
            ));
        }
        text
    }
}

#[cfg(feature = "clap")]
pub use self::cli::ValidatorArgs;

#[cfg(feature = "clap")]
mod cli;

#[cfg(test)]
mod tests;
