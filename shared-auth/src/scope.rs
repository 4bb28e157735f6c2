//! Scopes: the vocabulary both halves share.
//!
//! A [`Scope`] is one scope token (RFC 6749 section 3.3: printable ASCII, no space, `"` or
//! `\`). A [`ScopeSet`] is an unordered set of them, parsed from the space-separated string
//! of a token request or a `scope` claim, or from the JSON array IdentityServer emits.

use std::fmt;
use std::str::FromStr;

/// One scope value, e.g. `MyService/weather_read`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

/// A scope value that breaks RFC 6749 section 3.3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {0:?}: a scope is non-empty printable ASCII without space, '\"' or '\\'")]
pub struct InvalidScope(pub String);

impl Scope {
    /// Checks and wraps one scope value.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidScope> {
        let value = value.into();
        let ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(Scope(value))
        } else {
            Err(InvalidScope(value))
        }
    }

    /// The scope as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Scope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::new(s)
    }
}

/// A set of scopes. Displays as the space-separated form, in sorted order.
///
/// A sorted vector without repeats rather than a `BTreeSet`: a token carries a handful of
/// scopes, and every first-seen token builds one set, where the tree's node allocation
/// cost more than the lookups it would save.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// The empty set.
    pub fn new() -> Self {
        ScopeSet::default()
    }

    /// Parses a space-separated list (RFC 6749 section 3.3). Repeated spaces are tolerated.
    pub fn parse(space_separated: &str) -> Result<Self, InvalidScope> {
        space_separated
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(Scope::new)
            .collect()
    }

    /// Whether `scope` is in the set (whole-value comparison, never a substring).
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
    }

    /// Whether every scope of `other` is in this set.
    pub fn contains_all(&self, other: &ScopeSet) -> bool {
        other.0.iter().all(|s| self.contains(s.as_str()))
    }

    /// Whether any scope of `other` is in this set.
    pub fn contains_any(&self, other: &ScopeSet) -> bool {
        other.0.iter().any(|s| self.contains(s.as_str()))
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) {
        if let Err(at) = self.0.binary_search(&scope) {
            self.0.insert(at, scope);
        }
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for ScopeSet {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScopeSet::parse(s)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut scopes: Vec<Scope> = iter.into_iter().collect();
        scopes.sort_unstable();
        scopes.dedup();
        ScopeSet(scopes)
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_space_separated_and_rejects_bad_characters() {
        let set = ScopeSet::parse("b  a b").unwrap();
        assert_eq!(set.to_string(), "a b");
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
        assert!(ScopeSet::parse("ä").is_err());
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn a_set_is_sorted_without_repeats_however_it_is_built() {
        let mut set: ScopeSet = ["c", "a", "c", "b"]
            .into_iter()
            .map(|s| Scope::new(s).unwrap())
            .collect();
        set.insert(Scope::new("a").unwrap());
        set.insert(Scope::new("0").unwrap());
        assert_eq!(set.to_string(), "0 a b c");
        assert_eq!(set, ScopeSet::parse("c b a 0 a").unwrap());
        assert!(set.contains_all(&ScopeSet::parse("a c").unwrap()));
        assert!(!set.contains_all(&ScopeSet::parse("a d").unwrap()));
        assert!(set.contains_any(&ScopeSet::parse("d 0").unwrap()));
        assert!(!set.contains_any(&ScopeSet::parse("d e").unwrap()));
    }

    #[test]
    fn contains_is_whole_value_never_substring() {
        let set = ScopeSet::parse("MyService/weather_read_all").unwrap();
        assert!(!set.contains("MyService/weather_read"));
        assert!(set.contains("MyService/weather_read_all"));
    }
}
