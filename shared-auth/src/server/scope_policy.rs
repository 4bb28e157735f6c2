//! [`RequireScopeLayer`]: require scopes (or any predicate over the caller) on a route.
//!
//! ```no_run
//! use axum::{Router, handler::Handler, routing::get};
//! use shared_auth::server::{JwtAuthLayer, JwtValidator, RequireScopeLayer};
//!
//! # fn demo(validator: JwtValidator) {
//! async fn list() -> &'static str { "[]" }
//! async fn create() -> &'static str { "{}" }
//! let app: Router = Router::new()
//!     .route(
//!         "/weatherforecast",
//!         get(list.layer(RequireScopeLayer::one("MyService/weather_read")))
//!             .post(create.layer(RequireScopeLayer::one("MyService/weather_write")))
//!             .route_layer(JwtAuthLayer::new(validator)),
//!     );
//! # }
//! ```
//!
//! It runs after [`JwtAuthLayer`](super::JwtAuthLayer) and reads the
//! [`Principal`] it left in the request extensions. A caller without the scope gets 403 with
//! `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."` (ASP.NET sends no
//! header on 403; RFC 6750 section 3.1 says to). Without the auth layer in front, the
//! request fails closed with 500 and a log line naming the mistake.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, Response};
use axum::response::IntoResponse as _;
use tower::{Layer, Service};

use super::challenge;
use super::principal::{MissingAuthLayer, Principal};
use super::response_future::AuthFuture;

type Predicate = dyn Fn(&Principal) -> bool + Send + Sync;

enum Policy {
    All(Vec<String>),
    Any(Vec<String>),
    Custom {
        description: String,
        check: Box<Predicate>,
    },
}

impl Policy {
    fn allows(&self, principal: &Principal) -> bool {
        match self {
            Policy::All(scopes) => scopes.iter().all(|s| principal.has_scope(s)),
            Policy::Any(scopes) => scopes.iter().any(|s| principal.has_scope(s)),
            Policy::Custom { check, .. } => check(principal),
        }
    }

    /// The `scope` attribute of the challenge.
    fn required(&self) -> String {
        match self {
            Policy::All(s) | Policy::Any(s) => s.join(" "),
            Policy::Custom { .. } => String::new(),
        }
    }

    fn detail(&self) -> String {
        match self {
            Policy::All(s) if s.len() == 1 => format!("The access token lacks the scope {}.", s[0]),
            Policy::All(s) => format!("The access token needs all of the scopes {}.", s.join(", ")),
            Policy::Any(s) => format!("The access token needs one of the scopes {}.", s.join(", ")),
            Policy::Custom { description, .. } => {
                format!("The caller does not satisfy the policy: {description}.")
            }
        }
    }
}

/// Layer that lets a request through only if the caller satisfies a policy.
#[derive(Clone)]
pub struct RequireScopeLayer {
    policy: Arc<Policy>,
}

impl fmt::Debug for RequireScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeLayer")
            .field("required", &self.policy.required())
            .finish()
    }
}

fn owned(scopes: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    scopes.into_iter().map(Into::into).collect()
}

impl RequireScopeLayer {
    /// Requires one scope.
    pub fn one(scope: impl Into<String>) -> Self {
        Self::all([scope])
    }

    /// Requires every listed scope.
    pub fn all(scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RequireScopeLayer {
            policy: Arc::new(Policy::All(owned(scopes))),
        }
    }

    /// Requires at least one of the listed scopes.
    pub fn any(scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RequireScopeLayer {
            policy: Arc::new(Policy::Any(owned(scopes))),
        }
    }

    /// Requires a custom predicate over the caller (ASP.NET's RequireClaim /
    /// RequireAssertion). `description` says what it checks; it is sent in the 403 body.
    pub fn predicate(
        description: impl Into<String>,
        check: impl Fn(&Principal) -> bool + Send + Sync + 'static,
    ) -> Self {
        RequireScopeLayer {
            policy: Arc::new(Policy::Custom {
                description: description.into(),
                check: Box::new(check),
            }),
        }
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service made by [`RequireScopeLayer`].
#[derive(Clone)]
pub struct RequireScope<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> Service<Request<Body>> for RequireScope<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Synchronous: the principal is in the extensions or it is not.
        let Some(principal) = request.extensions().get::<Principal>() else {
            return AuthFuture::ready(MissingAuthLayer.into_response());
        };
        if self.policy.allows(principal) {
            AuthFuture::Inner {
                future: self.inner.call(request),
            }
        } else {
            tracing::debug!(client_id = principal.client_id(), required = %self.policy.required(), "insufficient scope");
            metrics::counter!(crate::metrics::SCOPE_DENIALS).increment(1);
            AuthFuture::ready(challenge::insufficient_scope(
                &self.policy.required(),
                &self.policy.detail(),
            ))
        }
    }
}
