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

use std::time::Duration;

use super::claims::TokenProfile;
use super::config::{IssuerConfig, MetadataSource, ValidatorConfig};
use super::dpop::{DpopConfig, DpopMode, SecretValue};
use super::introspection::IntrospectionConfig;
use super::resource_metadata::ProtectedResource;
use crate::jose::SignatureAlgorithm;
use crate::settings::SettingsError;

/// The token profiles, by their setting names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
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

/// What an operator sets for a validator. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct ValidatorSettings {
    /// Issuer URL; discovery at `{authority}/.well-known/openid-configuration`.
    pub authority: Option<String>,
    /// Full discovery document URL.
    pub metadata_address: Option<String>,
    /// JWKS URL, without discovery (needs `issuer`).
    pub jwks_uri: Option<String>,
    /// Expected `iss`: with `jwks_uri`, and with a `metadata_address` whose shape implies
    /// no issuer.
    pub issuer: Option<String>,
    /// Token profile.
    pub token_profile: ProfileName,
    /// This API's audience (required for `rfc9068`, refused for `cognito`).
    pub audience: Option<String>,
    /// Client ids accepted under `cognito` (empty: any).
    pub allowed_client_ids: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf`, `iat`, in seconds.
    pub clock_skew_secs: u64,
    /// Start without the issuer; keys load in the background and on first use.
    pub lazy_keys: bool,
    /// Allow plain `http` to non-loopback issuer hosts.
    pub allow_insecure_http: bool,
    /// DPoP: `off`, `allowed` (default) or `required`.
    pub dpop: DpopMode,
    /// DPoP proof algorithms (names such as `ES256`; empty: the default list).
    pub dpop_algs: Vec<String>,
    /// How old a DPoP proof's `iat` may be, in seconds (default 60).
    pub dpop_proof_max_age_secs: u64,
    /// Require server-issued DPoP nonces.
    pub dpop_nonce: bool,
    /// The DPoP nonce key shared by replicas (at least 32 bytes); unset: random per process.
    pub dpop_nonce_secret: Option<SecretValue>,
    /// A file holding the DPoP nonce key (instead of `dpop_nonce_secret`).
    pub dpop_nonce_secret_file: Option<String>,
    /// This service's public base URL (behind a proxy): DPoP proofs' `htu` is checked
    /// against it plus the request path.
    pub public_base_url: Option<String>,
    /// Redis URL of a DPoP replay store shared by replicas (feature `redis`; a build
    /// without it refuses the setting; unset: in memory, per process).
    pub dpop_replay_redis_url: Option<SecretValue>,
    /// Validated tokens remembered, so a repeated token is not verified again (default
    /// 10,000; 0 disables the cache).
    pub validated_cache_capacity: usize,
    /// Signature verifications run at once; over it a first-seen token waits briefly, then
    /// gets 503 (unset: one less than the cores, at least 1; 0: no bound).
    pub max_concurrent_verifications: Option<usize>,
    /// This API's resource identifier (RFC 9728): set, the service publishes its protected
    /// resource metadata and its 401 challenges point at it (unset: neither).
    pub resource: Option<String>,
    /// The metadata's `scopes_supported` (with `resource` only; a service may also set
    /// them in code on [`ValidatorConfig::resource`]).
    pub scopes_supported: Vec<String>,
    /// A TOML file of more trusted issuers, one `[[issuer]]` table each with the fields of
    /// [`IssuerSettings`]. Without the single-issuer settings above, the file's first
    /// issuer is the first one.
    pub issuers_file: Option<String>,
    /// More trusted issuers, inline (in a configuration file: `[[issuers]]` tables).
    pub issuers: Vec<IssuerSettings>,
    /// Opaque access tokens (RFC 7662): a token that is not a JWS is checked at the
    /// issuer's introspection endpoint (default false).
    pub introspection: bool,
    /// The introspection endpoint (unset: discovered from the issuer's metadata).
    pub introspection_endpoint: Option<String>,
    /// This API's client id at the issuer, for introspection calls.
    pub introspection_client_id: Option<String>,
    /// Its client secret.
    pub introspection_client_secret: Option<SecretValue>,
    /// A file holding the secret (instead of `introspection_client_secret`).
    pub introspection_client_secret_file: Option<String>,
    /// Send the secret in the form body (`client_secret_post`) instead of HTTP Basic.
    pub introspection_client_secret_post: bool,
    /// Or authenticate with `private_key_jwt`: the private key (PEM or JWK) in this file.
    pub introspection_client_assertion_key_file: Option<String>,
    /// Or with a platform-issued assertion read from this file for every call (workload
    /// identity, RFC 7523).
    pub introspection_client_assertion_file: Option<String>,
    /// An active answer is cached until `min(exp, this)`, in seconds: the revocation
    /// window (default 300).
    pub introspection_cache_secs: u64,
    /// An inactive answer is cached this long, in seconds (default 10).
    pub introspection_negative_cache_secs: u64,
    /// Ask for signed RFC 9701 answers and verify them with the issuer's keys.
    pub introspection_jwt: bool,
    /// Introspection calls at once (default 8); over it a check waits briefly, then 503.
    pub introspection_max_concurrent: usize,
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
            crate::issuer_http::check_url(url, insecure)
                .map_err(|e| fail(field, format!("{e}, or set {optin}=true on a test network")))
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

impl Default for ValidatorSettings {
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
        let endpoint = self
            .introspection_endpoint
            .take()
            .filter(|e| !e.trim().is_empty());
        if let Some(endpoint) = &endpoint {
            crate::issuer_http::check_url(endpoint, self.allow_insecure_http).map_err(|e| {
                fail(
                    "introspection_endpoint",
                    format!(
                        "{e}, or set {}=true on a test network",
                        name("allow_insecure_http")
                    ),
                )
            })?;
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
        // The client half's credential kinds, checked by its own code: a secret (or its
        // file), a private_key_jwt key, or an assertion file; exactly one.
        let field = |f: &str| name(&format!("introspection_{f}"));
        let path = |v: Option<String>| {
            v.filter(|f| !f.trim().is_empty())
                .map(std::path::PathBuf::from)
        };
        let credential = crate::client::settings::credential(
            &field,
            self.introspection_client_secret
                .take()
                .filter(|s| !s.expose().is_empty())
                .map(|s| crate::client::ClientSecret::new(s.expose())),
            path(self.introspection_client_secret_file.take()),
            crate::client::settings::KeySettings {
                file: path(self.introspection_client_assertion_key_file.take()),
                id: None,
                audience: None,
                alg: None,
            },
            path(self.introspection_client_assertion_file.take()),
            None,
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
        let mut config =
            IntrospectionConfig::new(crate::client::ClientId::new(client_id), credential);
        config.endpoint = endpoint;
        if self.introspection_client_secret_post {
            config.credential_style = crate::client::CredentialStyle::PostBody;
        }
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
        if let Some(base) = self.public_base_url.take().filter(|b| !b.trim().is_empty()) {
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
            .any(|v| v.as_ref().is_some_and(|s| !s.trim().is_empty()));
        // Without the single-issuer settings, the first listed issuer stands in for them.
        let from_list = !primary_set && !more.is_empty();
        let primary = if from_list {
            more.remove(0)
        } else {
            IssuerSettings {
                authority: self.authority,
                metadata_address: self.metadata_address,
                jwks_uri: self.jwks_uri,
                issuer: self.issuer,
                token_profile: self.token_profile,
                audience: self.audience,
                allowed_client_ids: self.allowed_client_ids,
                lazy_keys: self.lazy_keys,
                scope_aliases: Default::default(),
            }
        };
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let check = |field: &str, url: &str| {
            crate::issuer_http::check_url(url, insecure)
                .map_err(|e| fail(field, format!("{e}, or set {optin}=true on a test network")))
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
        let resource = match non_empty(self.resource) {
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

/// The environment-variable prefix of a [`ValidatorArgs`] group, chosen by the service.
pub trait EnvPrefix: Send + Sync + 'static {
    /// Put before each setting's upper-case name: `AUTH_` gives `AUTH_AUTHORITY`.
    const PREFIX: &'static str;
    /// Put before each flag: empty gives `--authority`.
    const FLAG_PREFIX: &'static str = "";
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

    use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command, FromArgMatches};

    use super::{DpopMode, EnvPrefix, ProfileName, SecretValue, SettingsError, ValidatorSettings};
    use crate::server::ValidatorConfig;

    /// [`ValidatorSettings`] as a `clap::Args` group (feature `clap`): each setting a flag
    /// and an environment variable named `P::PREFIX` + its upper-case name. Flatten it into
    /// the service's arguments; `--help` lists the variables.
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
    }

    use crate::settings::intern;

    fn env<P: EnvPrefix>(field: &str) -> &'static str {
        intern(format!("{}{}", P::PREFIX, field.to_ascii_uppercase()))
    }

    fn id<P: EnvPrefix>(field: &str) -> &'static str {
        intern(format!("{}{field}", P::PREFIX))
    }

    fn arg<P: EnvPrefix>(field: &str, help: String) -> Arg {
        let variable = env::<P>(field);
        Arg::new(id::<P>(field))
            .long(intern(format!(
                "{}{}",
                P::FLAG_PREFIX,
                field.replace('_', "-")
            )))
            .env(variable)
            .value_name(variable)
            .help(help)
    }

    use crate::settings::http_url;

    /// The Redis replay store's URL (feature `redis`); without it, a hidden placeholder so
    /// the command has the same shape.
    fn redis_arg<P: EnvPrefix>() -> Arg {
        let arg = arg::<P>(
            "dpop_replay_redis_url",
            "Redis URL of a DPoP replay store shared by the replicas (default: in memory, \
             per process). Redis failures refuse DPoP requests with 503."
                .to_owned(),
        )
        .hide_env_values(true);
        if cfg!(feature = "redis") {
            arg
        } else {
            arg.hide(true)
        }
    }

    fn boolean<P: EnvPrefix>(field: &str, help: String) -> Arg {
        arg::<P>(field, help)
            .action(ArgAction::Set)
            .value_parser(clap::value_parser!(bool))
            .default_value("false")
    }

    impl<P: EnvPrefix> clap::Args for ValidatorArgs<P> {
        fn augment_args(cmd: Command) -> Command {
            let n = |field: &str| env::<P>(field);
            cmd.arg(
                arg::<P>(
                    "authority",
                    "Issuer URL; discovery at {authority}/.well-known/openid-configuration."
                        .to_owned(),
                )
                .value_parser(http_url),
            )
            .arg(
                arg::<P>(
                    "metadata_address",
                    "Full discovery document URL (Cognito: \
                     https://cognito-idp.REGION.amazonaws.com/POOL/.well-known/openid-configuration)."
                        .to_owned(),
                )
                .value_parser(http_url),
            )
            .arg(
                arg::<P>(
                    "jwks_uri",
                    format!("JWKS URL, without discovery (needs {}).", n("issuer")),
                )
                .value_parser(http_url),
            )
            .arg(arg::<P>(
                "issuer",
                format!(
                    "Expected iss: required with {}, and with an {} whose shape does not imply \
                     the issuer (one not ending in /.well-known/openid-configuration nor under \
                     /.well-known/oauth-authorization-server).",
                    n("jwks_uri"),
                    n("metadata_address")
                ),
            ))
            .arg(arg::<P>(
                "issuers_file",
                format!(
                    "A TOML file of more trusted issuers: one [[issuer]] table each, with the \
                     fields authority, metadata_address, jwks_uri, issuer, token_profile, \
                     audience, allowed_client_ids, lazy_keys (as the variables of those names), \
                     and scope_aliases (a table mapping the issuer's scope names to the routes'). \
                     Tokens are routed to their issuer by iss; without {} (or {} or {}), the \
                     file's first issuer is the main one.",
                    n("authority"),
                    n("metadata_address"),
                    n("jwks_uri")
                ),
            ))
            .group(
                ArgGroup::new(id::<P>("metadata_source"))
                    .required(true)
                    .args([
                        id::<P>("authority"),
                        id::<P>("metadata_address"),
                        id::<P>("jwks_uri"),
                        id::<P>("issuers_file"),
                    ])
                    .multiple(true),
            )
            .arg(boolean::<P>(
                "allow_insecure_http",
                "Allow plain http to non-loopback issuer hosts (discovery and JWKS, configured \
                 or discovered). Off: https, or http to localhost, 127.0.0.0/8 or ::1 only. \
                 Test networks only."
                    .to_owned(),
            ))
            .arg(
                arg::<P>(
                    "token_profile",
                    format!(
                        "Token profile: cognito (token_use=access, no aud), rfc9068 (typ \
                         at+jwt, aud required), generic (aud checked only if {} is set).",
                        n("audience")
                    ),
                )
                .value_parser(["cognito", "rfc9068", "generic"])
                .default_value("cognito"),
            )
            .arg(arg::<P>(
                "audience",
                "This API's audience (required for rfc9068).".to_owned(),
            ))
            .arg(
                arg::<P>(
                    "allowed_client_ids",
                    "Comma-separated client ids accepted under the cognito profile (default: \
                     any)."
                        .to_owned(),
                )
                .value_delimiter(',')
                .action(ArgAction::Append),
            )
            .arg(
                arg::<P>(
                    "clock_skew_secs",
                    "Clock skew allowed on exp/nbf/iat, in seconds.".to_owned(),
                )
                .value_parser(clap::value_parser!(u64))
                .default_value("60"),
            )
            .arg(
                arg::<P>(
                    "dpop",
                    "DPoP-bound tokens (RFC 9449): off (Bearer only), allowed (Bearer or DPoP), \
                     required (DPoP only; Swagger UI cannot make proofs). A DPoP-bound token \
                     sent as Bearer is refused in every mode."
                        .to_owned(),
                )
                .value_parser(["off", "allowed", "required"])
                .default_value("allowed"),
            )
            .arg(arg::<P>(
                "dpop_algs",
                "Space-separated DPoP proof algorithms (default: ES256 ES384 PS256 PS384 \
                 PS512 RS256 RS384 RS512 EdDSA; never HS* or none)."
                    .to_owned(),
            ))
            .arg(
                arg::<P>(
                    "dpop_proof_max_age_secs",
                    "How old a DPoP proof's iat may be, in seconds (5 s of future skew are \
                     allowed)."
                        .to_owned(),
                )
                .value_parser(clap::value_parser!(u64))
                .default_value("60"),
            )
            .arg(
                arg::<P>(
                    "dpop_nonce",
                    format!(
                        "Server-issued DPoP nonces: off, on. Several replicas need the same {}.",
                        n("dpop_nonce_secret")
                    ),
                )
                .value_parser(["off", "on"])
                .default_value("off"),
            )
            .arg(
                arg::<P>(
                    "dpop_nonce_secret",
                    "The DPoP nonce key, at least 32 bytes, shared by the replicas (default: \
                     random per process)."
                        .to_owned(),
                )
                .hide_env_values(true),
            )
            .arg(
                arg::<P>(
                    "dpop_nonce_secret_file",
                    "A file holding the DPoP nonce key.".to_owned(),
                )
                .conflicts_with(id::<P>("dpop_nonce_secret")),
            )
            .arg(
                arg::<P>(
                    "public_base_url",
                    "This service's public base URL behind a proxy (https://api.example.com/orders): \
                     the htu of DPoP proofs is checked against it plus the request path. \
                     Default: the request's Host, http or https."
                        .to_owned(),
                )
                .value_parser(http_url),
            )
            .arg(redis_arg::<P>())
            .arg(
                arg::<P>(
                    "validated_cache_capacity",
                    "Validated tokens remembered, so a repeated token is not verified again \
                     (each about 2.3 times the token's size in memory; 0 disables)."
                        .to_owned(),
                )
                .value_parser(clap::value_parser!(usize))
                .default_value("10000"),
            )
            .arg(
                arg::<P>(
                    "max_concurrent_verifications",
                    "Token signatures verified at once; over it a first-seen token waits up to \
                     50 ms, then gets 503 with Retry-After, while cached tokens never wait \
                     (default: one less than the cores, at least 1; 0: no bound)."
                        .to_owned(),
                )
                .value_parser(clap::value_parser!(usize)),
            )
            .arg(
                arg::<P>(
                    "resource",
                    "This API's resource identifier, as clients address it \
                     (https://api.example.com/orders; http only to loopback): publishes the \
                     OAuth 2.0 protected resource metadata (RFC 9728) at \
                     /.well-known/oauth-protected-resource plus the URL's path, and adds \
                     resource_metadata=\"...\" to the 401 challenges. Unset: neither."
                        .to_owned(),
                )
                .value_parser(http_url),
            )
            .arg(
                arg::<P>(
                    "scopes_supported",
                    format!(
                        "Comma-separated scopes listed in the protected resource metadata \
                         (with {}).",
                        n("resource")
                    ),
                )
                .value_delimiter(',')
                .action(ArgAction::Append),
            )
            .arg(boolean::<P>(
                "lazy_keys",
                "Start even if the issuer is unreachable: discovery and keys load in the \
                 background and on first use; until then requests get 503 with Retry-After."
                    .to_owned(),
            ))
            .arg(boolean::<P>(
                "introspection",
                format!(
                    "Opaque access tokens (RFC 7662): a token that is not a JWS is checked at \
                     the issuer's introspection endpoint, as {} with {}. JWTs are still \
                     validated locally.",
                    n("introspection_client_id"),
                    n("introspection_client_secret")
                ),
            ))
            .arg(
                arg::<P>(
                    "introspection_endpoint",
                    "The introspection endpoint (default: introspection_endpoint from the \
                     issuer's discovery document)."
                        .to_owned(),
                )
                .value_parser(http_url),
            )
            .arg(arg::<P>(
                "introspection_client_id",
                "This API's client id at the issuer, for introspection calls.".to_owned(),
            ))
            .arg(
                arg::<P>(
                    "introspection_client_secret",
                    "Its client secret (HTTP Basic unless the _POST setting is on).".to_owned(),
                )
                .hide_env_values(true),
            )
            .arg(
                arg::<P>(
                    "introspection_client_secret_file",
                    "A file holding the introspection client secret.".to_owned(),
                )
                .conflicts_with(id::<P>("introspection_client_secret")),
            )
            .arg(arg::<P>(
                "introspection_client_assertion_key_file",
                "Or authenticate introspection calls with private_key_jwt: a file with the \
                 private key (PEM or JWK)."
                    .to_owned(),
            ))
            .arg(arg::<P>(
                "introspection_client_assertion_file",
                "Or with a platform-issued client assertion read from this file for every call \
                 (workload identity)."
                    .to_owned(),
            ))
            .arg(boolean::<P>(
                "introspection_client_secret_post",
                "Send the introspection client secret in the form body (client_secret_post).".to_owned(),
            ))
            .arg(
                arg::<P>(
                    "introspection_cache_secs",
                    "An active introspection answer is cached until min(exp, this many \
                     seconds): a revoked token stays accepted for up to this long."
                        .to_owned(),
                )
                .value_parser(clap::value_parser!(u64))
                .default_value("300"),
            )
            .arg(
                arg::<P>(
                    "introspection_negative_cache_secs",
                    "An inactive introspection answer is cached this many seconds.".to_owned(),
                )
                .value_parser(clap::value_parser!(u64))
                .default_value("10"),
            )
            .arg(boolean::<P>(
                "introspection_jwt",
                "Ask for signed introspection answers (RFC 9701) and verify them with the \
                 issuer's keys."
                    .to_owned(),
            ))
            .arg(
                arg::<P>(
                    "introspection_max_concurrent",
                    "Introspection calls at once; over it a check waits up to 50 ms, then \
                     gets 503 with Retry-After."
                        .to_owned(),
                )
                .value_parser(clap::value_parser!(usize))
                .default_value("8"),
            )
        }

        fn augment_args_for_update(cmd: Command) -> Command {
            Self::augment_args(cmd)
        }
    }

    impl<P: EnvPrefix> FromArgMatches for ValidatorArgs<P> {
        fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
            let text = |field: &str| matches.get_one::<String>(id::<P>(field)).cloned();
            let flag = |field: &str| {
                matches
                    .get_one::<bool>(id::<P>(field))
                    .copied()
                    .unwrap_or(false)
            };
            let token_profile = match text("token_profile").as_deref() {
                Some("rfc9068") => ProfileName::Rfc9068,
                Some("generic") => ProfileName::Generic,
                _ => ProfileName::Cognito,
            };
            Ok(ValidatorArgs {
                settings: ValidatorSettings {
                    authority: text("authority"),
                    metadata_address: text("metadata_address"),
                    jwks_uri: text("jwks_uri"),
                    issuer: text("issuer"),
                    token_profile,
                    audience: text("audience"),
                    allowed_client_ids: matches
                        .get_many::<String>(id::<P>("allowed_client_ids"))
                        .map(|v| v.cloned().collect())
                        .unwrap_or_default(),
                    clock_skew_secs: matches
                        .get_one::<u64>(id::<P>("clock_skew_secs"))
                        .copied()
                        .unwrap_or(60),
                    lazy_keys: flag("lazy_keys"),
                    allow_insecure_http: flag("allow_insecure_http"),
                    dpop: match text("dpop").as_deref() {
                        Some("off") => DpopMode::Off,
                        Some("required") => DpopMode::Required,
                        _ => DpopMode::Allowed,
                    },
                    dpop_algs: text("dpop_algs").into_iter().collect(),
                    dpop_proof_max_age_secs: matches
                        .get_one::<u64>(id::<P>("dpop_proof_max_age_secs"))
                        .copied()
                        .unwrap_or(60),
                    dpop_nonce: text("dpop_nonce").as_deref() == Some("on"),
                    dpop_nonce_secret: text("dpop_nonce_secret").map(SecretValue::new),
                    dpop_nonce_secret_file: text("dpop_nonce_secret_file"),
                    public_base_url: text("public_base_url"),
                    dpop_replay_redis_url: text("dpop_replay_redis_url").map(SecretValue::new),
                    validated_cache_capacity: matches
                        .get_one::<usize>(id::<P>("validated_cache_capacity"))
                        .copied()
                        .unwrap_or(10_000),
                    max_concurrent_verifications: matches
                        .get_one::<usize>(id::<P>("max_concurrent_verifications"))
                        .copied(),
                    issuers_file: text("issuers_file"),
                    issuers: Vec::new(),
                    resource: text("resource"),
                    scopes_supported: matches
                        .get_many::<String>(id::<P>("scopes_supported"))
                        .map(|v| v.cloned().collect())
                        .unwrap_or_default(),
                    introspection: flag("introspection"),
                    introspection_endpoint: text("introspection_endpoint"),
                    introspection_client_id: text("introspection_client_id"),
                    introspection_client_secret: text("introspection_client_secret")
                        .map(SecretValue::new),
                    introspection_client_secret_file: text("introspection_client_secret_file"),
                    introspection_client_secret_post: flag("introspection_client_secret_post"),
                    introspection_client_assertion_key_file: text(
                        "introspection_client_assertion_key_file",
                    ),
                    introspection_client_assertion_file: text(
                        "introspection_client_assertion_file",
                    ),
                    introspection_cache_secs: matches
                        .get_one::<u64>(id::<P>("introspection_cache_secs"))
                        .copied()
                        .unwrap_or(300),
                    introspection_negative_cache_secs: matches
                        .get_one::<u64>(id::<P>("introspection_negative_cache_secs"))
                        .copied()
                        .unwrap_or(10),
                    introspection_jwt: flag("introspection_jwt"),
                    introspection_max_concurrent: matches
                        .get_one::<usize>(id::<P>("introspection_max_concurrent"))
                        .copied()
                        .unwrap_or(8),
                },
                prefix: PhantomData,
            })
        }

        fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
            *self = Self::from_arg_matches(matches)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(edit: impl FnOnce(&mut ValidatorSettings)) -> ValidatorSettings {
        let mut s = ValidatorSettings {
            authority: Some("https://issuer.example".into()),
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
        let e =
            on(|s| s.introspection_endpoint = Some("http://issuer.example/i".into())).unwrap_err();
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
        let e = settings(|s| s.authority = Some("http://issuer.example".into()))
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
            s.resource = Some("https://api.example/orders".into());
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
                Box::new(|s: &mut ValidatorSettings| s.resource = Some("http://api.example".into()))
                    as Box<dyn Fn(&mut ValidatorSettings)>,
                "AUTH_RESOURCE",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| {
                    s.resource = Some("https://api.example/?x=1".into())
                }),
                "AUTH_RESOURCE",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| s.scopes_supported = vec!["a".into()]),
                "AUTH_SCOPES_SUPPORTED",
            ),
            (
                Box::new(|s: &mut ValidatorSettings| {
                    s.resource = Some("https://api.example".into());
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
            s.public_base_url = Some("https://api.example.com/orders".into());
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
                    s.public_base_url = Some("https://x.example/?q=1".into())
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

    #[cfg(feature = "clap")]
    #[test]
    fn two_groups_with_their_own_prefixes_live_in_one_command() {
        use clap::Parser;
        struct Legacy;
        impl EnvPrefix for Legacy {
            const PREFIX: &'static str = "LEGACY_AUTH_";
            const FLAG_PREFIX: &'static str = "legacy-";
        }
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            auth: ValidatorArgs<AuthEnv>,
            #[command(flatten)]
            legacy: ValidatorArgs<Legacy>,
        }
        let args = Args::try_parse_from([
            "svc",
            "--authority",
            "https://new.example",
            "--legacy-jwks-uri",
            "https://old.example/jwks",
            "--legacy-issuer",
            "https://old.example",
            "--legacy-token-profile",
            "generic",
            "--allowed-client-ids",
            "a,b",
        ])
        .unwrap();
        assert_eq!(args.auth.settings.allowed_client_ids, ["a", "b"]);
        assert_eq!(args.legacy.settings.token_profile, ProfileName::Generic);
        assert!(args.auth.into_config().is_ok());
        assert!(args.legacy.into_config().is_ok());
        // Neither group's source is optional.
        let e = Args::try_parse_from(["svc", "--authority", "https://new.example"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("LEGACY_AUTH_AUTHORITY") || e.contains("legacy-authority"),
            "{e}"
        );
    }
}
