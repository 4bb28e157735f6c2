//! What both halves' settings share: the error that names a setting, the one check of a
//! URL setting ([`HttpUrl`]), and the runtime prefix of their clap argument groups.
//!
//! Each setting is written once, as a field of a settings struct: its doc comment is the
//! `--help` text, its `#[arg]` attribute the flag, the variable and the parser, its
//! default the struct's `Default` (which clap prints and applies through
//! `default_value_t`), and its check the struct's `into_*_named`. The argument groups are
//! clap's derive; only the environment-variable prefix, which the service chooses, is
//! applied at runtime by [`with_prefix`] (`Command::mut_args` over the group's own
//! arguments: `AUTHORITY` becomes `AUTH_AUTHORITY`). We chose the derive over a crate such
//! as `figment` or `config`: the services already parse with clap, its `--help` is the
//! operator's list of variables, and a prefix is all that varies between services.
//! Arguments keep their field names as clap ids, so one command holds one group of each
//! kind.

use std::fmt;
use std::str::FromStr;

pub(crate) mod credential;

/// A setting that is missing, malformed, or does not fit the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
#[non_exhaustive]
pub struct SettingsError {
    /// The setting to fix: its environment variable under a clap argument group, its field
    /// name otherwise.
    pub setting: String,
    /// What is wrong.
    pub reason: String,
}

impl SettingsError {
    /// The error for `setting` (a service's own variables use it too).
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        SettingsError {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// An absolute `http://` or `https://` URL with a host: every URL setting, in shared-auth
/// and in the services, is one, checked here when it is read. It keeps the text as written
/// (an issuer URL is compared with `iss` as written, and some issuers end theirs in `/`);
/// [`base`](Self::base) is the form that paths are appended to. Whether plain http is
/// allowed is checked later, when the opt-in is known.
#[derive(Clone, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    /// Checks `text`: `must be an http:// or https:// URL` otherwise.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = url::Url::parse(text)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if ok {
            Ok(HttpUrl(text.to_owned()))
        } else {
            Err("must be an http:// or https:// URL".to_owned())
        }
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL without trailing slashes, to append a path to (`{base}/weatherforecast`).
    pub fn base(&self) -> &str {
        self.0.trim_end_matches('/')
    }

    /// Whether `other` has this URL's origin (RFC 6454: scheme, host and port, a default
    /// port written or not): two settings that name one server agree on it.
    pub fn same_origin(&self, other: &str) -> bool {
        match (url::Url::parse(&self.0), url::Url::parse(other)) {
            (Ok(a), Ok(b)) => a.origin() == b.origin(),
            _ => false,
        }
    }
}

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        HttpUrl::parse(text)
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        HttpUrl::parse(&text)
    }
}

impl From<HttpUrl> for String {
    fn from(url: HttpUrl) -> String {
        url.0
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The transport policy of a URL setting, once its opt-in is known: https, or http to
/// loopback, or plain http with `optin` (the opt-in's name, offered in the error).
pub(crate) fn transport_allowed(url: &str, insecure: bool, optin: &str) -> Result<(), String> {
    crate::issuer_http::check_url(url, insecure)
        .map_err(|e| format!("{e}, or set {optin}=true on a test network"))
}

/// `prefix` + the field's upper-case name, or the field name when there is no prefix.
pub(crate) fn setting_name(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}{}", field.to_ascii_uppercase())
    }
}

/// Puts the service's prefix before the variable of each argument of the derived group
/// `group` (its struct's name): `prefix(id)` for the argument with that id. The value name
/// becomes the variable too (`--authority <AUTH_AUTHORITY>`), so clap's own errors name
/// it; and in the help, a field's name in backquotes (`` `issuer` ``, as the field docs
/// write it) becomes its variable.
#[cfg(feature = "clap")]
pub(crate) fn with_prefix(
    cmd: clap::Command,
    group: &str,
    prefix: impl Fn(&str) -> &'static str,
) -> clap::Command {
    let ids: Vec<String> = cmd
        .get_groups()
        .find(|g| g.get_id() == group)
        .map(|g| g.get_args().map(|id| id.as_str().to_owned()).collect())
        .unwrap_or_default();
    let names: Vec<(String, &'static str)> = ids
        .iter()
        .filter_map(|id| {
            let arg = cmd.get_arguments().find(|a| a.get_id() == id.as_str())?;
            let env = arg.get_env()?.to_str()?;
            Some((id.clone(), intern(format!("{}{env}", prefix(id)))))
        })
        .collect();
    let rewrite = |text: String| {
        names.iter().fold(text, |text, (id, name)| {
            text.replace(&format!("`{id}`"), name)
        })
    };
    names.iter().fold(cmd, |cmd, (id, name)| {
        cmd.mut_arg(id, |mut arg| {
            if let Some(help) = arg.get_help().map(|h| rewrite(h.to_string())) {
                arg = arg.help(help);
            }
            if let Some(help) = arg.get_long_help().map(|h| rewrite(h.to_string())) {
                arg = arg.long_help(help);
            }
            arg.env(*name).value_name(*name)
        })
    })
}

/// clap wants `'static` names; the ones made from a service's prefix are interned once
/// each (a small, bounded leak: one string per distinct name), so building the command
/// again (help, tests) leaks nothing more.
#[cfg(feature = "clap")]
pub(crate) fn intern(text: String) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(name) = names.get(&text) {
        return name;
    }
    let leaked: &'static str = Box::leak(text.clone().into_boxed_str());
    names.insert(text, leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::HttpUrl;

    /// The halves' settings share the base layer, never each other's code.
    #[test]
    fn the_halves_settings_do_not_import_each_other() {
        let server = include_str!("server/settings.rs");
        let client = [
            include_str!("client/settings.rs"),
            include_str!("client/token_cache_settings.rs"),
        ];
        assert!(!server.contains(concat!("crate::", "client")));
        assert!(!server.contains(concat!("super::super::", "client")));
        for client in client {
            assert!(!client.contains(concat!("crate::", "server")));
        }
    }

    #[test]
    fn a_url_setting_is_http_or_https_with_a_host_and_kept_as_written() {
        for bad in ["ftp://x", "not a url", "issuer/token", "http://"] {
            assert_eq!(
                HttpUrl::parse(bad).unwrap_err(),
                "must be an http:// or https:// URL",
                "{bad}"
            );
        }
        let url = HttpUrl::parse("https://issuer.example/tenant/").unwrap();
        assert_eq!(url.as_str(), "https://issuer.example/tenant/");
        assert_eq!(url.base(), "https://issuer.example/tenant");
        assert!(HttpUrl::parse("http://127.0.0.1:7000").is_ok());
    }
}

/// The environment-variable names a service chose for its settings groups
/// (`server::ValidatorArgs`, `client::ClientArgs`, `client::TokenCacheArgs`): each prefix
/// goes before a setting's upper-case name. Every prefix has a default ([`AuthEnv`] takes
/// them all); a service overrides the ones it names otherwise.
pub trait EnvPrefix: Send + Sync + 'static {
    /// Before a validator's settings: `AUTH_` gives `AUTH_AUTHORITY`, `AUTH_TOKEN_PROFILE`.
    const PREFIX: &'static str = "AUTH_";
    /// Before the issuer's settings of a client: `AUTH_SERVER_` gives
    /// `AUTH_SERVER_TOKEN_ENDPOINT_URL`, `AUTH_SERVER_AUTHORITY`,
    /// `AUTH_SERVER_PROTECTED_RESOURCE`, `AUTH_SERVER_ALLOW_INSECURE_HTTP`.
    const ISSUER_PREFIX: &'static str = "AUTH_SERVER_";
    /// Before a client's own settings: `AUTH_CLIENT_` gives `AUTH_CLIENT_CLIENT_ID`,
    /// `..._CLIENT_SECRET`, `..._SCOPE`, ... (my-bff: `AUTH_SERVER_MYBFF_`).
    const CLIENT_PREFIX: &'static str = "AUTH_CLIENT_";
    /// Before the shared token cache's settings (feature `redis`): `AUTH_TOKEN_CACHE_`
    /// gives `AUTH_TOKEN_CACHE_REDIS_URL`, `..._KEY`, `..._KEY_FILE`, `..._KEY_PREFIX`.
    const TOKEN_CACHE_PREFIX: &'static str = "AUTH_TOKEN_CACHE_";
}

/// Every default prefix: `AUTH_AUTHORITY`, `AUTH_TOKEN_PROFILE`, ... (ASP.NET's names),
/// `AUTH_SERVER_TOKEN_ENDPOINT_URL`, `AUTH_TOKEN_CACHE_REDIS_URL`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthEnv;

impl EnvPrefix for AuthEnv {}
