//! OAuth 2.0 Protected Resource Metadata (RFC 9728), the resource server's side: a
//! [`ProtectedResource`] in [`ValidatorConfig::resource`](super::ValidatorConfig::resource)
//! makes the validator
//!
//! - publish the resource's metadata document with
//!   [`JwtValidator::resource_metadata_router`](super::JwtValidator::resource_metadata_router), at the well-known path RFC 9728 section
//!   3.1 derives from the resource identifier (`/.well-known/oauth-protected-resource`,
//!   then the identifier's path, if any): `resource`, `authorization_servers` (the
//!   validator's issuer), `scopes_supported`, `bearer_methods_supported` (`header`: the
//!   only one the auth layer reads), and with DPoP on, `dpop_signing_alg_values_supported`
//!   and `dpop_bound_access_tokens_required`;
//! - add `resource_metadata="<that document's URL>"` to every `WWW-Authenticate` challenge
//!   of the auth layer's 401 (and 400) answers (section 5.1), so that a client that only
//!   knows the API's URL can find the issuer to get a token from.
//!
//! The document is built once at start but for `authorization_servers`, which is read per
//! request: a lazily started validator learns its issuer from discovery later.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::dpop::{DpopConfig, DpopMode};
use super::error::StartError;
use crate::discovery;
use crate::issuer_http;

/// How long clients may cache the document (`Cache-Control: max-age`, seconds). It changes
/// only with the service's configuration, so a restart; an hour bounds how long a client
/// keeps an old issuer after a move.
pub(crate) const METADATA_MAX_AGE_SECS: u64 = 3600;

/// What a resource server says about itself in its RFC 9728 metadata. The rest of the
/// document (`authorization_servers`, the DPoP members) comes from the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtectedResource {
    /// The resource identifier: this API's URL as clients address it (`https://`, or
    /// `http://` to a loopback host; no query or fragment). Clients compare the document's
    /// `resource` with the URL they were given character for character (RFC 9728 section
    /// 3.3), so use the exact form they are configured with.
    pub resource: String,
    /// `scopes_supported`: the scopes a client may request for this API (omitted when
    /// empty).
    pub scopes_supported: Vec<String>,
    /// `resource_name`: a human-readable name.
    pub resource_name: Option<String>,
    /// `resource_documentation`: a URL of documentation for developers.
    pub resource_documentation: Option<String>,
}

impl ProtectedResource {
    /// The resource `resource`, with no scopes, name or documentation.
    pub fn new(resource: impl Into<String>) -> Self {
        ProtectedResource {
            resource: resource.into(),
            scopes_supported: Vec::new(),
            resource_name: None,
            resource_documentation: None,
        }
    }

    /// With these `scopes_supported`.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// A [`ProtectedResource`] checked and ready to serve: the document's fixed members, where
/// it is served, and the challenge parameter that points at it.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    /// The document without `authorization_servers`.
    fixed: serde_json::Map<String, Value>,
    /// The route (the metadata URL's path).
    path: String,
    /// `resource_metadata="<absolute URL>"`, for the challenges.
    challenge_param: String,
}

impl Published {
    /// Checks `resource` (an error names the setting as `AUTH_RESOURCE` does) and builds
    /// the document's fixed part from it and the DPoP configuration.
    pub(crate) fn new(
        resource: &ProtectedResource,
        dpop: &DpopConfig,
        allow_insecure_http: bool,
    ) -> Result<Self, StartError> {
        let fail = |reason: String| {
            StartError::Config(format!("protected resource (AUTH_RESOURCE): {reason}"))
        };
        issuer_http::check_url(&resource.resource, allow_insecure_http)
            .map_err(|e| fail(e.to_string()))?;
        let location = discovery::resource_metadata_url(&resource.resource).map_err(fail)?;
        let mut fixed = serde_json::Map::new();
        fixed.insert("resource".into(), json!(resource.resource));
        if !resource.scopes_supported.is_empty() {
            fixed.insert("scopes_supported".into(), json!(resource.scopes_supported));
        }
        // The auth layer reads the Authorization header only (RFC 6750 section 2.1).
        fixed.insert("bearer_methods_supported".into(), json!(["header"]));
        if let Some(name) = &resource.resource_name {
            fixed.insert("resource_name".into(), json!(name));
        }
        if let Some(doc) = &resource.resource_documentation {
            fixed.insert("resource_documentation".into(), json!(doc));
        }
        if dpop.mode != DpopMode::Off {
            let algs: Vec<&str> = dpop.algorithms.iter().map(|a| a.name()).collect();
            fixed.insert("dpop_signing_alg_values_supported".into(), json!(algs));
        }
        if dpop.mode == DpopMode::Required {
            fixed.insert("dpop_bound_access_tokens_required".into(), json!(true));
        }
        // The URL is a serialised `url::Url` (percent-encoded), so it holds no `"` or `\`
        // and is a valid quoted-string as it is.
        let challenge_param = format!("resource_metadata=\"{}\"", location.url);
        Ok(Published {
            fixed,
            path: location.path,
            challenge_param,
        })
    }

    /// `resource_metadata="..."`.
    pub(crate) fn challenge_param(&self) -> &str {
        &self.challenge_param
    }

    /// The whole document, with `authorization_servers` as given.
    fn document(&self, authorization_servers: Vec<String>) -> Value {
        let mut doc = self.fixed.clone();
        doc.insert("authorization_servers".into(), json!(authorization_servers));
        Value::Object(doc)
    }
}

impl Published {
    /// A router serving this document at its well-known path, with
    /// `authorization_servers` read on every request (a lazily started validator learns its
    /// issuer after start). See `JwtValidator::resource_metadata_router`, which calls this:
    /// the document does not know the validator, so the two modules do not import each
    /// other.
    pub(crate) fn router<S, F>(&self, authorization_servers: F) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        F: Fn() -> Vec<String> + Clone + Send + Sync + 'static,
    {
        let published = std::sync::Arc::new(self.clone());
        let path = published.path.clone();
        Router::new().route(
            &path,
            get(move || {
                let published = published.clone();
                let servers = authorization_servers.clone();
                async move { published.response(servers()) }
            }),
        )
    }

    /// The document as a response.
    fn response(&self, authorization_servers: Vec<String>) -> Response {
        let doc = self.document(authorization_servers);
        let cache = HeaderValue::from_str(&format!("public, max-age={METADATA_MAX_AGE_SECS}"))
            .unwrap_or(HeaderValue::from_static("no-cache"));
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, cache),
            ],
            doc.to_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::SignatureAlgorithm;

    fn published(resource: &str, mode: DpopMode) -> Result<Published, StartError> {
        let dpop = DpopConfig {
            mode,
            algorithms: vec![SignatureAlgorithm::ES256, SignatureAlgorithm::EdDSA],
            ..DpopConfig::default()
        };
        Published::new(
            &ProtectedResource::new(resource).with_scopes(["a/read", "a/write"]),
            &dpop,
            false,
        )
    }

    #[test]
    fn the_document_says_what_the_validator_accepts() {
        let p = published("https://api.example/orders", DpopMode::Off).unwrap();
        assert_eq!(p.path, "/.well-known/oauth-protected-resource/orders");
        assert_eq!(
            p.challenge_param(),
            "resource_metadata=\"https://api.example/.well-known/oauth-protected-resource/orders\""
        );
        let doc = p.document(vec!["https://issuer.example".into()]);
        assert_eq!(
            doc,
            json!({
                "resource": "https://api.example/orders",
                "authorization_servers": ["https://issuer.example"],
                "scopes_supported": ["a/read", "a/write"],
                "bearer_methods_supported": ["header"],
            })
        );
        let doc = published("https://api.example", DpopMode::Allowed)
            .unwrap()
            .document(vec![]);
        assert_eq!(
            doc["dpop_signing_alg_values_supported"],
            json!(["ES256", "EdDSA"])
        );
        assert!(doc.get("dpop_bound_access_tokens_required").is_none());
        let doc = published("https://api.example", DpopMode::Required)
            .unwrap()
            .document(vec![]);
        assert_eq!(doc["dpop_bound_access_tokens_required"], json!(true));
    }

    #[tokio::test]
    async fn before_lazy_discovery_the_configured_issuer_is_listed() {
        use crate::server::{JwtValidator, MetadataSource, TokenProfile, ValidatorConfig};
        // Nothing listens on the discard port: discovery cannot have run.
        let mut config = ValidatorConfig::new(
            MetadataSource::Authority("http://127.0.0.1:9/".into()),
            TokenProfile::Generic { audience: None },
        );
        config.lazy = true;
        config.resource = Some(ProtectedResource::new("http://127.0.0.1:7062"));
        let validator = JwtValidator::new(config).await.unwrap();
        assert_eq!(validator.issuer(), None);
        assert_eq!(validator.authorization_servers(), ["http://127.0.0.1:9"]);
        let response = validator
            .resource_metadata()
            .unwrap()
            .response(validator.authorization_servers());
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=3600"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["authorization_servers"], json!(["http://127.0.0.1:9"]));
        assert_eq!(doc["resource"], "http://127.0.0.1:7062");
    }

    #[test]
    fn a_bad_resource_identifier_is_a_start_error_naming_the_setting() {
        for bad in [
            "http://api.example/",
            "https://api.example/?q=1",
            "not a url",
        ] {
            let e = published(bad, DpopMode::Off).unwrap_err().to_string();
            assert!(e.contains("AUTH_RESOURCE"), "{bad}: {e}");
        }
        assert!(published("http://127.0.0.1:7062", DpopMode::Off).is_ok());
    }
}
