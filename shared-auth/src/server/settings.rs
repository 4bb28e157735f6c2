//! Settings of a validator as a service configures it: the values an operator sets
//! (authority, profile, audience, ...), checked and turned into a [`ValidatorConfig`] with
//! errors that name the setting. The service embeds them as they are:
//!
//! - with the `clap` feature, [`ValidatorArgs`] is a `clap::Args` group to flatten into
//!   the service's own arguments, each value also read from an environment variable whose
//!   prefix the service chooses ([`EnvPrefix`]; my-service keeps `AUTH_AUTHORITY`, ...);
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
//! use shared_auth::server::{AuthEnv, ValidatorArgs};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     auth: ValidatorArgs<AuthEnv>, // AUTH_AUTHORITY, AUTH_TOKEN_PROFILE, ...
//! }
//! let args = Args::parse_from(["svc", "--authority", "https://issuer.example"]);
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
pub enum ProfileName {
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
    pub token_profile: ProfileName,
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
    /// refused in every mode.
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
    /// This service's public base URL behind a proxy (https://api.example.com/orders): the
    /// htu of DPoP proofs is checked against it plus the request path. Default: the
    /// request's Host, http or https.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub public_base_url: Option<HttpUrl>,
    /// Redis URL of a DPoP replay store shared by the replicas (default: in memory, per
    /// process). Redis failures refuse DPoP requests with 503. Feature `redis`: a build
    /// without it hides the setting and refuses it.
    #[cfg_attr(
        feature = "clap",
        arg(long, env, hide_env_values = true, hide = !cfg!(feature = "redis"), value_parser = cli::secret)
    )]
    pub dpop_replay_redis_url: Option<SecretValue>,
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
    /// first issuer is the main one.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub issuers_file: Option<String>,
    /// More trusted issuers, inline (in a configuration file: `[[issuers]]` tables).
    #[cfg_attr(feature = "clap", arg(skip))]
    pub issuers: Vec<IssuerSettings>,
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
    /// Introspection calls at once; over it a check waits up to 50 ms, then gets 503 with
    /// Retry-After.
    #[cfg_attr(feature = "clap", arg(long, env, default_value_t = Self::default().introspection_max_concurrent))]
    pub introspection_max_concurrent: usize,
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
            introspection_max_concurrent: 8,
        }
    }
}

/// One trusted issuer, as an operator writes it in an issuers file (see
/// [`ValidatorSettings::issuers_file`]). The fields mean what the fields of the same names
/// in [`ValidatorSettings`] mean, for this issuer.
///
/// ```toml
/// # A migration: tokens from both issuers are accepted while callers move over.
/// [[issuer]]
/// authority = "https://identity.example.com"
/// token_profile = "rfc9068"
/// audience = "MyService"
///
/// [[issuer]]
/// metadata_address = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool/.well-known/openid-configuration"
/// token_profile = "cognito"
/// allowed_client_ids = ["my-bff"]
/// scope_aliases = { "weather.read" = "MyService/weather_read" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct IssuerSettings {
    /// Issuer URL; discovery at `{authority}/.well-known/openid-configuration`.
    pub authority: Option<String>,
    /// Full discovery document URL.
    pub metadata_address: Option<String>,
    /// JWKS URL, without discovery (needs `issuer`).
    pub jwks_uri: Option<String>,
    /// Expected `iss`.
    pub issuer: Option<String>,
    /// Token profile.
    pub token_profile: ProfileName,
    /// This API's audience in this issuer's tokens.
    pub audience: Option<String>,
    /// Client ids accepted under `cognito` (empty: any).
    pub allowed_client_ids: Vec<String>,
    /// Start without this issuer; its keys load in the background and on first use.
    pub lazy_keys: bool,
    /// This issuer's scope names mapped to the names the routes require (a TOML table,
    /// `{ "weather.read" = "MyService/weather_read" }`): a token granting the key also
    /// grants the value.
    pub scope_aliases: std::collections::BTreeMap<String, String>,
}

/// The `[[issuer]]` tables of an issuers file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuersFile {
    #[serde(default)]
    issuer: Vec<IssuerSettings>,
}

/// What one issuer's settings check out to.
struct IssuerParts {
    metadata: MetadataSource,
    issuer: Option<String>,
    profile: TokenProfile,
}

impl IssuerSettings {
    /// Checks one issuer's settings. `name` turns a field into the name an operator knows
    /// it by, `fail` makes the error for a field.
    fn into_parts(
        self,
        insecure: bool,
        optin: &str,
        name: &dyn Fn(&str) -> String,
        fail: &dyn Fn(&str, String) -> SettingsError,
    ) -> Result<IssuerParts, SettingsError> {
        let check = |field: &str, url: &str| {
            crate::settings::transport_allowed(url, insecure, optin).map_err(|e| fail(field, e))
        };
        for (from, to) in &self.scope_aliases {
            crate::scope::Scope::new(to.clone())
                .map_err(|e| fail("scope_aliases", format!("{from} = {to:?}: {e}")))?;
        }
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let mut issuer = non_empty(self.issuer);
        let metadata = match (
            non_empty(self.authority),
            non_empty(self.metadata_address),
            non_empty(self.jwks_uri),
        ) {
            (Some(a), None, None) => {
                check("authority", &a)?;
                MetadataSource::Authority(a)
            }
            (None, Some(m), None) => {
                check("metadata_address", &m)?;
                MetadataSource::MetadataAddress(m)
            }
            (None, None, Some(jwks_uri)) => {
                let issuer = issuer
                    .take()
                    .ok_or_else(|| fail("issuer", format!("required with {}", name("jwks_uri"))))?;
                check("jwks_uri", &jwks_uri)?;
                MetadataSource::Jwks { jwks_uri, issuer }
            }
            _ => {
                return Err(fail(
                    "authority",
                    format!(
                        "set exactly one of {}, {}, or {} with {}",
                        name("authority"),
                        name("metadata_address"),
                        name("jwks_uri"),
                        name("issuer")
                    ),
                ));
            }
        };
        if issuer.is_none() && metadata.implied_issuer().is_none() {
            return Err(fail(
                "issuer",
                format!(
                    "required with an {} that does not end in /.well-known/openid-configuration: \
                     the discovered issuer must be checked against it (RFC 8414 section 3.3)",
                    name("metadata_address")
                ),
            ));
        }
        let audience = non_empty(self.audience);
        let profile = match self.token_profile {
            ProfileName::Cognito => {
                if audience.is_some() {
                    return Err(fail(
                        "audience",
                        format!(
                            "Cognito access tokens have no aud claim; unset it, or use {}=rfc9068 or generic",
                            name("token_profile")
                        ),
                    ));
                }
                TokenProfile::Cognito {
                    allowed_client_ids: self
                        .allowed_client_ids
                        .into_iter()
                        .map(|c| c.trim().to_owned())
                        .filter(|c| !c.is_empty())
                        .collect(),
                }
            }
            ProfileName::Rfc9068 => TokenProfile::Rfc9068 {
                audience: audience.ok_or_else(|| {
                    fail(
                        "audience",
                        format!("required when {}=rfc9068", name("token_profile")),
                    )
                })?,
            },
            ProfileName::Generic => TokenProfile::Generic { audience },
        };
        Ok(IssuerParts {
            metadata,
            issuer,
            profile,
        })
    }
}

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
        #[cfg(feature = "redis")]
        if let Some(url) = self
            .dpop_replay_redis_url
            .take()
            .filter(|u| !u.expose().is_empty())
        {
            // The error never repeats the URL: it may hold a password.
            redis::Client::open(url.expose()).map_err(|_| {
                fail(
                    "dpop_replay_redis_url",
                    "not a Redis URL (redis://, rediss:// or unix://)".to_owned(),
                )
            })?;
            dpop.replay_store = super::dpop::ReplayStoreConfig::Redis {
                url,
                key_prefix: "shared-auth:".to_owned(),
                timeout: Duration::from_millis(200),
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
                lazy_keys: self.lazy_keys,
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
        let lazy = primary.lazy_keys;
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
            let lazy = settings.lazy_keys;
            let aliases = settings.scope_aliases.clone().into_iter().collect();
            let parts = settings.into_parts(insecure, &optin, &plain, &listed(first_listed + i))?;
            let mut config = IssuerConfig::new(parts.metadata, parts.profile);
            config.issuer = parts.issuer;
            config.lazy = lazy;
            config.scope_aliases = aliases;
            additional.push(config);
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

/// The environment-variable prefix of a [`ValidatorArgs`] group, chosen by the service.
pub trait EnvPrefix: Send + Sync + 'static {
    /// Put before each setting's upper-case name: `AUTH_` gives `AUTH_AUTHORITY`.
    const PREFIX: &'static str;
}

/// The `AUTH_` prefix: `AUTH_AUTHORITY`, `AUTH_TOKEN_PROFILE`, ... (ASP.NET's names).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthEnv;

impl EnvPrefix for AuthEnv {
    const PREFIX: &'static str = "AUTH_";
}

#[cfg(feature = "clap")]
pub use self::cli::ValidatorArgs;

#[cfg(feature = "clap")]
mod cli {
    use std::marker::PhantomData;

    use clap::builder::{PossibleValuesParser, TypedValueParser};
    use clap::{ArgGroup, ArgMatches, Args, Command, FromArgMatches};

    use super::{DpopMode, EnvPrefix, SecretValue, SettingsError, StartError, ValidatorSettings};
    use crate::server::ValidatorConfig;
    use crate::settings::with_prefix;

    /// [`ValidatorSettings`] as a `clap::Args` group (feature `clap`): each setting a flag
    /// and an environment variable named `P::PREFIX` + its upper-case name. Flatten it into
    /// the service's arguments; `--help` lists the variables. Exactly one metadata source
    /// (or the issuers file) is required.
    #[derive(Debug, Clone)]
    pub struct ValidatorArgs<P: EnvPrefix> {
        /// The parsed settings.
        pub settings: ValidatorSettings,
        prefix: PhantomData<P>,
    }

    impl<P: EnvPrefix> ValidatorArgs<P> {
        /// Checks the settings and builds the configuration; errors name the variable.
        pub fn into_config(self) -> Result<ValidatorConfig, SettingsError> {
            self.settings.into_config_named(P::PREFIX)
        }

        /// A start error of the validator built from `config` (these settings' own),
        /// naming the variable to check (see [`ValidatorSettings::explain_start_error`]).
        pub fn explain_start_error(&self, config: &ValidatorConfig, error: &StartError) -> String {
            self.settings.explain_start_error(P::PREFIX, config, error)
        }
    }

    impl<P: EnvPrefix> Args for ValidatorArgs<P> {
        fn augment_args(cmd: Command) -> Command {
            let cmd = with_prefix(
                ValidatorSettings::augment_args(cmd),
                "ValidatorSettings",
                |_| P::PREFIX,
            );
            cmd.group(
                ArgGroup::new("metadata_source")
                    .required(true)
                    .multiple(true)
                    .args(["authority", "metadata_address", "jwks_uri", "issuers_file"]),
            )
        }

        fn augment_args_for_update(cmd: Command) -> Command {
            Self::augment_args(cmd)
        }
    }

    impl<P: EnvPrefix> FromArgMatches for ValidatorArgs<P> {
        fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
            Ok(ValidatorArgs {
                settings: ValidatorSettings::from_arg_matches(matches)?,
                prefix: PhantomData,
            })
        }

        fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
            self.settings.update_from_arg_matches(matches)
        }
    }

    const DPOP_MODES: [(&str, DpopMode); 3] = [
        ("off", DpopMode::Off),
        ("allowed", DpopMode::Allowed),
        ("required", DpopMode::Required),
    ];

    pub(super) fn dpop_mode() -> impl TypedValueParser<Value = DpopMode> {
        PossibleValuesParser::new(DPOP_MODES.map(|(name, _)| name)).map(|name| {
            DPOP_MODES
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(DpopMode::Allowed, |(_, mode)| *mode)
        })
    }

    pub(super) fn dpop_mode_name(mode: DpopMode) -> &'static str {
        DPOP_MODES
            .iter()
            .find(|(_, m)| *m == mode)
            .map_or("allowed", |(name, _)| name)
    }

    /// `off` or `on`, for a switch that reads better so than as true/false.
    pub(super) fn on_off() -> impl TypedValueParser<Value = bool> {
        PossibleValuesParser::new(["off", "on"]).map(|v| v == "on")
    }

    pub(super) fn on_off_name(on: bool) -> &'static str {
        if on { "on" } else { "off" }
    }

    pub(super) fn secret(value: &str) -> Result<SecretValue, std::convert::Infallible> {
        Ok(SecretValue::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Option<HttpUrl> {
        Some(text.parse().unwrap())
    }

    fn settings(edit: impl FnOnce(&mut ValidatorSettings)) -> ValidatorSettings {
        let mut s = ValidatorSettings {
            authority: url("https://issuer.example"),
            ..ValidatorSettings::default()
        };
        edit(&mut s);
        s
    }

    #[test]
    fn introspection_settings_are_checked_and_name_the_variable() {
        let on = |edit: fn(&mut ValidatorSettings)| {
            settings(|s| {
                s.introspection = true;
                s.introspection_client_id = Some("my-service".into());
                s.introspection_client_secret = Some(SecretValue::new("a-long-secret"));
                edit(s);
            })
            .into_config_named("AUTH_")
        };
        let config = on(|_| {}).unwrap();
        let introspection = config.introspection.unwrap();
        assert_eq!(introspection.client_id.as_str(), "my-service");
        assert_eq!(introspection.max_cache, Duration::from_secs(300));
        assert_eq!(introspection.negative_cache, Duration::from_secs(10));
        assert!(introspection.endpoint.is_none(), "discovered");
        let e = on(|s| s.introspection_client_id = None).unwrap_err();
        assert_eq!(e.setting, "AUTH_INTROSPECTION_CLIENT_ID");
        let e = on(|s| s.introspection_client_secret = None).unwrap_err();
        assert_eq!(e.setting, "AUTH_INTROSPECTION_CLIENT_SECRET");
        assert!(!e.to_string().contains("a-long-secret"));
        let e = on(|s| s.introspection_endpoint = url("http://issuer.example/i")).unwrap_err();
        assert_eq!(e.setting, "AUTH_INTROSPECTION_ENDPOINT");
        let e = on(|s| s.introspection_cache_secs = 0).unwrap_err();
        assert_eq!(e.setting, "AUTH_INTROSPECTION_CACHE_SECS");
        // Off: nothing is read, nothing is required.
        let config = settings(|s| s.introspection_client_id = None)
            .into_config_named("AUTH_")
            .unwrap();
        assert!(config.introspection.is_none());
    }

    #[test]
    fn errors_name_the_setting_under_the_services_prefix() {
        let e = settings(|s| {
            s.token_profile = ProfileName::Rfc9068;
        })
        .into_config_named("ORDERS_AUTH_")
        .unwrap_err();
        assert_eq!(e.setting, "ORDERS_AUTH_AUDIENCE");
        assert!(
            e.reason.contains("ORDERS_AUTH_TOKEN_PROFILE=rfc9068"),
            "{e}"
        );
        let e = settings(|s| s.authority = url("http://issuer.example"))
            .into_config_named("AUTH_")
            .unwrap_err();
        assert_eq!(e.setting, "AUTH_AUTHORITY");
        assert!(e.reason.contains("AUTH_ALLOW_INSECURE_HTTP=true"), "{e}");
        // Without a prefix (a configuration file), the field name.
        let e = settings(|s| s.audience = Some("api".into()))
            .into_config_named("")
            .unwrap_err();
        assert_eq!(e.setting, "audience");
        let e = ValidatorSettings::default()
            .into_config_named("")
            .unwrap_err();
        assert_eq!(e.setting, "authority");
    }

    #[test]
    fn good_settings_make_the_validator_config() {
        let config = settings(|s| {
            s.token_profile = ProfileName::Generic;
            s.audience = Some("api".into());
            s.clock_skew_secs = 5;
            s.lazy_keys = true;
        })
        .into_config_named("AUTH_")
        .unwrap();
        assert_eq!(
            config.metadata,
            MetadataSource::Authority("https://issuer.example".into())
        );
        assert_eq!(
            config.profile,
            TokenProfile::Generic {
                audience: Some("api".into())
            }
        );
        assert_eq!(config.leeway, Duration::from_secs(5));
        assert!(config.lazy);
    }

    #[test]
    fn the_protected_resource_settings_are_checked_and_name_the_variable() {
        assert!(
            settings(|_| {})
                .into_config_named("AUTH_")
                .unwrap()
                .resource
                .is_none()
        );
        let config = settings(|s| {
            s.resource = url("https://api.example/orders");
            s.scopes_supported = vec!["orders/read".into(), " orders/write ".into()];
        })
        .into_config_named("AUTH_")
        .unwrap();
        assert_eq!(
            config.resource,
            Some(
                ProtectedResource::new("https://api.example/orders")
                    .with_scopes(["orders/read", "orders/write"])
            )
        );
        for (edit, variable) in [
            (
                Box::new(|s: &mut ValidatorSettings| s.resource = url("http://api.example"))
                    as Box<dyn Fn(&mut ValidatorSettings)>,
                "AUTH_RESOURCE",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| s.resource = url("https://api.example/?x=1")),
                "AUTH_RESOURCE",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| s.scopes_supported = vec!["a".into()]),
                "AUTH_SCOPES_SUPPORTED",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| {
                    s.resource = url("https://api.example");
                    s.scopes_supported = vec!["a\"b".into()];
                }),
                "AUTH_SCOPES_SUPPORTED",
            ),
        ] {
            let e = settings(|s| edit(s))
                .into_config_named("AUTH_")
                .unwrap_err();
            assert_eq!(e.setting, variable, "{e}");
        }
    }

    #[test]
    fn dpop_settings_are_checked_and_errors_name_the_variable() {
        let config = settings(|_| {}).into_config_named("AUTH_").unwrap();
        assert_eq!(config.dpop.mode, DpopMode::Allowed, "allowed by default");
        assert!(!config.dpop.nonces);
        let config = settings(|s| {
            s.dpop = DpopMode::Required;
            s.dpop_algs = vec!["ES256 EdDSA".into()];
            s.dpop_proof_max_age_secs = 30;
            s.dpop_nonce = true;
            s.dpop_nonce_secret = Some(SecretValue::new("x".repeat(32)));
            s.public_base_url = url("https://api.example.com/orders");
        })
        .into_config_named("AUTH_")
        .unwrap();
        assert_eq!(config.dpop.mode, DpopMode::Required);
        assert_eq!(
            config.dpop.algorithms,
            [SignatureAlgorithm::ES256, SignatureAlgorithm::EdDSA]
        );
        assert_eq!(config.dpop.max_age, Duration::from_secs(30));
        assert!(config.dpop.nonces && config.dpop.nonce_secret.is_some());
        for (edit, variable) in [
            (
                Box::new(|s: &mut ValidatorSettings| s.dpop_algs = vec!["ES256 HS256".into()])
                    as Box<dyn Fn(&mut ValidatorSettings)>,
                "AUTH_DPOP_ALGS",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| s.dpop_algs = vec!["none".into()]),
                "AUTH_DPOP_ALGS",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| s.dpop_proof_max_age_secs = 0),
                "AUTH_DPOP_PROOF_MAX_AGE_SECS",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| {
                    s.public_base_url = url("https://x.example/?q=1")
                }),
                "AUTH_PUBLIC_BASE_URL",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| {
                    s.dpop_nonce_secret = Some(SecretValue::new("short-secret-value"))
                }),
                "AUTH_DPOP_NONCE_SECRET",
            ),
        ] {
            let mut s = settings(|_| {});
            edit(&mut s);
            let e = s.into_config_named("AUTH_").unwrap_err();
            assert_eq!(e.setting, variable, "{e}");
            assert!(!e.to_string().contains("short-secret-value"), "{e}");
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn settings_deserialize_from_a_configuration_file() {
        let parsed: ValidatorSettings = serde_json::from_str(
            r#"{"metadata_address": "https://as.example/meta.json", "issuer": "https://as.example",
                "token_profile": "rfc9068", "audience": "api"}"#,
        )
        .unwrap();
        assert_eq!(parsed.token_profile, ProfileName::Rfc9068);
        assert_eq!(parsed.clock_skew_secs, 60, "defaults fill the rest");
        assert!(parsed.into_config_named("").is_ok());
        assert!(serde_json::from_str::<ValidatorSettings>(r#"{"authorty": "x"}"#).is_err());
    }

    #[test]
    fn an_issuers_file_adds_issuers_with_their_own_profiles() {
        let path = std::env::temp_dir().join(format!("issuers-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[[issuer]]\nauthority = \"https://b.example\"\ntoken_profile = \"rfc9068\"\n\
             audience = \"api\"\n\n[[issuer]]\njwks_uri = \"https://c.example/jwks\"\n\
             issuer = \"https://c.example\"\nallowed_client_ids = [\"bff\"]\n",
        )
        .unwrap();
        let file = path.to_str().unwrap().to_owned();
        let config = settings(|s| s.issuers_file = Some(file.clone()))
            .into_config_named("AUTH_")
            .unwrap();
        assert_eq!(
            config.metadata,
            MetadataSource::Authority("https://issuer.example".into())
        );
        let more = &config.additional_issuers;
        assert_eq!(more.len(), 2);
        assert_eq!(
            more[0].profile,
            TokenProfile::Rfc9068 {
                audience: "api".into()
            }
        );
        assert_eq!(
            more[1].profile,
            TokenProfile::Cognito {
                allowed_client_ids: vec!["bff".into()]
            }
        );
        // Alone, the file's first issuer is the main one.
        let config = ValidatorSettings {
            issuers_file: Some(file.clone()),
            ..ValidatorSettings::default()
        }
        .into_config_named("AUTH_")
        .unwrap();
        assert_eq!(
            config.metadata,
            MetadataSource::Authority("https://b.example".into())
        );
        assert_eq!(config.additional_issuers.len(), 1);
        // Errors name the variable and the entry; an unknown field is one.
        std::fs::write(&path, "[[issuer]]\nauthorty = \"https://b.example\"\n").unwrap();
        let e = settings(|s| s.issuers_file = Some(file.clone()))
            .into_config_named("AUTH_")
            .unwrap_err();
        assert_eq!(e.setting, "AUTH_ISSUERS_FILE");
        assert!(e.reason.contains("authorty"), "{e}");
        std::fs::write(&path, "[[issuer]]\nauthority = \"http://b.example\"\n").unwrap();
        let e = settings(|s| s.issuers_file = Some(file.clone()))
            .into_config_named("AUTH_")
            .unwrap_err();
        assert_eq!(e.setting, "AUTH_ISSUERS_FILE");
        assert!(
            e.reason.starts_with("issuer 1, authority:")
                && e.reason.contains("AUTH_ALLOW_INSECURE_HTTP"),
            "{e}"
        );
        let _ = std::fs::remove_file(&path);
        let e = settings(|s| s.issuers_file = Some(file))
            .into_config_named("AUTH_")
            .unwrap_err();
        assert!(e.reason.contains("cannot read"), "{e}");
    }

    #[test]
    fn start_errors_name_the_setting_under_the_services_prefix() {
        let path = std::env::temp_dir().join(format!("start-issuers-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[[issuer]]\nauthority = \"https://b.example\"\n\n\
             [[issuer]]\nmetadata_address = \"https://c.example/.well-known/openid-configuration\"\n",
        )
        .unwrap();
        let file = path.to_str().unwrap().to_owned();
        let discovery = |url: &str| StartError::Discovery {
            url: url.into(),
            reason: "connection refused".into(),
        };
        let unusable = StartError::UnusableEndpoint {
            url: "https://c.example/.well-known/openid-configuration".into(),
            field: "jwks_uri",
            reason: "plain http is refused".into(),
        };
        // The error's own text names no variable: the prefix is the service's to choose.
        assert!(!unusable.to_string().contains("AUTH_"), "{unusable}");
        assert!(!discovery("https://x").to_string().contains("AUTH_"));

        let s = settings(|s| s.issuers_file = Some(file.clone()));
        let config = s.clone().into_config_named("ORDERS_AUTH_").unwrap();
        let explain = |e: &StartError| s.explain_start_error("ORDERS_AUTH_", &config, e);
        let e = explain(&discovery(
            "https://issuer.example/.well-known/openid-configuration",
        ));
        assert!(e.starts_with("ORDERS_AUTH_AUTHORITY: cannot read"), "{e}");
        let e = explain(&discovery(
            "https://b.example/.well-known/openid-configuration",
        ));
        assert!(
            e.starts_with("ORDERS_AUTH_ISSUERS_FILE: issuer 1, authority: cannot read"),
            "{e}"
        );
        let e = explain(&unusable);
        assert!(
            e.starts_with("ORDERS_AUTH_ISSUERS_FILE: issuer 2, metadata_address: ")
                && e.ends_with(
                    "(ORDERS_AUTH_ALLOW_INSECURE_HTTP=true allows plain http on a test network)"
                ),
            "{e}"
        );
        // The file alone: its first issuer is the main one, and still named as the file's.
        let s = ValidatorSettings {
            issuers_file: Some(file),
            ..ValidatorSettings::default()
        };
        let config = s.clone().into_config_named("AUTH_").unwrap();
        let e = s.explain_start_error(
            "AUTH_",
            &config,
            &discovery("https://b.example/.well-known/openid-configuration"),
        );
        assert!(
            e.starts_with("AUTH_ISSUERS_FILE: issuer 1, authority: "),
            "{e}"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(feature = "clap")]
    #[test]
    fn the_services_prefix_names_the_variables_and_the_help() {
        use clap::{CommandFactory, Parser};
        struct Orders;
        impl EnvPrefix for Orders {
            const PREFIX: &'static str = "ORDERS_AUTH_";
        }
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            auth: ValidatorArgs<Orders>,
        }
        let cmd = Args::command();
        let arg = |id: &str| cmd.get_arguments().find(|a| a.get_id() == id).unwrap();
        assert_eq!(
            arg("clock_skew_secs").get_env().unwrap(),
            "ORDERS_AUTH_CLOCK_SKEW_SECS"
        );
        let help = arg("jwks_uri").get_help().unwrap().to_string();
        assert!(help.contains("needs ORDERS_AUTH_ISSUER"), "{help}");
        let args = Args::try_parse_from([
            "svc",
            "--jwks-uri",
            "https://old.example/jwks",
            "--issuer",
            "https://old.example",
            "--token-profile",
            "generic",
            "--allowed-client-ids",
            "a,b",
        ])
        .unwrap();
        assert_eq!(args.auth.settings.allowed_client_ids, ["a", "b"]);
        assert_eq!(args.auth.settings.token_profile, ProfileName::Generic);
        assert_eq!(args.auth.settings.clock_skew_secs, 60);
        assert!(args.auth.into_config().is_ok());
        // A metadata source is required, and the error names it by its variable.
        let e = Args::try_parse_from(["svc"]).err().unwrap().to_string();
        assert!(e.contains("ORDERS_AUTH_AUTHORITY"), "{e}");
        let e = Args::try_parse_from(["svc", "--authority", "ftp://x"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("ORDERS_AUTH_AUTHORITY") && e.contains("must be an http:// or https:// URL"),
            "{e}"
        );
    }
}
