//! my-bff configuration: environment variables (or flags), parsed once at start. Any error
//! names the variable to fix. The names are the seed articles'.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueEnum};
use shared_auth::ScopeSet;
use shared_auth::client::{
    CacheEncryptionKey, ClientId, ClientSecret, CredentialStyle, RedisCacheConfig,
};

/// A backend-for-frontend (reference): GET /weatherforecast calls my-service with a
/// client-credentials access token that it gets, caches and renews.
/// Swagger UI: /swagger-ui/, OpenAPI: /api-docs/openapi.json.
#[derive(Debug, Parser)]
#[command(name = "my-bff", version)]
#[command(group(ArgGroup::new("issuer").required(true).args(["token_endpoint", "authority"])))]
#[command(group(ArgGroup::new("secret").required(true).args(["client_secret", "client_secret_file"])))]
pub struct Args {
    /// The issuer's token endpoint (Cognito: `https://DOMAIN.auth.REGION.amazoncognito.com/oauth2/token`).
    #[arg(long, env = "AUTH_SERVER_TOKEN_ENDPOINT_URL", value_name = "AUTH_SERVER_TOKEN_ENDPOINT_URL", value_parser = http_url)]
    pub token_endpoint: Option<String>,

    /// Or an issuer URL whose discovery document gives the token endpoint.
    #[arg(long, env = "AUTH_SERVER_AUTHORITY", value_name = "AUTH_SERVER_AUTHORITY", value_parser = http_url)]
    pub authority: Option<String>,

    /// This BFF's client id.
    #[arg(long, env = "AUTH_SERVER_MYBFF_CLIENT_ID", value_name = "AUTH_SERVER_MYBFF_CLIENT_ID", value_parser = non_empty)]
    pub client_id: String,

    /// This BFF's client secret.
    #[arg(
        long,
        env = "AUTH_SERVER_MYBFF_CLIENT_SECRET",
        value_name = "AUTH_SERVER_MYBFF_CLIENT_SECRET",
        hide_env_values = true,
        value_parser = secret
    )]
    pub client_secret: Option<Secret>,

    /// Or a file holding the client secret (trailing newline ignored).
    #[arg(
        long,
        env = "AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE",
        value_name = "AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE"
    )]
    pub client_secret_file: Option<PathBuf>,

    /// Space-separated scopes to request (default: what the issuer grants the client).
    #[arg(long, env = "AUTH_SERVER_MYBFF_SCOPE", value_name = "AUTH_SERVER_MYBFF_SCOPE", value_parser = scopes, default_value = "")]
    pub scope: ScopeSet,

    /// RFC 8707 resource indicator to send, if any.
    #[arg(
        long,
        env = "AUTH_SERVER_MYBFF_RESOURCE",
        value_name = "AUTH_SERVER_MYBFF_RESOURCE"
    )]
    pub resource: Option<String>,

    /// How to send the credentials: basic (HTTP Basic, default) or body (form body).
    #[arg(
        long,
        env = "AUTH_SERVER_MYBFF_CREDENTIAL_STYLE",
        value_name = "AUTH_SERVER_MYBFF_CREDENTIAL_STYLE",
        value_enum,
        default_value = "basic"
    )]
    pub credential_style: Style,

    /// Base URL of my-service.
    #[arg(long, env = "MY_SERVICE_BASE_URL", value_name = "MY_SERVICE_BASE_URL", value_parser = http_url)]
    pub my_service_base_url: String,

    /// Timeout of each call to my-service, in seconds.
    #[arg(
        long,
        env = "MY_SERVICE_TIMEOUT_SECS",
        value_name = "MY_SERVICE_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub my_service_timeout_secs: u64,

    /// Share tokens between replicas through this Redis: `redis://[user:password@]host[:port][/db]`,
    /// or rediss:// for TLS. Unset: each process caches its own tokens.
    #[arg(
        long,
        env = "AUTH_TOKEN_CACHE_REDIS_URL",
        value_name = "AUTH_TOKEN_CACHE_REDIS_URL",
        hide_env_values = true,
        value_parser = secret
    )]
    pub token_cache_redis_url: Option<Secret>,

    /// Key that seals token cache entries in Redis (AES-256-GCM): 32 bytes, base64
    /// (`openssl rand -base64 32`). Same value on every replica. Unset: entries are stored
    /// in clear, with a warning.
    #[arg(
        long,
        env = "AUTH_TOKEN_CACHE_KEY",
        value_name = "AUTH_TOKEN_CACHE_KEY",
        hide_env_values = true,
        value_parser = secret
    )]
    pub token_cache_key: Option<Secret>,

    /// Or a file holding that key.
    #[arg(
        long,
        env = "AUTH_TOKEN_CACHE_KEY_FILE",
        value_name = "AUTH_TOKEN_CACHE_KEY_FILE"
    )]
    pub token_cache_key_file: Option<PathBuf>,

    /// Prefix of the Redis keys (one Redis can serve several deployments).
    #[arg(
        long,
        env = "AUTH_TOKEN_CACHE_KEY_PREFIX",
        value_name = "AUTH_TOKEN_CACHE_KEY_PREFIX",
        default_value = "shared-auth:"
    )]
    pub token_cache_key_prefix: String,

    /// Allow a token endpoint or authority on plain http to a non-loopback host. Off:
    /// https, or http to localhost, 127.0.0.0/8 or ::1 only, since the client secret travels
    /// in the request. Test networks only.
    #[arg(long, env = "AUTH_SERVER_ALLOW_INSECURE_HTTP", value_name = "AUTH_SERVER_ALLOW_INSECURE_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_insecure_http: bool,

    /// Listen address.
    #[arg(
        long = "bind",
        env = "BIND_ADDR",
        value_name = "BIND_ADDR",
        default_value = "127.0.0.1:7248"
    )]
    pub bind: SocketAddr,
}

/// A setting that must never be printed (a secret, or a URL that may hold a password):
/// `Debug` shows `[REDACTED]`, and there is no `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

fn secret(value: &str) -> Result<Secret, String> {
    Ok(Secret(value.to_owned()))
}

/// Credential styles, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Style {
    /// HTTP Basic (client_secret_basic).
    Basic,
    /// Form body (client_secret_post).
    Body,
}

fn http_url(value: &str) -> Result<String, String> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err("must be an http:// or https:// URL".to_owned())
    }
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

fn scopes(value: &str) -> Result<ScopeSet, String> {
    ScopeSet::parse(value).map_err(|e| e.to_string())
}

/// A configuration that parsed but does not hold together.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The variable to fix.
    pub variable: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Where the token endpoint comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// Given directly.
    Endpoint(String),
    /// Discovered from this authority at start.
    Authority(String),
}

/// The typed BFF configuration.
#[derive(Debug, Clone)]
pub struct BffConfig {
    /// Token endpoint or authority.
    pub token_source: TokenSource,
    /// Client id.
    pub client_id: ClientId,
    /// Client secret.
    pub client_secret: ClientSecret,
    /// Scopes to request.
    pub scope: ScopeSet,
    /// Resource indicator.
    pub resource: Option<String>,
    /// Credential style.
    pub credential_style: CredentialStyle,
    /// my-service base URL (no trailing slash).
    pub my_service_base_url: String,
    /// Timeout per call to my-service.
    pub my_service_timeout: Duration,
    /// The shared token cache, if one is configured.
    pub token_cache: Option<RedisCacheConfig>,
    /// Plain http to a non-loopback issuer is allowed (AUTH_SERVER_ALLOW_INSECURE_HTTP).
    pub allow_insecure_http: bool,
}

impl Args {
    /// Reads the secret file if one is named and builds the typed configuration.
    pub fn into_config(self) -> Result<BffConfig, ConfigError> {
        let token_cache = self.token_cache()?;
        let insecure = self.allow_insecure_http;
        let check = |variable: &'static str, url: &str| {
            shared_auth::check_url(url, insecure).map_err(|e| ConfigError {
                variable,
                reason: format!(
                    "{e}, or set AUTH_SERVER_ALLOW_INSECURE_HTTP=true on a test network"
                ),
            })
        };
        let token_source = match (self.token_endpoint, self.authority) {
            (Some(e), None) => {
                check("AUTH_SERVER_TOKEN_ENDPOINT_URL", &e)?;
                TokenSource::Endpoint(e)
            }
            (None, Some(a)) => {
                check("AUTH_SERVER_AUTHORITY", &a)?;
                TokenSource::Authority(a)
            }
            _ => {
                return Err(ConfigError {
                    variable: "AUTH_SERVER_TOKEN_ENDPOINT_URL",
                    reason:
                        "set exactly one of AUTH_SERVER_TOKEN_ENDPOINT_URL or AUTH_SERVER_AUTHORITY"
                            .into(),
                });
            }
        };
        let secret = match (self.client_secret, self.client_secret_file) {
            (Some(s), None) => s.0,
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map_err(|e| ConfigError {
                    variable: "AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE",
                    reason: format!("cannot read {}: {e}", path.display()),
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            _ => {
                return Err(ConfigError {
                    variable: "AUTH_SERVER_MYBFF_CLIENT_SECRET",
                    reason: "set exactly one of AUTH_SERVER_MYBFF_CLIENT_SECRET or AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE".into(),
                });
            }
        };
        if secret.is_empty() {
            return Err(ConfigError {
                variable: "AUTH_SERVER_MYBFF_CLIENT_SECRET",
                reason: "the client secret is empty".into(),
            });
        }
        if self.my_service_timeout_secs == 0 {
            return Err(ConfigError {
                variable: "MY_SERVICE_TIMEOUT_SECS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(BffConfig {
            token_cache,
            token_source,
            client_id: ClientId::new(self.client_id),
            client_secret: ClientSecret::new(secret),
            scope: self.scope,
            resource: self.resource.filter(|r| !r.is_empty()),
            credential_style: match self.credential_style {
                Style::Basic => CredentialStyle::BasicHeader,
                Style::Body => CredentialStyle::PostBody,
            },
            my_service_base_url: self.my_service_base_url,
            my_service_timeout: Duration::from_secs(self.my_service_timeout_secs),
            allow_insecure_http: insecure,
        })
    }
}

impl Args {
    fn token_cache(&self) -> Result<Option<RedisCacheConfig>, ConfigError> {
        let key = match (&self.token_cache_key, &self.token_cache_key_file) {
            (None, None) => None,
            (Some(key), None) => Some(("AUTH_TOKEN_CACHE_KEY", key.expose().to_owned())),
            (None, Some(path)) => Some((
                "AUTH_TOKEN_CACHE_KEY_FILE",
                std::fs::read_to_string(path).map_err(|e| ConfigError {
                    variable: "AUTH_TOKEN_CACHE_KEY_FILE",
                    reason: format!("cannot read {}: {e}", path.display()),
                })?,
            )),
            (Some(_), Some(_)) => {
                return Err(ConfigError {
                    variable: "AUTH_TOKEN_CACHE_KEY",
                    reason: "set at most one of AUTH_TOKEN_CACHE_KEY or AUTH_TOKEN_CACHE_KEY_FILE"
                        .into(),
                });
            }
        };
        let Some(url) = self
            .token_cache_redis_url
            .as_ref()
            .map(Secret::expose)
            .filter(|u| !u.is_empty())
        else {
            if let Some((variable, _)) = key {
                return Err(ConfigError {
                    variable,
                    reason: "a cache key needs AUTH_TOKEN_CACHE_REDIS_URL".into(),
                });
            }
            return Ok(None);
        };
        RedisCacheConfig::check_url(url).map_err(|e| ConfigError {
            variable: "AUTH_TOKEN_CACHE_REDIS_URL",
            reason: e.to_string(),
        })?;
        let mut config =
            RedisCacheConfig::new(url).with_key_prefix(self.token_cache_key_prefix.clone());
        if let Some((variable, key)) = key {
            let key = CacheEncryptionKey::from_base64(&key).map_err(|e| ConfigError {
                variable,
                reason: e.to_string(),
            })?;
            config = config.with_encryption_key(key);
        }
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BffConfig, String> {
        let args = Args::try_parse_from(std::iter::once("my-bff").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        args.into_config().map_err(|e| e.to_string())
    }

    const BASE: [&str; 6] = [
        "--token-endpoint",
        "http://127.0.0.1/t",
        "--client-id",
        "bff",
        "--my-service-base-url",
        "http://s",
    ];

    #[test]
    fn errors_name_the_variable_and_never_the_secret() {
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = BASE.to_vec();
            v.extend_from_slice(extra);
            parse(&v)
        };
        assert!(
            with(&[])
                .unwrap_err()
                .contains("AUTH_SERVER_MYBFF_CLIENT_SECRET")
        );
        let e = with(&["--client-secret", "s3cr3t", "--scope", "a\"b"]).unwrap_err();
        assert!(
            e.contains("AUTH_SERVER_MYBFF_SCOPE") && !e.contains("s3cr3t"),
            "{e}"
        );
        let e = with(&["--client-secret", "s3cr3t", "--credential-style", "digest"]).unwrap_err();
        assert!(e.contains("AUTH_SERVER_MYBFF_CREDENTIAL_STYLE"), "{e}");
        let e = with(&["--client-secret-file", "/nonexistent/secret"]).unwrap_err();
        assert!(e.contains("AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE"), "{e}");
        let e = parse(&[
            "--client-id",
            "bff",
            "--client-secret",
            "x",
            "--my-service-base-url",
            "http://s",
        ])
        .unwrap_err();
        assert!(e.contains("AUTH_SERVER_TOKEN_ENDPOINT_URL"), "{e}");
        let c = with(&["--client-secret", "s3cr3t", "--scope", "A/b C/d"]).unwrap();
        assert_eq!(c.scope.len(), 2);
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn no_config_type_prints_a_secret() {
        let secrets = [
            "s3cr3t-client",
            "hunter2-redis",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ];
        let argv = [
            "my-bff",
            "--token-endpoint",
            "https://issuer.example/token",
            "--client-id",
            "bff",
            "--client-secret",
            secrets[0],
            "--my-service-base-url",
            "http://s",
            "--token-cache-redis-url",
            "redis://user:hunter2-redis@cache:6379/0",
            "--token-cache-key",
            secrets[2],
        ];
        let args = Args::try_parse_from(argv).unwrap();
        let printed_args = format!("{args:?}");
        let config = args.into_config().unwrap();
        let printed_config = format!("{config:?} {:?}", config.token_cache);
        for printed in [&printed_args, &printed_config] {
            for secret in secrets {
                assert!(!printed.contains(secret), "{secret} in {printed}");
            }
        }
    }

    #[test]
    fn plain_http_to_a_remote_issuer_needs_the_named_opt_in() {
        let argv = |endpoint: &'static str, extra: &[&'static str]| {
            let mut v = vec![
                "--token-endpoint",
                endpoint,
                "--client-id",
                "bff",
                "--client-secret",
                "s",
                "--my-service-base-url",
                "http://s",
            ];
            v.extend_from_slice(extra);
            parse(&v)
        };
        let e = argv("http://issuer.example/token", &[]).unwrap_err();
        assert!(
            e.contains("AUTH_SERVER_TOKEN_ENDPOINT_URL")
                && e.contains("AUTH_SERVER_ALLOW_INSECURE_HTTP"),
            "{e}"
        );
        assert!(argv("https://issuer.example/token", &[]).is_ok());
        assert!(argv("http://localhost:7000/token", &[]).is_ok());
        let ok = argv(
            "http://issuer.example/token",
            &["--allow-insecure-http", "true"],
        )
        .unwrap();
        assert!(ok.allow_insecure_http);
    }

    #[test]
    fn secret_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("bff-secret-{}", std::process::id()));
        std::fs::write(&path, "from-file-secret\n").unwrap();
        let mut v: Vec<&str> = BASE.to_vec();
        let p = path.to_str().unwrap().to_owned();
        v.extend_from_slice(&["--client-secret-file", &p]);
        let c = parse(&v).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(format!("{:?}", c.client_secret), "ClientSecret([REDACTED])");
    }

    #[test]
    fn token_cache_settings_are_checked_and_never_echoed() {
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = BASE.to_vec();
            v.extend_from_slice(&["--client-secret", "s"]);
            v.extend_from_slice(extra);
            parse(&v)
        };
        assert!(with(&[]).unwrap().token_cache.is_none());
        let e = with(&["--token-cache-redis-url", "http://u:hunter2@h"]).unwrap_err();
        assert!(
            e.contains("AUTH_TOKEN_CACHE_REDIS_URL") && !e.contains("hunter2"),
            "{e}"
        );
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let e = with(&["--token-cache-key", key]).unwrap_err();
        assert!(
            e.contains("AUTH_TOKEN_CACHE_KEY") && e.contains("REDIS_URL"),
            "{e}"
        );
        let e = with(&[
            "--token-cache-redis-url",
            "redis://h",
            "--token-cache-key",
            "c2hvcnQ=",
        ])
        .unwrap_err();
        assert!(
            e.contains("AUTH_TOKEN_CACHE_KEY:") && !e.contains("c2hvcnQ"),
            "{e}"
        );
        let c = with(&[
            "--token-cache-redis-url",
            "rediss://:pw@h:6380/1",
            "--token-cache-key",
            key,
        ])
        .unwrap();
        let cache = c.token_cache.unwrap();
        assert!(cache.encryption_key.is_some());
        assert_eq!(cache.key_prefix, "shared-auth:");
        assert!(!format!("{cache:?}").contains("AAECAw"));
    }
}
