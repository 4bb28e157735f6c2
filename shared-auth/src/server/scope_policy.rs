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
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, Response};
use axum::response::IntoResponse as _;
use tower::{Layer, Service};

use super::challenge;
use super::principal::{MissingAuthLayer, Principal};

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
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        Box::pin(async move {
            let Some(principal) = request.extensions().get::<Principal>() else {
                return Ok(MissingAuthLayer.into_response());
            };
            if policy.allows(principal) {
                inner.call(request).await
            } else {
                tracing::debug!(client_id = principal.client_id(), required = %policy.required(), "insufficient scope");
                Ok(challenge::insufficient_scope(
                    &policy.required(),
                    &policy.detail(),
                ))
            }
        })
    }
}
