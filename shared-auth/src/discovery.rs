//! Issuer metadata discovery (OpenID Connect Discovery 1.0, RFC 8414), for both halves:
//! the resource server reads `issuer` and `jwks_uri` (and `introspection_endpoint` when it
//! accepts opaque tokens), the client `token_endpoint`.
//!
//! The document is trusted only as far as it is checked (RFC 8414 section 3.3): its
//! `issuer` must equal the issuer the caller expects, and every URL it hands over must
//! pass the same transport policy as configured URLs (see `issuer_http`). The expected
//! issuer is derived from the metadata URL where the URL's shape says it
//! ([`expected_issuer`]); elsewhere the caller must configure it.
//!
//! Protected resource metadata (RFC 9728) lives here too, for the same two halves: the
//! well-known URL a resource identifier implies ([`resource_metadata_url`]: the resource
//! server serves its document there, a client reads it), and the client's read of a
//! resource's document ([`fetch_resource`]), checked as RFC 9728 section 3.3 asks.

use std::time::Duration;

use serde::Deserialize;

use crate::issuer_http::{self, MAX_METADATA_BYTES};

/// The OIDC discovery path suffix.
pub(crate) const OIDC_WELL_KNOWN: &str = "/.well-known/openid-configuration";
/// The RFC 8414 path prefix.
const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// The RFC 9728 section 3.1 well-known path prefix.
pub(crate) const RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Where a resource's metadata lives (RFC 9728 section 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceMetadataUrl {
    /// The absolute URL: `{origin}/.well-known/oauth-protected-resource{path}`.
    pub(crate) url: String,
    /// Its path alone (the route the resource server serves).
    pub(crate) path: String,
}

/// The well-known metadata URL of the resource identifier `resource` (RFC 9728 section
/// 3.1): the well-known prefix goes between the host and the path; a path of just `/`
/// is no path (the slash after the host is removed), any other path is kept as it is,
/// a trailing slash included. The identifier must be an absolute `http(s)` URL with a
/// host and no query, fragment or user information (section 1.2 forbids the fragment and
/// discourages the query; refusing it keeps one document per resource and the derived
/// URL unambiguous). The transport policy (https, or loopback http) is the caller's
/// check (`issuer_http::check_url`), so that its error can name the opt-in.
pub(crate) fn resource_metadata_url(resource: &str) -> Result<ResourceMetadataUrl, String> {
    let url = reqwest::Url::parse(resource)
        .map_err(|e| format!("{resource:?} is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{resource:?} is not an http:// or https:// URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{resource:?}: a resource identifier has no query or fragment (RFC 9728 section 1.2)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{resource:?}: a resource identifier has no user information"
        ));
    }
    let path = match url.path() {
        "/" => "",
        path => path,
    };
    let path = format!("{RESOURCE_WELL_KNOWN}{path}");
    Ok(ResourceMetadataUrl {
        url: format!("{}{path}", url.origin().ascii_serialization()),
        path,
    })
}

/// What a protected resource's metadata says, checked (RFC 9728 section 3.3).
#[derive(Debug, Clone)]
pub(crate) struct ResourceMetadata {
    /// The document's `authorization_servers` (issuer identifiers), in its order.
    pub(crate) authorization_servers: Vec<String>,
}

/// Why a protected resource's metadata was not used.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ResourceMetadataError {
    /// The resource identifier cannot be used.
    #[error("the protected resource {resource:?} cannot be used: {reason}")]
    Resource { resource: String, reason: String },
    /// Fetching or parsing failed.
    #[error("cannot read the protected resource metadata at {url}: {reason}")]
    Fetch { url: String, reason: String },
    /// The document is about another resource (RFC 9728 section 3.3: it must not be used).
    #[error(
        "the protected resource metadata at {url} is for resource {found:?}, not {expected:?} (RFC 9728 section 3.3)"
    )]
    ResourceMismatch {
        url: String,
        expected: String,
        found: String,
    },
    /// The document names no usable authorization server.
    #[error(
        "the protected resource metadata at {url} names no usable authorization server: {reason}"
    )]
    NoAuthorizationServer { url: String, reason: String },
}

/// Fetches the metadata of the protected resource `resource` and checks that its
/// `resource` is identical to `resource` (RFC 9728 section 3.3: no normalisation, not even
/// of a trailing slash), and that each of its authorization servers is a URL the transport
/// policy allows (the caller still runs discovery on the one it picks).
pub(crate) async fn fetch_resource(
    http: &reqwest::Client,
    resource: &str,
    allow_insecure_http: bool,
    timeout: Duration,
) -> Result<ResourceMetadata, ResourceMetadataError> {
    #[derive(Deserialize)]
    struct Document {
        resource: String,
        #[serde(default)]
        authorization_servers: Vec<String>,
    }
    let bad_resource = |reason: String| ResourceMetadataError::Resource {
        resource: resource.to_owned(),
        reason,
    };
    issuer_http::check_url(resource, allow_insecure_http)
        .map_err(|e| bad_resource(e.to_string()))?;
    let url = resource_metadata_url(resource).map_err(bad_resource)?.url;
    let fail = |reason: String| ResourceMetadataError::Fetch {
        url: url.clone(),
        reason,
    };
    let body = issuer_http::get_capped(http, &url, timeout, MAX_METADATA_BYTES)
        .await
        .map_err(fail)?;
    let doc: Document = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
    if doc.resource != resource {
        return Err(ResourceMetadataError::ResourceMismatch {
            url,
            expected: resource.to_owned(),
            found: doc.resource,
        });
    }
    if doc.authorization_servers.is_empty() {
        return Err(ResourceMetadataError::NoAuthorizationServer {
            url,
            reason: "authorization_servers is missing or empty".into(),
        });
    }
    for server in &doc.authorization_servers {
        if let Err(e) = issuer_http::check_url(server, allow_insecure_http) {
            return Err(ResourceMetadataError::NoAuthorizationServer {
                url,
                reason: e.to_string(),
            });
        }
    }
    tracing::debug!(%resource, authorization_servers = ?doc.authorization_servers, "protected resource metadata read");
    Ok(ResourceMetadata {
        authorization_servers: doc.authorization_servers,
    })
}

/// What the discovery document says.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub(crate) issuer: String,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) token_endpoint: Option<String>,
    /// RFC 8414 section 2 (RFC 7662).
    pub(crate) introspection_endpoint: Option<String>,
    /// Where users log in (OpenID Connect Discovery, RFC 8414).
    pub(crate) authorization_endpoint: Option<String>,
    /// RFC 7009.
    pub(crate) revocation_endpoint: Option<String>,
    /// OpenID Connect RP-Initiated Logout 1.0.
    pub(crate) end_session_endpoint: Option<String>,
    /// RFC 8705 section 5: the token endpoint for clients that authenticate with mutual
    /// TLS (`mtls_endpoint_aliases.token_endpoint`).
    pub(crate) mtls_token_endpoint: Option<String>,
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
    /// `authorization_endpoint`, `token_endpoint` and `jwks_uri` (user login).
    Login,
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
        authorization_endpoint: Option<String>,
        revocation_endpoint: Option<String>,
        end_session_endpoint: Option<String>,
        mtls_endpoint_aliases: Option<Aliases>,
    }
    #[derive(Deserialize)]
    struct Aliases {
        token_endpoint: Option<String>,
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
    let login = need == Need::Login;
    let jwks_uri = checked("jwks_uri", doc.jwks_uri, need == Need::Keys || login)?;
    let token_endpoint = checked(
        "token_endpoint",
        doc.token_endpoint,
        need == Need::TokenEndpoint || login,
    )?;
    let authorization_endpoint =
        checked("authorization_endpoint", doc.authorization_endpoint, login)?;
    let revocation_endpoint = checked("revocation_endpoint", doc.revocation_endpoint, false)?;
    let end_session_endpoint = checked("end_session_endpoint", doc.end_session_endpoint, false)?;
    let mtls_token_endpoint = checked(
        "mtls_endpoint_aliases.token_endpoint",
        doc.mtls_endpoint_aliases.and_then(|a| a.token_endpoint),
        false,
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
        authorization_endpoint,
        revocation_endpoint,
        end_session_endpoint,
        mtls_token_endpoint,
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

    #[test]
    fn the_resource_metadata_url_follows_rfc9728_section_3_1() {
        let derive = |r: &str| resource_metadata_url(r).map(|m| (m.url, m.path));
        let wk = RESOURCE_WELL_KNOWN;
        // No path, with and without the slash after the host.
        for r in ["https://api.example", "https://api.example/"] {
            assert_eq!(
                derive(r).unwrap(),
                (format!("https://api.example{wk}"), wk.to_owned())
            );
        }
        // A path goes after the well-known prefix; the port stays with the origin.
        assert_eq!(
            derive("http://127.0.0.1:7062/orders/v1").unwrap(),
            (
                format!("http://127.0.0.1:7062{wk}/orders/v1"),
                format!("{wk}/orders/v1")
            )
        );
        // A trailing slash on a path is part of the identifier, so part of the URL.
        assert_eq!(
            derive("https://api.example/orders/").unwrap().0,
            format!("https://api.example{wk}/orders/")
        );
        for bad in [
            "https://api.example/?tenant=1",
            "https://api.example/x#frag",
            "https://user:pw@api.example/",
            "ftp://api.example/",
            "api.example",
            "",
        ] {
            assert!(derive(bad).is_err(), "{bad} was accepted");
        }
        assert!(
            derive("https://api.example/?x")
                .unwrap_err()
                .contains("query")
        );
    }
}
