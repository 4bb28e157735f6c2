//! Issuer metadata discovery (OpenID Connect Discovery 1.0, RFC 8414), for both halves:
//! the resource server reads `issuer` and `jwks_uri` (and `introspection_endpoint` when it
//! accepts opaque tokens), the client `token_endpoint`.
//!
//! The document is trusted only as far as it is checked (RFC 8414 section 3.3): its
//! `issuer` must equal the issuer the caller expects, and every URL it hands over must
//! pass the same transport policy as configured URLs (see `issuer_http`). The expected
//! issuer is derived from the metadata URL where the URL's shape says it
//! ([`expected_issuer`]); elsewhere the caller must configure it.

use std::time::Duration;

use serde::Deserialize;

use crate::issuer_http::{self, MAX_METADATA_BYTES};

/// The OIDC discovery path suffix.
pub(crate) const OIDC_WELL_KNOWN: &str = "/.well-known/openid-configuration";
/// The RFC 8414 path prefix.
const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// What the discovery document says.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub(crate) issuer: String,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) token_endpoint: Option<String>,
    /// RFC 8414 section 2 (RFC 7662).
    pub(crate) introspection_endpoint: Option<String>,
}

/// Why discovery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum DiscoveryError {
    /// Fetching or parsing failed.
    #[error("cannot read the discovery document at {url}: {reason}")]
    Fetch { url: String, reason: String },
    /// The document names another issuer.
    #[error("the discovery document at {url} names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    /// A URL in the document breaks the transport policy.
    #[error("the discovery document at {url} hands over an unusable {field}: {reason}")]
    UnusableUrl {
        url: String,
        field: &'static str,
        reason: String,
    },
}

pub(crate) fn trim_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

/// The discovery URL of an authority.
pub(crate) fn authority_url(authority: &str) -> String {
    format!("{}{OIDC_WELL_KNOWN}", trim_slash(authority))
}

/// The issuer a metadata URL implies, when its shape says it:
/// `{issuer}/.well-known/openid-configuration` (OIDC), or
/// `{origin}/.well-known/oauth-authorization-server{path}` (RFC 8414 section 3.1, issuer
/// `{origin}{path}`). `None` for any other URL: then the issuer must be configured.
pub(crate) fn expected_issuer(metadata_url: &str) -> Option<String> {
    if let Some(issuer) = metadata_url.strip_suffix(OIDC_WELL_KNOWN) {
        return Some(trim_slash(issuer).to_owned());
    }
    let url = reqwest::Url::parse(metadata_url).ok()?;
    let rest = url.path().strip_prefix(OAUTH_WELL_KNOWN)?;
    if !(rest.is_empty() || rest.starts_with('/')) || url.query().is_some() {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    Some(format!("{origin}{}", trim_slash(rest)))
}

/// Which endpoint of the document the caller will use: that one must pass the transport
/// policy; the other, if it fails it, is dropped with a warning (a resource server that
/// shows a token endpoint only in its OpenAPI document need not refuse to start over it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// `jwks_uri` (the resource server).
    Keys,
    /// `token_endpoint` (the client).
    TokenEndpoint,
    /// `introspection_endpoint` (a resource server that accepts opaque tokens).
    Introspection,
}

/// Fetches and checks the document at `url`. `expected_issuer`: `None` only when the
/// operator opted out of the issuer check.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    url: &str,
    expected_issuer: Option<&str>,
    allow_insecure_http: bool,
    timeout: Duration,
    need: Need,
) -> Result<Metadata, DiscoveryError> {
    #[derive(Deserialize)]
    struct Document {
        issuer: String,
        jwks_uri: Option<String>,
        token_endpoint: Option<String>,
        introspection_endpoint: Option<String>,
    }
    let fail = |reason: String| DiscoveryError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let body = issuer_http::get_capped(http, url, timeout, MAX_METADATA_BYTES)
        .await
        .map_err(fail)?;
    let doc: Document = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
    if let Some(expected) = expected_issuer
        && trim_slash(&doc.issuer) != trim_slash(expected)
    {
        return Err(DiscoveryError::IssuerMismatch {
            url: url.to_owned(),
            expected: expected.to_owned(),
            found: doc.issuer,
        });
    }
    let checked = |field: &'static str, value: Option<String>, needed: bool| {
        let Some(value) = value else { return Ok(None) };
        match issuer_http::check_url(&value, allow_insecure_http) {
            Ok(()) => Ok(Some(value)),
            Err(e) if needed => Err(DiscoveryError::UnusableUrl {
                url: url.to_owned(),
                field,
                reason: e.to_string(),
            }),
            Err(e) => {
                tracing::warn!(field, error = %e, "discovery document: unusable endpoint ignored");
                Ok(None)
            }
        }
    };
    let jwks_uri = checked("jwks_uri", doc.jwks_uri, need == Need::Keys)?;
    let token_endpoint = checked(
        "token_endpoint",
        doc.token_endpoint,
        need == Need::TokenEndpoint,
    )?;
    let introspection_endpoint = checked(
        "introspection_endpoint",
        doc.introspection_endpoint,
        need == Need::Introspection,
    )?;
    tracing::debug!(issuer = %doc.issuer, jwks_uri = ?jwks_uri, "issuer metadata discovered");
    Ok(Metadata {
        issuer: doc.issuer,
        jwks_uri,
        token_endpoint,
        introspection_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_issuer_follows_from_the_metadata_url_shape() {
        assert_eq!(
            expected_issuer("https://as.example/tenant/.well-known/openid-configuration")
                .as_deref(),
            Some("https://as.example/tenant")
        );
        assert_eq!(
            expected_issuer("https://as.example/.well-known/oauth-authorization-server/t1")
                .as_deref(),
            Some("https://as.example/t1")
        );
        assert_eq!(
            expected_issuer("https://as.example/.well-known/oauth-authorization-server").as_deref(),
            Some("https://as.example")
        );
        assert_eq!(expected_issuer("https://as.example/metadata.json"), None);
        assert_eq!(
            expected_issuer("https://as.example/.well-known/oauth-authorization-serverX"),
            None
        );
    }
}
