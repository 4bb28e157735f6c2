//! Local users: the people who can sign in at the issuer's login page.
//!
//! They come from the configuration (`[[users]]` in `issuer.toml`), as clients do, so a
//! developer running `just up` can log in to the BFF with a dev user and a test can log in
//! with a known one. A password is given in the file (`password`) or read from the
//! environment at start (`password_env`), mirroring a client's `client_secret` /
//! `client_secret_env`. Passwords are compared in constant time and never printed: the
//! `Debug` of a user redacts it, and no log line carries it.
//!
//! ```toml
//! [[users]]
//! username = "alice"
//! password_env = "MOCK_ISSUER_ALICE_PASSWORD"   # or password = "..."
//! sub = "alice"                                 # default: the username
//! name = "Alice Example"                        # optional: `name` in the ID token (scope profile)
//! email = "alice@example.test"                  # optional: `email` in the ID token (scope email)
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use crate::config::ConfigError;

/// A user who can sign in at the login page.
#[derive(Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// What the user types in the login form.
    pub username: String,
    /// The password (never printed by `Debug`).
    pub password: String,
    /// The subject identifier: `sub` of the user's ID and access tokens.
    pub sub: String,
    /// Display name (`name` claim, with the `profile` scope).
    pub name: Option<String>,
    /// E-mail address (`email` claim, with the `email` scope).
    pub email: Option<String>,
}

impl UserConfig {
    /// A user whose `sub` is the username.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        let username = username.into();
        UserConfig {
            sub: username.clone(),
            username,
            password: password.into(),
            name: None,
            email: None,
        }
    }

    /// Sets the subject identifier.
    pub fn with_sub(mut self, sub: impl Into<String>) -> Self {
        self.sub = sub.into();
        self
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the e-mail address.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("sub", &self.sub)
            .field("name", &self.name)
            .field("email", &self.email)
            .finish()
    }
}

/// A `[[users]]` entry as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUser {
    username: String,
    password: Option<String>,
    password_env: Option<String>,
    sub: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

fn invalid(key: String, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl RawUser {
    /// The user, with its password resolved (`env` looks up `password_env`). `i` is its
    /// index, for the key named in errors.
    pub(crate) fn resolve(
        self,
        i: usize,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<UserConfig, ConfigError> {
        let password = match (self.password, self.password_env) {
            (Some(p), None) => p,
            (None, Some(var)) => env(&var).filter(|v| !v.is_empty()).ok_or_else(|| {
                invalid(
                    format!("users[{i}].password_env"),
                    format!("environment variable {var} is not set or empty"),
                )
            })?,
            (Some(_), Some(_)) => {
                return Err(invalid(
                    format!("users[{i}]"),
                    "set either password or password_env, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    format!("users[{i}].password"),
                    "missing: set password or password_env",
                ));
            }
        };
        Ok(UserConfig {
            sub: self.sub.unwrap_or_else(|| self.username.clone()),
            username: self.username,
            password,
            name: self.name,
            email: self.email,
        })
    }
}

/// Checks the users: names and subjects non-empty, printable and unique, passwords at
/// least 8 characters.
pub(crate) fn validate(users: &[UserConfig]) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    let mut subs = BTreeSet::new();
    for (i, u) in users.iter().enumerate() {
        let printable = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
        if !printable(&u.username) {
            return Err(invalid(
                format!("users[{i}].username"),
                "must be non-empty and printable",
            ));
        }
        if !names.insert(u.username.as_str()) {
            return Err(invalid(
                format!("users[{i}].username"),
                format!("duplicate username {:?}", u.username),
            ));
        }
        if !printable(&u.sub) {
            return Err(invalid(
                format!("users[{i}].sub"),
                "must be non-empty and printable",
            ));
        }
        if !subs.insert(u.sub.as_str()) {
            return Err(invalid(
                format!("users[{i}].sub"),
                format!("duplicate sub {:?}", u.sub),
            ));
        }
        if u.password.chars().count() < 8 {
            return Err(invalid(
                format!("users[{i}].password"),
                "must be at least 8 characters",
            ));
        }
    }
    Ok(())
}

/// Compares in constant time; both sides are hashed first so the length and common
/// prefixes of the real value do not show in the timing.
fn same_secret(given: &str, expected: &str) -> bool {
    let sha = |s: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    bool::from(sha(given).as_ref().ct_eq(sha(expected).as_ref()))
}

/// The user with this username and password, if both are right. An unknown username costs
/// the same comparison as a known one.
pub(crate) fn authenticate<'a>(
    users: &'a [UserConfig],
    username: &str,
    password: &str,
) -> Option<&'a UserConfig> {
    let user = users.iter().find(|u| u.username == username);
    let expected = user.map_or("unknown-user-dummy-password", |u| u.password.as_str());
    let ok = same_secret(password, expected);
    user.filter(|_| ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_checked_and_never_printed() {
        let users = [UserConfig::new("alice", "correct-horse").with_sub("u-1")];
        assert_eq!(
            authenticate(&users, "alice", "correct-horse").map(|u| u.sub.as_str()),
            Some("u-1")
        );
        assert!(authenticate(&users, "alice", "wrong-horse").is_none());
        assert!(authenticate(&users, "bob", "correct-horse").is_none());
        assert!(!format!("{:?}", users[0]).contains("correct-horse"));
    }

    #[test]
    fn validation_names_the_key() {
        let short = [UserConfig::new("a", "short")];
        assert!(
            validate(&short)
                .unwrap_err()
                .to_string()
                .contains("users[0].password")
        );
        let dup = [
            UserConfig::new("a", "long-enough"),
            UserConfig::new("a", "long-enough").with_sub("other"),
        ];
        assert!(
            validate(&dup)
                .unwrap_err()
                .to_string()
                .contains("users[1].username")
        );
    }
}
