//! What both halves' settings share: the error that names a setting, and the helpers of
//! their clap argument groups.

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

/// A clap value parser: an absolute http(s) URL (the transport policy is checked later,
/// with the opt-in known).
#[cfg(feature = "clap")]
pub(crate) fn http_url(value: &str) -> Result<String, String> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.to_owned())
    } else {
        Err("must be an http:// or https:// URL".to_owned())
    }
}

/// `prefix` + the field's upper-case name, or the field name when there is no prefix.
pub(crate) fn setting_name(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}{}", field.to_ascii_uppercase())
    }
}
