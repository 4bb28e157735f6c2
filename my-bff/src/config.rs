//! my-bff configuration: environment variables (or flags), parsed once at start. Any error
//! names the variable to fix. The names are the seed articles'.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
pub use shared_auth::client::TokenSource;
use shared_auth::client::{ClientArgs, ClientDefinition, RedisCacheConfig, TokenCacheArgs};
use shared_auth::{EnvPrefix, HttpUrl, SettingsError};

/// The seed articles' names: `AUTH_SERVER_TOKEN_ENDPOINT_URL` / `AUTH_SERVER_AUTHORITY`
/// for the issuer, `AUTH_SERVER_MYBFF_*` for this client.
#[derive(Debug, Clone, Copy)]
pub struct MyBffEnv;

impl EnvPrefix for MyBffEnv {
    const ISSUER_PREFIX: &'static str = "AUTH_SERVER_";
    const CLIENT_PREFIX: &'static str = "AUTH_SERVER_MYBFF_";
}

/// A backend-for-frontend (reference): GET /weatherforecast calls my-service with a
/// client-credentials access token that it gets, caches and renews.
/// Swagger UI: /swagger-ui/, OpenAPI: /api-docs/openapi.json.
#[derive(Debug, Parser)]
#[command(name = "my-bff", version)]
pub struct Args {
    /// This BFF's client (AUTH_SERVER_*): shared-auth's client settings.
    #[command(flatten)]
    pub auth: ClientArgs<MyBffEnv>,

    /// Base URL of my-service.
    #[arg(long, env = "MY_SERVICE_BASE_URL", value_name = "MY_SERVICE_BASE_URL")]
    pub my_service_base_url: HttpUrl,

    /// Timeout of each call to my-service, in seconds.
    #[arg(
        long,
        env = "MY_SERVICE_TIMEOUT_SECS",
        value_name = "MY_SERVICE_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub my_service_timeout_secs: u64,

    /// The shared token cache (AUTH_TOKEN_CACHE_*): shared-auth's settings.
    #[command(flatten)]
    pub token_cache: TokenCacheArgs<MyBffEnv>,

    /// Listen address.
    #[arg(
        long = "bind",
        env = "BIND_ADDR",
        value_name = "BIND_ADDR",
        default_value = "127.0.0.1:7248"
    )]
    pub bind: SocketAddr,
}

/// A configuration that parsed but does not hold together: which variable, and why.
pub type ConfigError = SettingsError;

/// The typed BFF configuration.
#[derive(Debug, Clone)]
pub struct BffConfig {
    /// The client-credentials client that calls my-service.
    pub client: ClientDefinition,
    /// my-service base URL (no trailing slash).
    pub my_service_base_url: String,
    /// Timeout per call to my-service.
    pub my_service_timeout: Duration,
    /// The shared token cache, if one is configured.
    pub token_cache: Option<RedisCacheConfig>,
}

impl Args {
    /// Reads the secret file if one is named and builds the typed configuration.
    pub fn into_config(self) -> Result<BffConfig, ConfigError> {
        let token_cache = self.token_cache.into_config()?;
        let client = self.auth.into_definition()?;
        if self.my_service_timeout_secs == 0 {
            return Err(SettingsError::new(
                "MY_SERVICE_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        // The API found by its metadata is the API called: a document served by another
        // origin would choose the issuer for a server this BFF never calls.
        if let TokenSource::ProtectedResource { resource, .. } = &client.token_source
            && !self.my_service_base_url.same_origin(resource)
        {
            return Err(SettingsError::new(
                format!("{}PROTECTED_RESOURCE", MyBffEnv::ISSUER_PREFIX),
                format!(
                    "{resource} is not on the origin of MY_SERVICE_BASE_URL ({}): both name my-service",
                    self.my_service_base_url
                ),
            ));
        }
        Ok(BffConfig {
            token_cache,
            client,
            my_service_base_url: self.my_service_base_url.base().to_owned(),
            my_service_timeout: Duration::from_secs(self.my_service_timeout_secs),
        })
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
        assert_eq!(c.client.scope.len(), 2);
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
        assert!(ok.client.allow_insecure_http);
    }

    #[test]
    fn the_protected_resource_must_be_on_my_services_origin() {
        let with = |resource: &str, base: &str| {
            parse(&[
                "--protected-resource",
                resource,
                "--authority",
                "https://issuer.example",
                "--client-id",
                "bff",
                "--client-secret",
                "s",
                "--my-service-base-url",
                base,
            ])
        };
        assert!(with("https://api.example/orders", "https://api.example:443/").is_ok());
        for (resource, base) in [
            ("https://api.example", "https://other.example"),
            ("https://api.example", "http://api.example"),
            ("https://api.example:8443", "https://api.example"),
        ] {
            let e = with(resource, base).unwrap_err();
            assert!(
                e.starts_with("AUTH_SERVER_PROTECTED_RESOURCE:")
                    && e.contains("MY_SERVICE_BASE_URL"),
                "{resource} {base}: {e}"
            );
        }
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
        assert_eq!(
            format!("{:?}", c.client.credential),
            "Secret(ClientSecret([REDACTED]))"
        );
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
        assert!(cache.is_sealed());
        assert_eq!(cache.key_prefix, "shared-auth:");
        assert!(!format!("{cache:?}").contains("AAECAw"));
    }
}
