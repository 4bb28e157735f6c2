//! One trusted issuer of a validator: its key cache, started from its configuration, and
//! the rules its tokens must meet. A validator holds one per issuer and routes each token
//! to one of them by its `iss`.

use std::sync::Arc;

use super::claims::Rules;
use super::claims::TokenProfile;
use super::config::{IssuerConfig, MetadataSource};
use super::error::StartError;
use crate::discovery;
use crate::issuer_http;
use crate::jose::SignatureAlgorithm;
use crate::jwks::{KeyCache, KeyCacheTiming, KeySource, RefreshError};
use crate::scope::Scope;

/// One trusted issuer: its keys, and what its tokens must look like.
pub(crate) struct IssuerState {
    pub(crate) keys: Arc<KeyCache>,
    /// The algorithms a token may name.
    pub(crate) algorithms: Vec<SignatureAlgorithm>,
    /// The issuer a token's `iss` is matched against (trailing slash aside) until
    /// discovery gave the exact one: configured or implied by the metadata source.
    pub(crate) hint: Option<String>,
    /// What its tokens must satisfy beyond the signature.
    pub(crate) rules: Rules,
}

impl IssuerState {
    /// Whether a token whose unverified `iss` is `iss` belongs to this issuer. The exact
    /// comparison is the claims check's, after the signature.
    pub(crate) fn claims(&self, iss: &str) -> bool {
        match (self.keys.issuer(), &self.hint) {
            (Some(exact), _) => exact == iss,
            (None, Some(hint)) => discovery::trim_slash(hint) == discovery::trim_slash(iss),
            (None, None) => false,
        }
    }
}

/// The name an issuer goes by in metrics and errors: its expected `iss` when the
/// configuration says it, else the metadata URL it is discovered from.
pub(crate) fn issuer_label(config: &IssuerConfig) -> String {
    let expected = match &config.metadata {
        MetadataSource::MetadataAddress(_) => config
            .issuer
            .clone()
            .or_else(|| config.metadata.implied_issuer()),
        _ => config.metadata.implied_issuer(),
    };
    expected
        .map(|i| discovery::trim_slash(&i).to_owned())
        .unwrap_or_else(|| match &config.metadata {
            MetadataSource::Authority(url) | MetadataSource::MetadataAddress(url) => url.clone(),
            MetadataSource::Jwks { issuer, .. } => issuer.clone(),
        })
}

/// Checks one issuer's configuration, builds its key cache, and loads its keys (unless
/// lazy). `on_invalidate` runs when a refresh withdrew or replaced key material (it
/// clears what was validated with it).
pub(crate) async fn start_issuer(
    config: &IssuerConfig,
    http: &reqwest::Client,
    on_invalidate: Box<dyn Fn() + Send + Sync>,
    timing: KeyCacheTiming,
    allow_insecure_http: bool,
    label: &str,
) -> Result<IssuerState, StartError> {
    let algorithms = config.algorithms.clone();
    if algorithms.is_empty() {
        return Err(StartError::Config(
            "no asymmetric signature algorithm allowed".into(),
        ));
    }
    let check = |url: &str| {
        issuer_http::check_url(url, allow_insecure_http)
            .map_err(|e| StartError::Config(e.to_string()))
    };
    let (source, issuer, hint) = match &config.metadata {
        MetadataSource::Jwks { jwks_uri, issuer } => {
            check(jwks_uri)?;
            (
                KeySource::Jwks(jwks_uri.clone()),
                Some(issuer.clone()),
                Some(issuer.clone()),
            )
        }
        MetadataSource::Authority(authority) => {
            check(authority)?;
            let expected = discovery::trim_slash(authority).to_owned();
            let source = KeySource::Discovery {
                url: discovery::authority_url(authority),
                expected_issuer: (!config.allow_issuer_mismatch).then(|| expected.clone()),
            };
            // The exact `iss` is the discovered one (checked against the expected one,
            // trailing slash aside), known once discovery ran.
            let hint = (!config.allow_issuer_mismatch).then_some(expected);
            (source, None, hint)
        }
        MetadataSource::MetadataAddress(url) => {
            check(url)?;
            let expected = match (&config.issuer, config.metadata.implied_issuer()) {
                (Some(configured), _) => Some(configured.clone()),
                (None, Some(derived)) => Some(derived),
                (None, None) if config.allow_issuer_mismatch => None,
                (None, None) => {
                    return Err(StartError::IssuerRequired { url: url.clone() });
                }
            };
            let expected = expected.filter(|_| !config.allow_issuer_mismatch);
            let source = KeySource::Discovery {
                url: url.clone(),
                expected_issuer: expected.clone(),
            };
            (source, None, expected)
        }
    };
    let scope_aliases = config
        .scope_aliases
        .iter()
        .map(|(from, to)| {
            Scope::new(to.clone())
                .map(|to| (from.clone(), to))
                .map_err(|e| StartError::Config(format!("scope alias {from:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let audience = match &config.profile {
        TokenProfile::Rfc9068 { audience } => Some(audience.clone()),
        TokenProfile::Generic { audience } => audience.clone(),
        TokenProfile::Cognito { .. } => None,
    };
    let keys = Arc::new(
        KeyCache::new(
            http.clone(),
            source,
            issuer,
            algorithms.clone(),
            allow_insecure_http,
            timing,
            on_invalidate,
        )
        .labelled(label.to_owned()),
    );
    if config.lazy {
        // Discovery and the first key load happen in the background (and on demand):
        // the service starts whatever state the issuer is in.
        keys.spawn_background_refresh(true);
    } else {
        keys.refresh_now("start").await.map_err(|e| match e {
            RefreshError::Discovery(d) => StartError::from(d),
            RefreshError::Keys(k) => StartError::Keys(k),
        })?;
        keys.spawn_background_refresh(false);
    }
    Ok(IssuerState {
        keys,
        algorithms,
        hint,
        rules: Rules {
            profile: config.profile.clone(),
            audience,
            scope_aliases,
        },
    })
}
