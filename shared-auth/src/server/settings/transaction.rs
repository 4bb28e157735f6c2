//! The Transaction Token settings of a service: the trust domain and the Transaction Token
//! Service, beside the validator's own (`AUTH_TXN_TOKEN_*` under the `AUTH_` prefix).

use super::{SettingsError, ValidatorSettings};
use crate::server::{MetadataSource, TransactionTokenConfig};

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
