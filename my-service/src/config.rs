//! my-service configuration: environment variables (or flags), parsed once at start.
//!
//! Exactly one metadata source is required: `AUTH_AUTHORITY`, `AUTH_METADATA_ADDRESS`, or
//! `AUTH_JWKS_URI` with `AUTH_ISSUER`. Any error names the variable to fix.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueEnum};
use shared_auth::server::{MetadataSource, TokenProfile, ValidatorConfig};

/// A scope-protected weather API (reference resource server).
///
/// Validates JWT access tokens from an OAuth 2.0 issuer (AWS Cognito, IdentityServer,
/// Keycloak, any OIDC issuer, or the local mock-issuer) and requires
/// MyService/weather_read for GET /weatherforecast and MyService/weather_write for POST.
/// Swagger UI: /swagger-ui/, OpenAPI: /api-docs/openapi.json.
#[derive(Debug, Parser)]
#[command(name = "my-service", version)]
#[command(group(ArgGroup::new("metadata").required(true).args(["authority", "metadata_address", "jwks_uri"])))]
pub struct Args {
    /// Issuer URL; discovery at {authority}/.well-known/openid-configuration.
    #[arg(long, env = "AUTH_AUTHORITY", value_name = "AUTH_AUTHORITY", value_parser = http_url)]
    pub authority: Option<String>,

    /// Full discovery document URL (Cognito:
    /// `https://cognito-idp.REGION.amazonaws.com/POOL/.well-known/openid-configuration`).
    #[arg(long, env = "AUTH_METADATA_ADDRESS", value_name = "AUTH_METADATA_ADDRESS", value_parser = http_url)]
    pub metadata_address: Option<String>,

    /// JWKS URL, without discovery (needs AUTH_ISSUER).
    #[arg(long, env = "AUTH_JWKS_URI", value_name = "AUTH_JWKS_URI", value_parser = http_url, requires = "issuer")]
    pub jwks_uri: Option<String>,

    /// Expected `iss`: required with AUTH_JWKS_URI, and with an AUTH_METADATA_ADDRESS whose
    /// shape does not imply the issuer (one not ending in
    /// /.well-known/openid-configuration nor under /.well-known/oauth-authorization-server).
    #[arg(long, env = "AUTH_ISSUER", value_name = "AUTH_ISSUER")]
    pub issuer: Option<String>,

    /// Allow plain http to non-loopback issuer hosts (discovery and JWKS, configured or
    /// discovered). Off: https, or http to localhost, 127.0.0.0/8 or ::1 only. Test networks
    /// only.
    #[arg(long, env = "AUTH_ALLOW_INSECURE_HTTP", value_name = "AUTH_ALLOW_INSECURE_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_insecure_http: bool,

    /// Token profile: cognito (token_use=access, no aud), rfc9068 (typ at+jwt, aud
    /// required), generic (aud checked only if AUTH_AUDIENCE is set).
    #[arg(
        long,
        env = "AUTH_TOKEN_PROFILE",
        value_name = "AUTH_TOKEN_PROFILE",
        value_enum,
        default_value = "cognito"
    )]
    pub token_profile: Profile,

    /// This API's audience (required for rfc9068).
    #[arg(long, env = "AUTH_AUDIENCE", value_name = "AUTH_AUDIENCE")]
    pub audience: Option<String>,

    /// Comma-separated client ids accepted under the cognito profile (default: any).
    #[arg(
        long,
        env = "AUTH_ALLOWED_CLIENT_IDS",
        value_name = "AUTH_ALLOWED_CLIENT_IDS",
        value_delimiter = ','
    )]
    pub allowed_client_ids: Vec<String>,

    /// Clock skew allowed on exp/nbf/iat, in seconds.
    #[arg(
        long,
        env = "AUTH_CLOCK_SKEW_SECS",
        value_name = "AUTH_CLOCK_SKEW_SECS",
        default_value_t = 60
    )]
    pub clock_skew_secs: u64,

    /// Start even if the issuer is unreachable: discovery and keys load in the background
    /// and on first use; until then requests get 503 with Retry-After.
    #[arg(long, env = "AUTH_LAZY_KEYS", value_name = "AUTH_LAZY_KEYS", default_value_t = false, action = clap::ArgAction::Set)]
    pub lazy_keys: bool,

    /// Token URL shown in Swagger UI's Authorize dialog (default: the discovered token
    /// endpoint).
    #[arg(long, env = "OPENAPI_TOKEN_URL", value_name = "OPENAPI_TOKEN_URL", value_parser = http_url)]
    pub openapi_token_url: Option<String>,

    /// Listen address.
    #[arg(
        long = "bind",
        env = "BIND_ADDR",
        value_name = "BIND_ADDR",
        default_value = "127.0.0.1:7062"
    )]
    pub bind: SocketAddr,
}

/// The token profiles, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// AWS Cognito access tokens.
    Cognito,
    /// RFC 9068 JWT access tokens.
    Rfc9068,
    /// Any JWT access token.
    Generic,
}

fn http_url(value: &str) -> Result<String, String> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.to_owned())
    } else {
        Err("must be an http:// or https:// URL".to_owned())
    }
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

/// The typed service configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How tokens are validated.
    pub validator: ValidatorConfig,
    /// Token URL for the OpenAPI document, if set explicitly.
    pub openapi_token_url: Option<String>,
}

impl Args {
    /// Checks the combinations clap cannot and builds the typed configuration.
    pub fn into_config(self) -> Result<ServiceConfig, ConfigError> {
        let insecure = self.allow_insecure_http;
        let check = |variable: &'static str, url: &str| {
            shared_auth::check_url(url, insecure).map_err(|e| ConfigError {
                variable,
                reason: format!("{e}, or set AUTH_ALLOW_INSECURE_HTTP=true on a test network"),
            })
        };
        let mut issuer = self.issuer.filter(|i| !i.trim().is_empty());
        let metadata = match (self.authority, self.metadata_address, self.jwks_uri) {
            (Some(a), None, None) => {
                check("AUTH_AUTHORITY", &a)?;
                MetadataSource::Authority(a)
            }
            (None, Some(m), None) => {
                check("AUTH_METADATA_ADDRESS", &m)?;
                MetadataSource::MetadataAddress(m)
            }
            (None, None, Some(jwks_uri)) => {
                check("AUTH_JWKS_URI", &jwks_uri)?;
                let issuer = issuer.take().ok_or(ConfigError {
                    variable: "AUTH_ISSUER",
                    reason: "required with AUTH_JWKS_URI".into(),
                })?;
                MetadataSource::Jwks { jwks_uri, issuer }
            }
            _ => {
                return Err(ConfigError {
                    variable: "AUTH_AUTHORITY",
                    reason: "set exactly one of AUTH_AUTHORITY, AUTH_METADATA_ADDRESS, or AUTH_JWKS_URI with AUTH_ISSUER".into(),
                });
            }
        };
        if issuer.is_none() && metadata.implied_issuer().is_none() {
            return Err(ConfigError {
                variable: "AUTH_ISSUER",
                reason: "required with an AUTH_METADATA_ADDRESS that does not end in /.well-known/openid-configuration: the discovered issuer must be checked against it (RFC 8414 section 3.3)".into(),
            });
        }
        let audience = self.audience.filter(|a| !a.trim().is_empty());
        let profile = match self.token_profile {
            Profile::Cognito => {
                if audience.is_some() {
                    return Err(ConfigError {
                        variable: "AUTH_AUDIENCE",
                        reason: "Cognito access tokens have no aud claim; unset it, or use AUTH_TOKEN_PROFILE=rfc9068 or generic".into(),
                    });
                }
                TokenProfile::Cognito {
                    allowed_client_ids: self
                        .allowed_client_ids
                        .into_iter()
                        .filter(|c| !c.is_empty())
                        .collect(),
                }
            }
            Profile::Rfc9068 => TokenProfile::Rfc9068 {
                audience: audience.ok_or(ConfigError {
                    variable: "AUTH_AUDIENCE",
                    reason: "required when AUTH_TOKEN_PROFILE=rfc9068".into(),
                })?,
            },
            Profile::Generic => TokenProfile::Generic { audience },
        };
        let mut validator = ValidatorConfig::new(metadata, profile);
        validator.leeway = Duration::from_secs(self.clock_skew_secs);
        validator.lazy = self.lazy_keys;
        validator.issuer = issuer;
        validator.allow_insecure_http = insecure;
        Ok(ServiceConfig {
            validator,
            openapi_token_url: self.openapi_token_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServiceConfig, String> {
        let args = Args::try_parse_from(std::iter::once("my-service").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
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
