//! Settings of the shared Redis token cache (feature `redis`), as a service embeds them:
//! [`TokenCacheSettings`] (deserializes with the `serde` feature) and, with the `clap`
//! feature, [`TokenCacheArgs`], a `clap::Args` group named after the service's
//! [`EnvPrefix::TOKEN_CACHE_PREFIX`](crate::EnvPrefix::TOKEN_CACHE_PREFIX) (default `AUTH_TOKEN_CACHE_`: `..._REDIS_URL`,
//! `..._KEY`, `..._KEY_FILE`, `..._KEY_PREFIX`). Both check into an optional
//! [`RedisCacheConfig`]: none when no Redis URL is set. Errors name the setting and never
//! repeat the URL (it may hold a password) or the key.

// The fields' doc comments are also their --help texts (clap's derive): they show URLs
// and placeholders as an operator types them, not as rustdoc links.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use super::redis_cache::{RedisCacheConfig, redacted_url};
use crate::settings::{SettingsError, setting_name};

/// What an operator sets for the shared token cache. See the module documentation.
#[derive(Clone, Default)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct TokenCacheSettings {
    /// Share tokens between replicas through this Redis or Valkey:
    /// redis://[user:password@]host[:port][/db], or rediss:// for TLS; several,
    /// comma-separated: the nodes of a Redis Cluster. Unset: each process caches its own
    /// tokens.
    #[cfg_attr(
        feature = "clap",
        arg(long = "token-cache-redis-url", env, hide_env_values = true)
    )]
    pub redis_url: Option<String>,
    /// Key that seals token cache entries in Redis (AES-256-GCM): 32 bytes, base64
    /// (`openssl rand -base64 32`). Same value on every replica. Unset: entries are stored
    /// in clear, with a warning.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "token-cache-key",
            env,
            hide_env_values = true,
            conflicts_with = "key_file"
        )
    )]
    pub key: Option<String>,
    /// Or a file holding that key.
    #[cfg_attr(feature = "clap", arg(long = "token-cache-key-file", env))]
    pub key_file: Option<PathBuf>,
    /// Prefix of the Redis keys (one Redis can serve several deployments).
    #[cfg_attr(
        feature = "clap",
        arg(long = "token-cache-key-prefix", env, default_value = crate::settings::intern(RedisCacheConfig::new("").key_prefix))
    )]
    pub key_prefix: Option<String>,
}

impl std::fmt::Debug for TokenCacheSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCacheSettings")
            .field("redis_url", &self.redis_url.as_deref().map(redacted_url))
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field("key_file", &self.key_file)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl TokenCacheSettings {
    /// Checks the settings (reading the key file if one is named): `None` without a Redis
    /// URL. Errors name the setting as `prefix` + name (`AUTH_TOKEN_CACHE_REDIS_URL`), or by
    /// field name when the prefix is empty.
    pub fn into_config_named(
        self,
        prefix: &str,
    ) -> Result<Option<RedisCacheConfig>, SettingsError> {
        let name = |field: &str| setting_name(prefix, field);
        let fail = |setting: String, reason: String| SettingsError { setting, reason };
        let key = match (self.key, self.key_file) {
            (None, None) => None,
            (Some(key), None) => Some((name("key"), key)),
            (None, Some(path)) => Some((
                name("key_file"),
                std::fs::read_to_string(&path).map_err(|e| {
                    fail(
                        name("key_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?,
            )),
            (Some(_), Some(_)) => {
                return Err(fail(
                    name("key"),
                    format!("set at most one of {} or {}", name("key"), name("key_file")),
                ));
            }
        };
        let Some(url) = self.redis_url.filter(|u| !u.is_empty()) else {
            return match key {
                Some((setting, _)) => Err(fail(
                    setting,
                    format!("a cache key needs {}", name("redis_url")),
                )),
                None => Ok(None),
            };
        };
        RedisCacheConfig::check_url(&url).map_err(|e| fail(name("redis_url"), e.to_string()))?;
        let mut config = RedisCacheConfig::new(url);
        if let Some(prefix) = self.key_prefix.filter(|p| !p.is_empty()) {
            config = config.with_key_prefix(prefix);
        }
        if let Some((setting, key)) = key {
            config = config
                .with_encryption_key(key.trim())
                .map_err(|e| fail(setting, e.to_string()))?;
        }
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: Option<&str>, key: Option<&str>) -> TokenCacheSettings {
        TokenCacheSettings {
            redis_url: url.map(str::to_owned),
            key: key.map(str::to_owned),
            ..TokenCacheSettings::default()
        }
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn errors_name_the_setting_and_never_the_url_or_key() {
        assert!(
            settings(None, None)
                .into_config_named("P_")
                .unwrap()
                .is_none()
        );
        let e = settings(Some("http://u:hunter2@h"), None)
            .into_config_named("P_")
            .unwrap_err();
        assert_eq!(e.setting, "P_REDIS_URL");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = settings(None, Some(KEY)).into_config_named("").unwrap_err();
        assert_eq!(e.setting, "key");
        assert!(e.reason.contains("redis_url"), "{e}");
        let e = settings(Some("redis://h"), Some("c2hvcnQ="))
            .into_config_named("P_")
            .unwrap_err();
        assert_eq!(e.setting, "P_KEY");
        assert!(!e.to_string().contains("c2hvcnQ"), "{e}");
    }

    #[test]
    fn a_full_setting_gives_a_sealed_config_and_debug_shows_no_secret() {
        let mut s = settings(Some("rediss://:pw-secret@h:6380/1"), Some(KEY));
        s.key_prefix = Some("app:".into());
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("pw-secret") && !debug.contains("AAECAw"),
            "{debug}"
        );
        let config = s.into_config_named("P_").unwrap().unwrap();
        assert!(config.encryption_key.is_some());
        assert_eq!(config.key_prefix, "app:");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn it_reads_from_a_file_format() {
        let s: TokenCacheSettings =
            serde_json::from_str(r#"{"redis_url": "redis://h", "key_prefix": "x:"}"#).unwrap();
        assert_eq!(s.into_config_named("").unwrap().unwrap().key_prefix, "x:");
        assert!(serde_json::from_str::<TokenCacheSettings>(r#"{"url": "redis://h"}"#).is_err());
    }
}
