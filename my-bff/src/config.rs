//! my-bff configuration: environment variables (or flags), parsed once at start. Any error
//! names the variable to fix. The names are the seed articles'.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
pub use shared_auth::client::TokenSource;
use shared_auth::client::{
    ClientArgs, ClientDefinition, RedisCacheConfig, SessionConfig, TokenCacheArgs, UserLoginConfig,
};
use shared_auth::{EnvPrefix, HttpUrl, Scope, ScopeSet, SettingsError};

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

    /// User login (BFF_*).
    #[command(flatten)]
    pub login: LoginArgs,

    /// Listen address.
    #[arg(
        long = "bind",
        env = "BIND_ADDR",
        value_name = "BIND_ADDR",
        default_value = "127.0.0.1:7248"
    )]
    pub bind: SocketAddr,
}

/// The settings of user login at the BFF.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// This BFF's URL as browsers reach it (https, or http on loopback for local runs):
    /// turns on user login (/bff/login, /bff/callback, /bff/user, /bff/logout and the
    /// user's /bff/weatherforecast), with the callback at {this}/bff/callback registered
    /// at the issuer. Unset: machine calls only.
    #[arg(long, env = "BFF_PUBLIC_URL", value_name = "BFF_PUBLIC_URL")]
    pub bff_public_url: Option<HttpUrl>,

    /// The issuer users log in at (default: AUTH_SERVER_AUTHORITY). The BFF logs users in
    /// as its own client (AUTH_SERVER_MYBFF_CLIENT_ID and its credential).
    #[arg(long, env = "BFF_LOGIN_AUTHORITY", value_name = "BFF_LOGIN_AUTHORITY")]
    pub bff_login_authority: Option<HttpUrl>,

    /// Space-separated scopes asked for at login besides openid, profile and
    /// offline_access (default: AUTH_SERVER_MYBFF_SCOPE, the API scopes).
    #[arg(long, env = "BFF_LOGIN_SCOPE", value_name = "BFF_LOGIN_SCOPE")]
    pub bff_login_scope: Option<String>,

    /// A user session unused this long ends, in seconds.
    #[arg(
        long,
        env = "BFF_SESSION_IDLE_SECS",
        value_name = "BFF_SESSION_IDLE_SECS",
        default_value_t = 1800
    )]
    pub bff_session_idle_secs: u64,

    /// A user session ends this long after its login, in seconds.
    #[arg(
        long,
        env = "BFF_SESSION_LIFETIME_SECS",
        value_name = "BFF_SESSION_LIFETIME_SECS",
        default_value_t = 28800
    )]
    pub bff_session_lifetime_secs: u64,

    /// The trust domain of my-service (a Transaction Token's audience): users' calls then
    /// go with this BFF's own token and a Transaction Token for the user, obtained from
    /// the issuer's Transaction Token Service with the user's access token (the BFF's
    /// client needs the token-exchange grant). Unset: users' calls carry the user's access
    /// token.
    #[arg(long, env = "BFF_TRUST_DOMAIN", value_name = "BFF_TRUST_DOMAIN")]
    pub bff_trust_domain: Option<String>,
}

/// A configuration that parsed but does not hold together: which variable, and why.
pub type ConfigError = SettingsError;

impl LoginArgs {
    /// The user login part: `None` without `BFF_PUBLIC_URL`.
    fn into_config(self, client: &ClientDefinition) -> Result<Option<LoginConfig>, ConfigError> {
        let Some(public) = &self.bff_public_url else {
            for (set, name) in [
                (self.bff_login_authority.is_some(), "BFF_LOGIN_AUTHORITY"),
                (self.bff_login_scope.is_some(), "BFF_LOGIN_SCOPE"),
                (self.bff_trust_domain.is_some(), "BFF_TRUST_DOMAIN"),
            ] {
                if set {
                    return Err(SettingsError::new(name, "only used with BFF_PUBLIC_URL"));
                }
            }
            return Ok(None);
        };
        let url = url::Url::parse(public.as_str())
            .map_err(|e| SettingsError::new("BFF_PUBLIC_URL", e.to_string()))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        let secure_cookies = match url.scheme() {
            "https" => true,
            _ if loopback => false,
            _ => {
                return Err(SettingsError::new(
                    "BFF_PUBLIC_URL",
                    "must be https (plain http only on loopback, for local runs): the session \
                     cookie is the user's credential",
                ));
            }
        };
        if url.path() != "/" || url.query().is_some() {
            return Err(SettingsError::new(
                "BFF_PUBLIC_URL",
                "must be an origin (scheme, host, port) without path or query: the session \
                 cookie is for the whole site",
            ));
        }
        let authority = match (&self.bff_login_authority, &client.token_source) {
            (Some(authority), _) => authority.as_str().to_owned(),
            (None, TokenSource::Authority(authority)) => authority.clone(),
            (None, _) => {
                return Err(SettingsError::new(
                    "BFF_LOGIN_AUTHORITY",
                    format!(
                        "required with BFF_PUBLIC_URL unless {}AUTHORITY is set",
                        MyBffEnv::ISSUER_PREFIX
                    ),
                ));
            }
        };
        let base = public.base();
        let mut user = UserLoginConfig::new(
            authority,
            client.client_id.clone(),
            client.credential.clone(),
            format!("{base}/bff/callback"),
        );
        user.credential_style = client.credential_style;
        user.allow_insecure_http = client.allow_insecure_http;
        user.post_logout_redirect_uri = Some(format!("{base}/"));
        let mut scope = match &self.bff_login_scope {
            Some(scope) => ScopeSet::parse(scope)
                .map_err(|e| SettingsError::new("BFF_LOGIN_SCOPE", e.to_string()))?,
            None => client.scope.clone(),
        };
        for standard in ["openid", "profile", "offline_access"] {
            scope.insert(
                Scope::new(standard)
                    .map_err(|e| SettingsError::new("BFF_LOGIN_SCOPE", e.to_string()))?,
            );
        }
        user.scope = scope;
        // At most a year: longer is a mistake, and the session cache refuses it.
        let secs = |value: u64, name: &str| {
            if (1..=365 * 24 * 3600).contains(&value) {
                Ok(Duration::from_secs(value))
            } else {
                Err(SettingsError::new(
                    name,
                    "must be between 1 and 31536000 (a year)",
                ))
            }
        };
        let mut sessions = SessionConfig::default();
        sessions.idle_timeout = secs(self.bff_session_idle_secs, "BFF_SESSION_IDLE_SECS")?;
        sessions.absolute_timeout =
            secs(self.bff_session_lifetime_secs, "BFF_SESSION_LIFETIME_SECS")?;
        let trust_domain = match self.bff_trust_domain.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                return Err(SettingsError::new("BFF_TRUST_DOMAIN", "must not be empty"));
            }
            Some(domain) => Some(domain.to_owned()),
        };
        Ok(Some(LoginConfig {
            user,
            sessions,
            secure_cookies,
            trust_domain,
        }))
    }
}

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
    /// User login, if on.
    pub login: Option<LoginConfig>,
}

/// User login at the BFF.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// The OIDC client.
    pub user: UserLoginConfig,
    /// How sessions live.
    pub sessions: SessionConfig,
    /// Cookies carry `Secure` and the `__Host-` prefix (an https public URL); off only for
    /// plain http on loopback.
    pub secure_cookies: bool,
    /// Users' calls go with this BFF's token and a Transaction Token of this trust domain
    /// (`BFF_TRUST_DOMAIN`); `None`: with the user's access token.
    pub trust_domain: Option<String>,
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
        let mut login = self.login.into_config(&client)?;
        // The shared token cache's Redis also holds the users' sessions: a user may then
        // land on any replica.
        if let Some(login) = &mut login {
            login.sessions.redis = token_cache.clone();
        }
        Ok(BffConfig {
            token_cache,
            login,
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
    fn the_trust_domain_needs_user_login_and_a_value() {
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = BASE.to_vec();
            v.extend_from_slice(&["--client-secret", "s3cr3t"]);
            v.extend_from_slice(extra);
            parse(&v)
        };
        let login = [
            "--bff-public-url",
            "http://127.0.0.1:7248",
            "--bff-login-authority",
            "http://127.0.0.1:7000",
        ];
        let e = with(&["--bff-trust-domain", "https://trust.example"]).unwrap_err();
        assert!(
            e.contains("BFF_TRUST_DOMAIN") && e.contains("BFF_PUBLIC_URL"),
            "{e}"
        );
        let mut empty = login.to_vec();
        empty.extend_from_slice(&["--bff-trust-domain", " "]);
        assert!(with(&empty).unwrap_err().contains("BFF_TRUST_DOMAIN"));
        let mut set = login.to_vec();
        set.extend_from_slice(&["--bff-trust-domain", "https://trust.example"]);
        let config = with(&set).unwrap();
        assert_eq!(
            config.login.unwrap().trust_domain.as_deref(),
            Some("https://trust.example")
        );
        assert_eq!(with(&login).unwrap().login.unwrap().trust_domain, None);
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
