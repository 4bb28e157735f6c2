//! The settings of what a token is bound to or travels with: the Transaction Token settings
//! (the trust domain and the Transaction Token Service, `AUTH_TXN_TOKEN_*` under the
//! `AUTH_` prefix) and where client certificates come from (`AUTH_CLIENT_CERTIFICATE_*`).

use super::{SettingsError, ValidatorSettings};
use crate::server::{CertificateBinding, MetadataSource, TransactionTokenConfig};

impl ValidatorSettings {
    /// The Transaction Token part (`None` unless `txn_token_trust_domain` is set); errors
    /// name the variable.
    pub fn transaction_token_config_named(
        &self,
        prefix: &str,
    ) -> Result<Option<TransactionTokenConfig>, SettingsError> {
        let name = |field: &str| crate::settings::setting_name(prefix, field);
        let fail = |field: &str, reason: String| SettingsError {
            setting: name(field),
            reason,
        };
        let Some(trust_domain) = self
            .txn_token_trust_domain
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        else {
            if self.txn_token_authority.is_some() {
                return Err(fail(
                    "txn_token_authority",
                    format!("only used with {}", name("txn_token_trust_domain")),
                ));
            }
            return Ok(None);
        };
        let authority = match (&self.txn_token_authority, &self.authority) {
            (Some(own), _) => String::from(own.clone()),
            (None, Some(authority)) => String::from(authority.clone()),
            (None, None) => {
                return Err(fail(
                    "txn_token_authority",
                    format!(
                        "required with {} when {} is not set",
                        name("txn_token_trust_domain"),
                        name("authority")
                    ),
                ));
            }
        };
        crate::settings::transport_allowed(
            &authority,
            self.allow_insecure_http,
            &name("allow_insecure_http"),
        )
        .map_err(|e| fail("txn_token_authority", e))?;
        let mut config =
            TransactionTokenConfig::new(MetadataSource::Authority(authority), trust_domain);
        config.lazy = self.lazy_keys;
        config.allow_insecure_http = self.allow_insecure_http;
        Ok(Some(config))
    }
}

impl ValidatorSettings {
    /// Where client certificates come from besides the TLS connection; errors name the
    /// variable.
    pub(super) fn certificate_binding(
        &self,
        prefix: &str,
    ) -> Result<CertificateBinding, SettingsError> {
        let name = |field: &str| crate::settings::setting_name(prefix, field);
        let fail = |field: &str, reason: String| SettingsError {
            setting: name(field),
            reason,
        };
        let proxies = self
            .client_certificate_proxies
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse().map_err(|_| {
                    fail(
                        "client_certificate_proxies",
                        format!("{p:?} is not an IP address"),
                    )
                })
            })
            .collect::<Result<Vec<std::net::IpAddr>, _>>()?;
        let header = self
            .client_certificate_header
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty());
        match (header, proxies.is_empty()) {
            (Some(_), true) => Err(fail(
                "client_certificate_proxies",
                format!(
                    "required with {}: the header is trusted only from the proxies that set it",
                    name("client_certificate_header")
                ),
            )),
            (None, false) => Err(fail(
                "client_certificate_proxies",
                format!("only used with {}", name("client_certificate_header")),
            )),
            (Some(header), false) => {
                axum::http::HeaderName::try_from(header).map_err(|_| {
                    fail(
                        "client_certificate_header",
                        format!("{header:?} is not a header name"),
                    )
                })?;
                Ok(CertificateBinding {
                    proxy_header: Some(header.to_ascii_lowercase()),
                    trusted_proxies: proxies,
                })
            }
            (None, true) => Ok(CertificateBinding::default()),
        }
    }
}
