//! Settings of a client-credentials client as a service configures it: where tokens come
//! from, who the client is, what it asks for. Checked into a [`ClientDefinition`] with
//! errors that name the setting; [`ClientDefinition::client`] makes the
//! [`ClientCredentialsClient`] (discovering the token endpoint if an authority is set).
//!
//! - with the `clap` feature, [`ClientArgs`] is a `clap::Args` group to flatten into the
//!   service's arguments; the service chooses the environment-variable names through
//!   [`EnvPrefix`] (my-bff keeps the seed articles' `AUTH_SERVER_TOKEN_ENDPOINT_URL`,
//!   `AUTH_SERVER_MYBFF_CLIENT_ID`, ...);
//! - with the `serde` feature, [`ClientSettings`] deserializes from a configuration file.
//!
//! Each setting is written once, as a field of [`ClientSettings`] (doc, flag, parser);
//! `crate::settings` applies the service's prefixes.

// The fields' doc comments are also their --help texts (clap's derive): they show URLs
// and placeholders as an operator types them, not as rustdoc links.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;
use std::time::Duration;

use super::credentials::ClientCredentialsClient;
use super::error::TokenError;
use super::token_endpoint::RetryPolicy;
use crate::endpoint_auth::{ClientCredential, ClientId, ClientSecret, CredentialStyle};
use crate::jose::SigningKey;
use crate::scope::ScopeSet;
use crate::settings::credential::{CertificateSettings, KeySettings, credential};
use crate::settings::{HttpUrl, SettingsError, setting_name};

/// The settings of the issuer, named with [`EnvPrefix::ISSUER_PREFIX`]; the others are the
/// client's own ([`EnvPrefix::CLIENT_PREFIX`]).
const ISSUER_SETTINGS: [&str; 5] = [
    "token_endpoint_url",
    "authority",
    "protected_resource",
    "trusted_issuers",
    "allow_insecure_http",
];

/// What an operator sets for one client. See the module documentation. As a clap group
/// (through [`ClientArgs`]) each field is a flag and a variable; a field's name in
/// backquotes in these docs becomes its variable in `--help`.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct ClientSettings {
    /// The issuer's token endpoint (Cognito:
    /// https://DOMAIN.auth.REGION.amazoncognito.com/oauth2/token).
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "token-endpoint",
            env,
            required_unless_present_any = ["authority", "protected_resource"],
            conflicts_with_all = ["authority", "protected_resource"]
        )
    )]
    pub token_endpoint_url: Option<HttpUrl>,
    /// Or an issuer URL whose discovery document gives the token endpoint.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub authority: Option<HttpUrl>,
    /// Or the URL of the API to call: its OAuth 2.0 protected resource metadata (RFC 9728,
    /// /.well-known/oauth-protected-resource) names the issuer, whose discovery document
    /// gives the token endpoint. The document must name this exact URL. The client's
    /// credential goes only to an issuer it trusts: `authority` (which must be listed) or
    /// one of `trusted_issuers`; without either, only private_key_jwt with the default
    /// audience may be used.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub protected_resource: Option<HttpUrl>,
    /// Comma-separated issuers the client may send its credential to, with
    /// `protected_resource`: the first of the API's authorization servers that is listed
    /// here is used.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            env,
            value_delimiter = ',',
            conflicts_with = "authority",
            requires = "protected_resource"
        )
    )]
    pub trusted_issuers: Vec<HttpUrl>,
    /// The client id.
    #[cfg_attr(feature = "clap", arg(long, env, required = true))]
    pub client_id: Option<String>,
    /// The client secret (never printed).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "secret"))]
    #[cfg_attr(
        feature = "clap",
        arg(long, env, hide_env_values = true, conflicts_with = "client_secret_file", value_parser = cli::secret)
    )]
    pub client_secret: Option<ClientSecret>,
    /// Or a file holding the client secret (trailing newline ignored).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_secret_file: Option<PathBuf>,
    /// Or authenticate with private_key_jwt: a file with the private key (PEM: PKCS#8,
    /// PKCS#1 RSA or SEC1 EC; or a private JWK), read at start. RS256/PS256, ES256, EdDSA.
    /// Exactly one of the secret, this, or the assertion file.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_assertion_key_file: Option<PathBuf>,
    /// The kid of the assertion key, as registered at the issuer (default: the JWK's kid,
    /// else none).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_assertion_key_id: Option<String>,
    /// The aud of the assertions (default: the issuer when the authority is set, else the
    /// token endpoint URL).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_assertion_audience: Option<String>,
    /// Signature algorithm of an RSA assertion key: RS256 (default), PS256, ... EC and
    /// Ed25519 keys imply theirs.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_assertion_alg: Option<String>,
    /// Or a JWT that the platform writes and rotates (Kubernetes projected service-account
    /// token, SPIFFE JWT-SVID), read again for every token request.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_assertion_file: Option<PathBuf>,
    /// The client_assertion_type of that file's JWT (default
    /// urn:ietf:params:oauth:client-assertion-type:jwt-bearer).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_assertion_type: Option<String>,
    /// Or authenticate with mutual TLS (RFC 8705, tls_client_auth): the client certificate
    /// (PEM), read again for every token request; tokens are then bound to it.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_certificate_file: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_certificate_key_file: Option<PathBuf>,
    /// A CA (PEM) the token endpoint's certificate may chain to, beside the system's.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub client_certificate_ca_file: Option<PathBuf>,
    /// Bind the tokens to a key with DPoP (RFC 9449): a file with the private key (PEM or
    /// JWK), or `generate` for a key made at start (then every replica has its own key and
    /// its own tokens). Unset: bearer tokens.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub dpop_key_file: Option<String>,
    /// Space-separated scopes to request (default: what the issuer grants the client).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub scope: Option<String>,
    /// RFC 8707 resource indicator to send, if any.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub resource: Option<String>,
    /// How to send the credentials: basic (HTTP Basic, default) or body (form body).
    #[cfg_attr(
        feature = "clap",
        arg(long, env, value_parser = ["basic", "body"], default_value = "basic")
    )]
    pub credential_style: Option<String>,
    /// Retries of a failed token request (5xx, 429, network; never a 4xx refusal), with
    /// exponential backoff. Default 3, at most 10.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub token_request_retries: Option<usize>,
    /// Timeout of one token request attempt, in seconds (default 5; 1 to 300).
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub token_request_timeout_secs: Option<u64>,
    /// Bound on a whole token request, retries included, in seconds (default 10; at least
    /// the attempt timeout, at most 600): a caller waits no longer for a token.
    #[cfg_attr(feature = "clap", arg(long, env))]
    pub token_request_budget_secs: Option<u64>,
    /// Allow a token endpoint or authority on plain http to a non-loopback host. Off:
    /// https, or http to localhost, 127.0.0.0/8 or ::1 only, since the client secret
    /// travels in the request. Test networks only.
    #[cfg_attr(
        feature = "clap",
        arg(long, env, action = clap::ArgAction::Set, default_value_t = Self::default().allow_insecure_http)
    )]
    pub allow_insecure_http: bool,
}

#[cfg(feature = "serde")]
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ClientSecret>, D::Error> {
    let value: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(value.map(ClientSecret::new))
}

/// Where the token endpoint comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// Given directly.
    Endpoint(String),
    /// Discovered from this authority at start.
    Authority(String),
    /// Found at start through the protected resource metadata (RFC 9728) of `resource`:
    /// the first of its authorization servers that is among `trusted_issuers` is
    /// discovered as [`Authority`](Self::Authority) is (see
    /// [`ClientCredentialsClient::from_protected_resource`]).
    ProtectedResource {
        /// The resource identifier (the API's URL), exactly as its metadata names it.
        resource: String,
        /// The authorization servers the client trusts with its credential.
        trusted_issuers: Vec<String>,
    },
}

/// A checked client definition: everything but the discovery that an authority needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientDefinition {
    /// Token endpoint or authority.
    pub token_source: TokenSource,
    /// The client id.
    pub client_id: ClientId,
    /// How the client authenticates.
    pub credential: ClientCredential,
    /// The DPoP key its tokens are bound to, if any.
    pub dpop: Option<SigningKey>,
    /// Scopes to request.
    pub scope: ScopeSet,
    /// Resource indicator.
    pub resource: Option<String>,
    /// How a secret is sent.
    pub credential_style: CredentialStyle,
    /// Plain http to a non-loopback issuer is allowed.
    pub allow_insecure_http: bool,
    /// Retries and timeouts of the token requests.
    pub retry: RetryPolicy,
}

impl ClientSettings {
    /// Checks the settings (reading the secret file if one is named). Errors name the
    /// setting: the issuer's settings as `issuer_prefix` + name (`AUTH_SERVER_AUTHORITY`),
    /// the client's as `client_prefix` + name (`AUTH_SERVER_MYBFF_CLIENT_ID`); by field
    /// name when the prefixes are empty. They never repeat the secret.
    pub fn into_definition_named(
        self,
        issuer_prefix: &str,
        client_prefix: &str,
    ) -> Result<ClientDefinition, SettingsError> {
        // One name for each setting, its prefix chosen by whose setting it is.
        let name = |field: &str| {
            let prefix = if ISSUER_SETTINGS.contains(&field) {
                issuer_prefix
            } else {
                client_prefix
            };
            setting_name(prefix, field)
        };
        let fail = |setting: String, reason: String| SettingsError { setting, reason };
        let insecure = self.allow_insecure_http;
        let optin = name("allow_insecure_http");
        let check = |setting: String, url: &str| {
            crate::settings::transport_allowed(url, insecure, &optin).map_err(|e| fail(setting, e))
        };
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let trusted: Vec<String> = self.trusted_issuers.into_iter().map(String::from).collect();
        if !trusted.is_empty() && self.protected_resource.is_none() {
            return Err(fail(
                name("trusted_issuers"),
                format!("only used with {}", name("protected_resource")),
            ));
        }
        let token_source = match (
            self.token_endpoint_url.map(String::from),
            self.authority.map(String::from),
            self.protected_resource.map(String::from),
        ) {
            (Some(e), None, None) => {
                check(name("token_endpoint_url"), &e)?;
                TokenSource::Endpoint(e)
            }
            (None, Some(a), None) => {
                check(name("authority"), &a)?;
                TokenSource::Authority(a)
            }
            (None, authority, Some(resource)) => {
                check(name("protected_resource"), &resource)?;
                crate::discovery::resource_metadata_url(&resource)
                    .map_err(|reason| fail(name("protected_resource"), reason))?;
                let trusted_issuers = match authority {
                    Some(a) if !trusted.is_empty() => {
                        return Err(fail(
                            name("trusted_issuers"),
                            format!("set it or {a:?} in {}, not both", name("authority")),
                        ));
                    }
                    Some(a) => {
                        check(name("authority"), &a)?;
                        vec![a]
                    }
                    None => {
                        for t in &trusted {
                            check(name("trusted_issuers"), t)?;
                        }
                        trusted
                    }
                };
                TokenSource::ProtectedResource {
                    resource,
                    trusted_issuers,
                }
            }
            _ => {
                return Err(fail(
                    name("token_endpoint_url"),
                    format!(
                        "set exactly one of {}, {} or {} (or {} with {})",
                        name("token_endpoint_url"),
                        name("authority"),
                        name("protected_resource"),
                        name("protected_resource"),
                        name("authority"),
                    ),
                ));
            }
        };
        let client_id = non_empty(self.client_id)
            .ok_or_else(|| fail(name("client_id"), "required, and not empty".into()))?;
        let credential = credential(
            &name,
            self.client_secret,
            self.client_secret_file,
            KeySettings {
                file: self.client_assertion_key_file,
                id: non_empty(self.client_assertion_key_id),
                audience: non_empty(self.client_assertion_audience),
                alg: non_empty(self.client_assertion_alg)
                    .map(|alg| crate::jose::parse_alg(alg.trim()).map_err(|e| e.to_string())),
            },
            self.client_assertion_file,
            non_empty(self.client_assertion_type),
            Some(CertificateSettings {
                file: self.client_certificate_file,
                key_file: self.client_certificate_key_file,
                ca_file: self.client_certificate_ca_file,
            }),
        )?;
        if let TokenSource::ProtectedResource {
            trusted_issuers, ..
        } = &token_source
            && trusted_issuers.is_empty()
            && credential.replayable_elsewhere()
        {
            return Err(fail(
                name("protected_resource"),
                format!(
                    "the client's credential would go to whichever authorization server the \
                     API's document names (RFC 9728 section 7): set {} to the issuer, or list \
                     the issuers it may go to in {}",
                    name("authority"),
                    name("trusted_issuers"),
                ),
            ));
        }
        let dpop = match non_empty(self.dpop_key_file) {
            None => None,
            Some(word) if word.trim() == "generate" => {
                Some(SigningKey::generate_es256().map_err(|e| {
                    fail(name("dpop_key_file"), format!("no key could be made: {e}"))
                })?)
            }
            Some(path) => Some(
                SigningKey::from_file(std::path::Path::new(path.trim()), None)
                    .map_err(|e| fail(name("dpop_key_file"), e.to_string()))?,
            ),
        };
        let scope = ScopeSet::parse(self.scope.as_deref().unwrap_or(""))
            .map_err(|e| fail(name("scope"), e.to_string()))?;
        let credential_style = match self.credential_style.as_deref().map(str::trim) {
            None | Some("") | Some("basic") => CredentialStyle::BasicHeader,
            Some("body") => CredentialStyle::PostBody,
            Some(other) => {
                return Err(fail(
                    name("credential_style"),
                    format!("{other:?} is neither basic nor body"),
                ));
            }
        };
        let mut retry = RetryPolicy::default();
        if let Some(retries) = self.token_request_retries {
            if retries > 10 {
                return Err(fail(
                    name("token_request_retries"),
                    format!("{retries} is more than 10"),
                ));
            }
            retry.max_retries = retries;
        }
        if let Some(secs) = self.token_request_timeout_secs {
            if !(1..=300).contains(&secs) {
                return Err(fail(
                    name("token_request_timeout_secs"),
                    format!("{secs} is not between 1 and 300"),
                ));
            }
            retry.attempt_timeout = Duration::from_secs(secs);
            // A longer attempt than the default budget gets a budget that fits it.
            retry.total_budget = retry.total_budget.max(retry.attempt_timeout);
        }
        if let Some(secs) = self.token_request_budget_secs {
            if !(1..=600).contains(&secs) || Duration::from_secs(secs) < retry.attempt_timeout {
                return Err(fail(
                    name("token_request_budget_secs"),
                    format!(
                        "{secs} is not between the attempt timeout ({} s) and 600",
                        retry.attempt_timeout.as_secs()
                    ),
                ));
            }
            retry.total_budget = Duration::from_secs(secs);
        }
        Ok(ClientDefinition {
            token_source,
            client_id: ClientId::new(client_id),
            credential,
            dpop,
            scope,
            resource: non_empty(self.resource),
            credential_style,
            allow_insecure_http: insecure,
            retry,
        })
    }
}

impl ClientDefinition {
    /// A definition with no scope, resource or DPoP, a secret in HTTP Basic and the
    /// transport policy's default (https, or loopback http).
    pub fn new(
        token_source: TokenSource,
        client_id: ClientId,
        credential: impl Into<ClientCredential>,
    ) -> Self {
        ClientDefinition {
            token_source,
            client_id,
            credential: credential.into(),
            dpop: None,
            scope: ScopeSet::new(),
            resource: None,
            credential_style: CredentialStyle::default(),
            allow_insecure_http: false,
            retry: RetryPolicy::default(),
        }
    }

    /// The client, discovering the token endpoint first when an authority is set
    /// (`timeout` bounds the discovery request).
    pub async fn client(&self, timeout: Duration) -> Result<ClientCredentialsClient, TokenError> {
        let client = match &self.token_source {
            TokenSource::Endpoint(url) => ClientCredentialsClient::new(
                url.clone(),
                self.client_id.clone(),
                self.credential.clone(),
            ),
            TokenSource::Authority(authority) => {
                ClientCredentialsClient::from_authority(
                    authority,
                    self.client_id.clone(),
                    self.credential.clone(),
                    timeout,
                    self.allow_insecure_http,
                )
                .await?
            }
            TokenSource::ProtectedResource {
                resource,
                trusted_issuers,
            } => {
                ClientCredentialsClient::from_protected_resource(
                    resource,
                    trusted_issuers,
                    self.client_id.clone(),
                    self.credential.clone(),
                    timeout,
                    self.allow_insecure_http,
                )
                .await?
            }
        };
        let mut client = client
            .with_scope(self.scope.clone())
            .with_credential_style(self.credential_style)
            .with_retry_policy(self.retry);
        client.resource = self.resource.clone();
        if let Some(key) = &self.dpop {
            client = client.with_dpop(key.clone());
        }
        Ok(client)
    }
}

#[cfg(feature = "clap")]
pub use self::cli::ClientArgs;
#[cfg(all(feature = "clap", feature = "redis"))]
pub use self::cli::TokenCacheArgs;

#[cfg(feature = "clap")]
mod cli {
    use std::marker::PhantomData;

    use clap::{ArgMatches, Args, Command, FromArgMatches};

    use super::{ClientDefinition, ClientSettings, ISSUER_SETTINGS};
    use crate::client::ClientSecret;
    use crate::settings::EnvPrefix;
    use crate::settings::{SettingsError, with_prefix};

    /// [`ClientSettings`] as a `clap::Args` group (feature `clap`), with the variable names
    /// of `E`. Flatten it into the service's arguments; `--help` lists the variables and
    /// hides the secret's value.
    #[derive(Debug, Clone)]
    pub struct ClientArgs<E: EnvPrefix> {
        /// The parsed settings.
        pub settings: ClientSettings,
        names: PhantomData<E>,
    }

    impl<E: EnvPrefix> ClientArgs<E> {
        /// Checks the settings and reads the secret file; errors name the variable.
        pub fn into_definition(self) -> Result<ClientDefinition, SettingsError> {
            self.settings
                .into_definition_named(E::ISSUER_PREFIX, E::CLIENT_PREFIX)
        }
    }

    impl<E: EnvPrefix> Args for ClientArgs<E> {
        fn augment_args(cmd: Command) -> Command {
            with_prefix(ClientSettings::augment_args(cmd), "ClientSettings", |id| {
                if ISSUER_SETTINGS.contains(&id) {
                    E::ISSUER_PREFIX
                } else {
                    E::CLIENT_PREFIX
                }
            })
        }

        fn augment_args_for_update(cmd: Command) -> Command {
            Self::augment_args(cmd)
        }
    }

    impl<E: EnvPrefix> FromArgMatches for ClientArgs<E> {
        fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
            Ok(ClientArgs {
                settings: ClientSettings::from_arg_matches(matches)?,
                names: PhantomData,
            })
        }

        fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
            self.settings.update_from_arg_matches(matches)
        }
    }

    pub(super) fn secret(value: &str) -> Result<ClientSecret, std::convert::Infallible> {
        Ok(ClientSecret::new(value))
    }

    /// [`TokenCacheSettings`](crate::client::TokenCacheSettings) as a `clap::Args` group
    /// (features `clap` and `redis`), named after `E::TOKEN_CACHE_PREFIX`. `--help` hides
    /// the URL's and the key's values.
    #[cfg(feature = "redis")]
    #[derive(Debug, Clone)]
    pub struct TokenCacheArgs<E: EnvPrefix> {
        /// The parsed settings.
        pub settings: crate::client::TokenCacheSettings,
        names: PhantomData<E>,
    }

    #[cfg(feature = "redis")]
    impl<E: EnvPrefix> TokenCacheArgs<E> {
        /// Checks the settings and reads the key file: `None` without a Redis URL; errors
        /// name the variable.
        pub fn into_config(self) -> Result<Option<crate::client::RedisCacheConfig>, SettingsError> {
            self.settings.into_config_named(E::TOKEN_CACHE_PREFIX)
        }
    }

    #[cfg(feature = "redis")]
    impl<E: EnvPrefix> Args for TokenCacheArgs<E> {
        fn augment_args(cmd: Command) -> Command {
            let cmd = crate::client::TokenCacheSettings::augment_args(cmd);
            with_prefix(cmd, "TokenCacheSettings", |_| E::TOKEN_CACHE_PREFIX)
        }

        fn augment_args_for_update(cmd: Command) -> Command {
            Self::augment_args(cmd)
        }
    }

    #[cfg(feature = "redis")]
    impl<E: EnvPrefix> FromArgMatches for TokenCacheArgs<E> {
        fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
            Ok(TokenCacheArgs {
                settings: crate::client::TokenCacheSettings::from_arg_matches(matches)?,
                names: PhantomData,
            })
        }

        fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
            self.settings.update_from_arg_matches(matches)
        }
    }
}

#[cfg(test)]
mod tests;
