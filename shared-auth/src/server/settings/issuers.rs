//! The issuers file: more trusted issuers, one `[[issuer]]` table each, checked with
//! errors that name the file's entry.

use super::*;

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
pub(crate) struct IssuerSettings {
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
    /// Unset: true for an additional issuer, false for the main one.
    pub lazy_keys: Option<bool>,
    /// This issuer's scope names mapped to the names the routes require (a TOML table,
    /// `{ "weather.read" = "MyService/weather_read" }`): a token granting the key also
    /// grants the value.
    pub scope_aliases: std::collections::BTreeMap<String, String>,
}

/// The `[[issuer]]` tables of an issuers file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IssuersFile {
    #[serde(default)]
    pub(super) issuer: Vec<IssuerSettings>,
}

/// What one issuer's settings check out to.
pub(super) struct IssuerParts {
    pub(super) metadata: MetadataSource,
    pub(super) issuer: Option<String>,
    pub(super) profile: TokenProfile,
}

impl IssuerSettings {
    /// Checks one issuer's settings. `name` turns a field into the name an operator knows
    /// it by, `fail` makes the error for a field.
    pub(super) fn into_parts(
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
