//! my-service configuration: environment variables (or flags), parsed once at start.
//!
//! The auth settings are shared-auth's own (`ValidatorArgs` under the `AUTH_` prefix):
//! exactly one metadata source is required, `AUTH_AUTHORITY`, `AUTH_METADATA_ADDRESS`, or
//! `AUTH_JWKS_URI` with `AUTH_ISSUER`; more issuers come from `AUTH_ISSUERS_FILE` (which
//! may also stand alone). Any error names the variable to fix.
//!
//! `AUTH_RESOURCE` (this API's URL) turns on the protected resource metadata (RFC 9728);
//! its `scopes_supported` are the service's own scopes unless `AUTH_SCOPES_SUPPORTED`
//! lists others.

use std::net::SocketAddr;

use clap::Parser;
use shared_auth::AuthEnv;
use shared_auth::server::{TransactionTokenConfig, ValidatorArgs, ValidatorConfig};
use shared_auth::{HttpUrl, SettingsError};

use crate::weather::{READ_SCOPE, WRITE_SCOPE};

/// A scope-protected weather API (reference resource server).
///
/// Validates JWT access tokens from an OAuth 2.0 issuer (AWS Cognito, IdentityServer,
/// Keycloak, any OIDC issuer, or the local mock-issuer) and requires
/// MyService/weather_read for GET /weatherforecast and MyService/weather_write for POST.
/// Swagger UI: /swagger-ui/, OpenAPI: /api-docs/openapi.json.
#[derive(Debug, Parser)]
#[command(name = "my-service", version)]
pub struct Args {
    /// How access tokens are validated (AUTH_*).
    #[command(flatten)]
    pub auth: ValidatorArgs<AuthEnv>,

    /// Token URL shown in Swagger UI's Authorize dialog (default: the discovered token
    /// endpoint).
    #[arg(long, env = "OPENAPI_TOKEN_URL", value_name = "OPENAPI_TOKEN_URL")]
    pub openapi_token_url: Option<HttpUrl>,

    /// Listen address.
    #[arg(
        long = "bind",
        env = "BIND_ADDR",
        value_name = "BIND_ADDR",
        default_value = "127.0.0.1:7062"
    )]
    pub bind: SocketAddr,
}

/// A configuration that parsed but does not hold together: which variable, and why.
pub type ConfigError = SettingsError;

/// The typed service configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How tokens are validated.
    pub validator: ValidatorConfig,
    /// Token URL for the OpenAPI document, if set explicitly.
    pub openapi_token_url: Option<String>,
    /// Transaction Token checks (`AUTH_TXN_TOKEN_TRUST_DOMAIN`), if on.
    pub transaction_tokens: Option<TransactionTokenConfig>,
}

impl Args {
    /// Checks the combinations clap cannot and builds the typed configuration.
    pub fn into_config(self) -> Result<ServiceConfig, ConfigError> {
        let transaction_tokens = self.auth.transaction_token_config()?;
        let mut validator = self.auth.into_config()?;
        // The metadata lists the scopes the routes require, from the same constants, unless
        // the operator listed others.
        if let Some(resource) = &mut validator.resource
            && resource.scopes_supported.is_empty()
        {
            resource.scopes_supported = vec![READ_SCOPE.to_owned(), WRITE_SCOPE.to_owned()];
        }
        Ok(ServiceConfig {
            validator,
            openapi_token_url: self.openapi_token_url.map(String::from),
            transaction_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::server::TokenProfile;

    /// Parses `args`, plus this API's own URL unless they name it (DPoP is on by default,
    /// and needs it).
    fn parse(args: &[&str]) -> Result<ServiceConfig, String> {
        let own_url = ["--public-base-url", "--resource", "--dpop"]
            .iter()
            .any(|flag| args.contains(flag));
        let base: &[&str] = if own_url {
            &[]
        } else {
            &["--public-base-url", "https://api.example"]
        };
        let argv =
            std::iter::once("my-service").chain(args.iter().copied().chain(base.iter().copied()));
        let args = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
        args.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_the_variable() {
        assert!(parse(&[]).unwrap_err().contains("AUTH_AUTHORITY"));
        assert!(
            parse(&["--authority", "ftp://x"])
                .unwrap_err()
                .contains("AUTH_AUTHORITY")
        );
        assert!(parse(&["--authority", "https://x", "--issuer", "i"]).is_ok());
        let e = parse(&["--authority", "https://x", "--token-profile", "rfc9068"]).unwrap_err();
        assert!(e.contains("AUTH_AUDIENCE"), "{e}");
        let e = parse(&["--authority", "https://x", "--audience", "api"]).unwrap_err();
        assert!(e.contains("AUTH_AUDIENCE"), "{e}");
        let e = parse(&["--jwks-uri", "https://x/jwks"]).unwrap_err();
        assert!(e.contains("AUTH_ISSUER"), "{e}");
        let e = parse(&["--authority", "https://x", "--token-profile", "azure"]).unwrap_err();
        assert!(e.contains("AUTH_TOKEN_PROFILE"), "{e}");
    }

    #[test]
    fn plain_http_to_a_remote_issuer_needs_the_named_opt_in() {
        let e = parse(&["--authority", "http://issuer.example"]).unwrap_err();
        assert!(
            e.contains("AUTH_AUTHORITY") && e.contains("AUTH_ALLOW_INSECURE_HTTP"),
            "{e}"
        );
        let e = parse(&["--jwks-uri", "http://issuer.example/jwks", "--issuer", "i"]).unwrap_err();
        assert!(e.contains("AUTH_JWKS_URI"), "{e}");
        let e = parse(&[
            "--metadata-address",
            "http://issuer.example/.well-known/openid-configuration",
        ])
        .unwrap_err();
        assert!(e.contains("AUTH_METADATA_ADDRESS"), "{e}");
        assert!(parse(&["--authority", "https://issuer.example"]).is_ok());
        assert!(parse(&["--authority", "http://127.0.0.1:7000"]).is_ok());
        assert!(parse(&["--authority", "http://localhost:7000"]).is_ok());
        let ok = parse(&[
            "--authority",
            "http://issuer.example",
            "--allow-insecure-http",
            "true",
        ])
        .unwrap();
        assert!(ok.validator.allow_insecure_http);
    }

    #[test]
    fn a_metadata_address_of_no_known_shape_needs_the_issuer() {
        let e = parse(&["--metadata-address", "https://as.example/meta.json"]).unwrap_err();
        assert!(e.contains("AUTH_ISSUER"), "{e}");
        let c = parse(&[
            "--metadata-address",
            "https://as.example/meta.json",
            "--issuer",
            "https://as.example",
        ])
        .unwrap();
        assert_eq!(c.validator.issuer.as_deref(), Some("https://as.example"));
        assert!(
            parse(&[
                "--metadata-address",
                "https://as.example/t/.well-known/openid-configuration"
            ])
            .is_ok()
        );
    }

    #[test]
    fn dpop_settings_parse_and_errors_name_the_variable() {
        use shared_auth::server::DpopMode;
        let c = parse(&["--authority", "https://x"]).unwrap();
        assert_eq!(c.validator.dpop.mode, DpopMode::Allowed);
        let c = parse(&[
            "--authority",
            "https://x",
            "--dpop",
            "required",
            "--dpop-nonce",
            "on",
            "--public-base-url",
            "https://api.example.com",
        ])
        .unwrap();
        assert_eq!(c.validator.dpop.mode, DpopMode::Required);
        assert!(c.validator.dpop.nonces);
        let e = parse(&["--authority", "https://x", "--dpop", "sometimes"]).unwrap_err();
        assert!(e.contains("AUTH_DPOP"), "{e}");
        // On without this API's own URL: the request's Host would choose the htu.
        let e = parse(&["--authority", "https://x", "--dpop", "allowed"]).unwrap_err();
        assert!(
            e.starts_with("AUTH_DPOP:")
                && e.contains("AUTH_PUBLIC_BASE_URL")
                && e.contains("AUTH_RESOURCE"),
            "{e}"
        );
        assert!(parse(&["--authority", "https://x", "--dpop", "off"]).is_ok());
        let e = parse(&["--authority", "https://x", "--dpop-algs", "HS256"]).unwrap_err();
        assert!(e.contains("AUTH_DPOP_ALGS"), "{e}");
    }

    #[test]
    fn the_resource_lists_the_services_scopes_unless_set() {
        assert!(
            parse(&["--authority", "https://x"])
                .unwrap()
                .validator
                .resource
                .is_none()
        );
        let c = parse(&[
            "--authority",
            "https://x",
            "--resource",
            "https://api.example",
        ])
        .unwrap();
        let resource = c.validator.resource.unwrap();
        assert_eq!(resource.resource, "https://api.example");
        assert_eq!(resource.scopes_supported, [READ_SCOPE, WRITE_SCOPE]);
        let c = parse(&[
            "--authority",
            "https://x",
            "--resource",
            "https://api.example",
            "--scopes-supported",
            "a,b",
        ])
        .unwrap();
        assert_eq!(c.validator.resource.unwrap().scopes_supported, ["a", "b"]);
        let e = parse(&[
            "--authority",
            "https://x",
            "--resource",
            "http://api.example",
        ])
        .unwrap_err();
        assert!(e.contains("AUTH_RESOURCE"), "{e}");
    }

    #[test]
    fn rfc9068_with_audience_parses() {
        let c = parse(&[
            "--authority",
            "https://x",
            "--token-profile",
            "rfc9068",
            "--audience",
            "MyService",
        ])
        .unwrap();
        assert_eq!(
            c.validator.profile,
            TokenProfile::Rfc9068 {
                audience: "MyService".into()
            }
        );
    }
}
