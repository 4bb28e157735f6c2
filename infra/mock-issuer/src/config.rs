//! Issuer configuration: a TOML file parsed once at start into typed values.
//!
//! The model follows AWS Cognito: *resource servers* own scopes (`MyService` owns
//! `weather_read`, giving the scope `MyService/weather_read`), and *clients* have a secret
//! and a list of scopes they may ask for. A client that asks for no scope gets all of its
//! allowed scopes (Cognito's behaviour). Every validation error names the TOML key that is
//! wrong, so a broken file stops the issuer with a message that says where to look.
//!
//! ```toml
//! profile = "cognito"            # or "rfc9068"
//! algorithm = "RS256"            # or "ES256"
//! token_lifetime_secs = 3600
//! cors_allowed_origins = ["http://127.0.0.1:7062"]
//!
//! [[resource_servers]]
//! identifier = "MyService"
//! scopes = ["weather_read", "weather_write"]
//!
//! [[clients]]
//! client_id = "my-bff"
//! client_secret_env = "AUTH_SERVER_MYBFF_CLIENT_SECRET"   # or client_secret = "..."
//! allowed_scopes = ["MyService/weather_read"]
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keys::Algorithm;

/// The shape of the access tokens the issuer mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenProfile {
    /// AWS Cognito access tokens: header `{alg, kid}`, `token_use: "access"`, no `aud`.
    #[default]
    Cognito,
    /// RFC 9068 JWT access tokens: header `typ: at+jwt`, `aud` = the resource server.
    Rfc9068,
}

/// How the `scope` claim is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeFormat {
    /// One space-separated string (RFC 9068, Cognito).
    #[default]
    String,
    /// A JSON array of strings (IdentityServer / Duende's default).
    Array,
}

/// Why the configuration was refused. Every variant names the key that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read issuer config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not have the expected shape.
    #[error("invalid issuer config {origin}: {message}")]
    Syntax {
        /// The file (or "inline").
        origin: String,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value is present but not acceptable.
    #[error("invalid issuer config: `{key}`: {reason}")]
    Invalid {
        /// The TOML key, e.g. `clients[0].allowed_scopes[1]`.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    issuer: Option<String>,
    path_prefix: Option<String>,
    #[serde(default)]
    scope_format: ScopeFormat,
    #[serde(default)]
    profile: TokenProfile,
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default = "default_lifetime_secs")]
    token_lifetime_secs: u64,
    key_file: Option<PathBuf>,
    #[serde(default)]
    cors_allowed_origins: Vec<String>,
    #[serde(default)]
    resource_servers: Vec<RawResourceServer>,
    #[serde(default)]
    clients: Vec<RawClient>,
}

fn default_lifetime_secs() -> u64 {
    3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResourceServer {
    identifier: String,
    audience: Option<String>,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    client_id: String,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    #[serde(default)]
    allowed_scopes: Vec<String>,
    #[serde(default = "default_grant_types")]
    allowed_grant_types: Vec<String>,
}

fn default_grant_types() -> Vec<String> {
    vec!["client_credentials".to_owned()]
}

/// A resource server (an API) and the scopes it defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer {
    /// Identifier, the prefix of its scopes (e.g. `MyService`).
    pub identifier: String,
    /// The `aud` of rfc9068 tokens that carry its scopes (default: the identifier), e.g.
    /// `api1` for an IdentityServer-style API resource.
    pub audience: Option<String>,
    /// Scope names without the identifier prefix (e.g. `weather_read`).
    pub scopes: Vec<String>,
}

impl ResourceServer {
    /// The `aud` value for this server.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.identifier)
    }

    /// The full scope values this server defines (`MyService/weather_read`, ...).
    pub fn full_scopes(&self) -> impl Iterator<Item = String> + '_ {
        self.scopes
            .iter()
            .map(move |s| format!("{}/{}", self.identifier, s))
    }
}

/// A client allowed to use the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client id.
    pub client_id: String,
    /// The client secret (never printed by `Debug`).
    pub client_secret: String,
    /// Full scope values the client may request.
    pub allowed_scopes: Vec<String>,
    /// Grant types the client may use; only `client_credentials` is served.
    pub allowed_grant_types: Vec<String>,
}

impl ClientConfig {
    /// A client that may use client credentials with the given scopes.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        allowed_scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ClientConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            allowed_scopes: allowed_scopes.into_iter().map(Into::into).collect(),
            allowed_grant_types: default_grant_types(),
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("allowed_scopes", &self.allowed_scopes)
            .field("allowed_grant_types", &self.allowed_grant_types)
            .finish()
    }
}

/// The issuer's whole configuration.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The `iss` value and base URL of every endpoint. `None`: `http://{bound address}`.
    pub issuer: Option<String>,
    /// Serve discovery and the JWKS under this path (e.g. `/eu-west-1_AbCdEf123`, as
    /// Cognito serves them under the user pool id); the default issuer is then
    /// `http://{bound address}{path_prefix}`. The token endpoint stays at the root, as
    /// Cognito's lives on the pool's domain.
    pub path_prefix: Option<String>,
    /// How the `scope` claim is written.
    pub scope_format: ScopeFormat,
    /// Token shape.
    pub profile: TokenProfile,
    /// Signing algorithm.
    pub algorithm: Algorithm,
    /// Access token lifetime.
    pub token_lifetime: Duration,
    /// PEM private key; `None`: a key is generated at start.
    pub key_file: Option<PathBuf>,
    /// Browser origins allowed to call the endpoints (Swagger UI's "Authorize").
    pub cors_allowed_origins: Vec<String>,
    /// APIs and their scopes.
    pub resource_servers: Vec<ResourceServer>,
    /// Clients.
    pub clients: Vec<ClientConfig>,
}

impl IssuerConfig {
    /// A configuration with no clients or resource servers, default profile and lifetime.
    pub fn new(profile: TokenProfile) -> Self {
        IssuerConfig {
            issuer: None,
            path_prefix: None,
            scope_format: ScopeFormat::default(),
            profile,
            algorithm: Algorithm::default(),
            token_lifetime: Duration::from_secs(default_lifetime_secs()),
            key_file: None,
            cors_allowed_origins: Vec::new(),
            resource_servers: Vec::new(),
            clients: Vec::new(),
        }
    }

    /// Adds a resource server.
    pub fn with_resource_server(
        mut self,
        identifier: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.resource_servers.push(ResourceServer {
            audience: None,
            identifier: identifier.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Serves discovery and the JWKS under `prefix` (see [`IssuerConfig::path_prefix`]).
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Writes the `scope` claim as `format`.
    pub fn with_scope_format(mut self, format: ScopeFormat) -> Self {
        self.scope_format = format;
        self
    }

    /// Adds a client.
    pub fn with_client(mut self, client: ClientConfig) -> Self {
        self.clients.push(client);
        self
    }

    /// Reads and validates a TOML file; `client_secret_env` is looked up in the process
    /// environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml(&text, &path.display().to_string(), |name| {
            std::env::var(name).ok()
        })?;
        // A relative key file is relative to the config file, not to the working directory.
        if let (Some(key), Some(dir)) = (&config.key_file, path.parent())
            && key.is_relative()
        {
            config.key_file = Some(dir.join(key));
        }
        Ok(config)
    }

    /// Parses and validates TOML text. `env` resolves `client_secret_env` names.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut clients = Vec::with_capacity(raw.clients.len());
        for (i, c) in raw.clients.into_iter().enumerate() {
            let secret = match (c.client_secret, c.client_secret_env) {
                (Some(s), None) => s,
                (None, Some(var)) => env(&var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    invalid(
                        format!("clients[{i}].client_secret_env"),
                        format!("environment variable {var} is not set or empty"),
                    )
                })?,
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("clients[{i}]"),
                        "set either client_secret or client_secret_env, not both",
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        format!("clients[{i}].client_secret"),
                        "missing: set client_secret or client_secret_env",
                    ));
                }
            };
            clients.push(ClientConfig {
                client_id: c.client_id,
                client_secret: secret,
                allowed_scopes: c.allowed_scopes,
                allowed_grant_types: c.allowed_grant_types,
            });
        }
        let config = IssuerConfig {
            issuer: raw.issuer,
            path_prefix: raw.path_prefix,
            scope_format: raw.scope_format,
            profile: raw.profile,
            algorithm: raw.algorithm,
            token_lifetime: Duration::from_secs(raw.token_lifetime_secs),
            key_file: raw.key_file,
            cors_allowed_origins: raw.cors_allowed_origins,
            resource_servers: raw
                .resource_servers
                .into_iter()
                .map(|r| ResourceServer {
                    audience: r.audience,
                    identifier: r.identifier,
                    scopes: r.scopes,
                })
                .collect(),
            clients,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the cross-field rules. Called by the parsers; call it after building a
    /// configuration in code (the issuer's start does).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            let ok = (issuer.starts_with("http://") || issuer.starts_with("https://"))
                && !issuer.ends_with('/');
            if !ok {
                return Err(invalid(
                    "issuer",
                    "must be an http(s) URL without a trailing slash",
                ));
            }
        }
        if let Some(prefix) = &self.path_prefix {
            let ok = prefix.len() > 1
                && prefix.starts_with('/')
                && !prefix.ends_with('/')
                && prefix[1..].split('/').all(|segment| {
                    !segment.is_empty()
                        && segment
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                });
            if !ok {
                return Err(invalid(
                    "path_prefix",
                    "must be a path such as /eu-west-1_AbCdEf123 (leading slash, no trailing \
                     slash, letters, digits and -._~ only)",
                ));
            }
        }
        let secs = self.token_lifetime.as_secs();
        if !(1..=86_400).contains(&secs) {
            return Err(invalid(
                "token_lifetime_secs",
                "must be between 1 and 86400 seconds",
            ));
        }
        for (i, origin) in self.cors_allowed_origins.iter().enumerate() {
            if origin == "*" || origin.ends_with('/') || !origin.starts_with("http") {
                return Err(invalid(
                    format!("cors_allowed_origins[{i}]"),
                    "must be an exact origin such as http://127.0.0.1:7062 (no wildcard, no path)",
                ));
            }
        }
        let mut defined = BTreeSet::new();
        for (i, rs) in self.resource_servers.iter().enumerate() {
            if rs.identifier.is_empty() || rs.identifier.contains(char::is_whitespace) {
                return Err(invalid(
                    format!("resource_servers[{i}].identifier"),
                    "must be non-empty and contain no whitespace",
                ));
            }
            for (j, s) in rs.scopes.iter().enumerate() {
                if s.is_empty() || s.contains(char::is_whitespace) || s.contains('/') {
                    return Err(invalid(
                        format!("resource_servers[{i}].scopes[{j}]"),
                        "must be non-empty, without whitespace or '/'",
                    ));
                }
            }
            defined.extend(rs.full_scopes());
        }
        let mut ids = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            if c.client_id.is_empty() || c.client_id.chars().any(char::is_control) {
                return Err(invalid(
                    format!("clients[{i}].client_id"),
                    "must be non-empty and printable",
                ));
            }
            if !ids.insert(c.client_id.as_str()) {
                return Err(invalid(
                    format!("clients[{i}].client_id"),
                    format!("duplicate client id {:?}", c.client_id),
                ));
            }
            if c.client_secret.len() < 8 {
                return Err(invalid(
                    format!("clients[{i}].client_secret"),
                    "must be at least 8 characters",
                ));
            }
            for (j, s) in c.allowed_scopes.iter().enumerate() {
                if !defined.contains(s) {
                    return Err(invalid(
                        format!("clients[{i}].allowed_scopes[{j}]"),
                        format!("scope {s:?} is not defined by any resource server"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every scope the resource servers define, in configuration order.
    pub fn all_scopes(&self) -> Vec<String> {
        self.resource_servers
            .iter()
            .flat_map(ResourceServer::full_scopes)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        profile = "rfc9068"
        [[resource_servers]]
        identifier = "MyService"
        scopes = ["weather_read"]
        [[clients]]
        client_id = "a"
        client_secret_env = "SECRET_A"
        allowed_scopes = ["MyService/weather_read"]
    "#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn secret_from_environment() {
        let c = IssuerConfig::from_toml(GOOD, "t", |n| {
            (n == "SECRET_A").then(|| "s3cret-value".to_owned())
        })
        .unwrap();
        assert_eq!(c.clients[0].client_secret, "s3cret-value");
        assert_eq!(c.profile, TokenProfile::Rfc9068);
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (GOOD, "clients[0].client_secret_env"),
            (
                "[[clients]]\nclient_id = \"a\"\nclient_secret = \"long-enough\"\nallowed_scopes = [\"X/y\"]",
                "clients[0].allowed_scopes[0]",
            ),
            ("token_lifetime_secs = 0", "token_lifetime_secs"),
            ("issuer = \"http://x/\"", "issuer"),
            ("path_prefix = \"pool\"", "path_prefix"),
            ("path_prefix = \"/pool/\"", "path_prefix"),
            ("path_prefix = \"/a b\"", "path_prefix"),
            ("scope_format = \"list\"", "scope_format"),
            ("cors_allowed_origins = [\"*\"]", "cors_allowed_origins[0]"),
        ];
        for (text, key) in cases {
            let text: &str = text;
            let err = IssuerConfig::from_toml(text, "t", no_env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err:?} should name {key}");
        }
        let err = IssuerConfig::from_toml("bogus = 1", "t", no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        let err = IssuerConfig::from_toml("profile = \"azure\"", "t", no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("profile"), "{err}");
    }
}
