//! [`TokenError`]: why no access token could be had. Cheap to clone, because one failure
//! is handed to every caller that waited for the same token request.

/// Why no access token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The issuer refused the request (RFC 6749 section 5.2). Not retried.
    #[error("the issuer refused the token request: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The RFC 6749 `error` code, e.g. `invalid_client`, `invalid_scope`.
        error: String,
        /// `error_description`, if the issuer sent one.
        description: Option<String>,
    },
    /// The issuer answered with an HTTP error that is not an RFC 6749 error body.
    #[error("the token endpoint answered HTTP {status}")]
    Http {
        /// HTTP status.
        status: u16,
    },
    /// The token endpoint could not be reached or did not answer in time (after retries).
    #[error("the token endpoint is unreachable: {0}")]
    Transport(String),
    /// The issuer answered 200 with something that is not a usable token response.
    #[error("the token response is invalid: {0}")]
    InvalidResponse(String),
    /// The authority's discovery document could not be read.
    #[error("discovery failed: {0}")]
    Discovery(String),
    /// The client's own credential could not be used: an assertion file that cannot be
    /// read or is empty, a key that failed to sign. Not retried.
    #[error("the client credential cannot be used: {0}")]
    Credential(String),
    /// The token request's own parameters were refused before anything was sent: an extra
    /// parameter named like one of the grant's (`scope`, `client_id`, ...), from a client
    /// definition or a [`TokenRequestParams`](super::TokenRequestParams). A programming
    /// error; not retried.
    #[error("the token request parameters are refused: {0}")]
    InvalidParameters(String),
    /// A request sent through the
    /// [`TokenExchangeMiddleware`](super::TokenExchangeMiddleware) carried no
    /// [`OnBehalfOf`](super::OnBehalfOf) extension: there is no subject to exchange for,
    /// and the request is not sent (a call on behalf of nobody must not go with the
    /// service's own authority). A programming error; not retried.
    #[error("a token exchange needs a subject: the request carries no OnBehalfOf")]
    NoSubject,
    /// Retries ran out of time.
    #[error("no token within the retry budget of {0:?}")]
    Timeout(std::time::Duration),
}

impl TokenError {
    /// Whether another attempt may succeed (timeouts, connection errors, 5xx, 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            TokenError::Transport(_) => true,
            TokenError::Http { status } | TokenError::Rejected { status, .. } => {
                *status >= 500 || *status == 429
            }
            _ => false,
        }
    }
}
