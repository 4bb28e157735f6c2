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
//! [`Principal`] it left in the request extensions. When a
//! [`TransactionTokenLayer`](super::TransactionTokenLayer) ran before it and the call
//! carries a Transaction Token, the token's `scope` must grant the route's scopes too
//! (403 problem otherwise): the caller's own token says what the calling service may do,
//! the transaction what its user was granted. A caller without the scope gets 403 with
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
use super::transaction::Transaction;

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

    /// Whether the call's Transaction Token grants the scopes too. A call in a transaction
    /// is made with the calling service's own token for the user of the transaction: the
    /// service's token says what the service may do, the transaction what was granted for
    /// this user, and a scope route needs both. A custom predicate reads the principal
    /// only.
    fn allows_transaction(&self, transaction: &Transaction) -> bool {
        match self {
            Policy::All(scopes) => scopes.iter().all(|s| transaction.scope().contains(s)),
            Policy::Any(scopes) => scopes.iter().any(|s| transaction.scope().contains(s)),
            Policy::Custom { .. } => true,
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

    /// Requires that the current actor (`act.sub`) be `actor`, and a `may_act` claim,
    /// when present, allow it.
    pub fn actor(actor: impl Into<String>) -> Self {
        let actor = actor.into();
        Self::predicate(format!("acting as {actor}"), move |p| {
            p.actor() == Some(actor.as_str()) && p.actor_allowed_by_may_act() != Some(false)
        })
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
        let transaction = request.extensions().get::<Transaction>();
        if let Some(transaction) = transaction
            && self.policy.allows(principal)
            && !self.policy.allows_transaction(transaction)
        {
            tracing::debug!(client_id = principal.client_id(), required = %self.policy.required(), "insufficient scope in the transaction");
            metrics::counter!(crate::metrics::SCOPE_DENIALS).increment(1);
            return AuthFuture::ready(crate::problem(
                axum::http::StatusCode::FORBIDDEN,
                &format!(
                    "The call's Transaction Token does not grant {} for its subject.",
                    self.policy.required()
                ),
            ));
        }
        if self.policy.allows(principal) {
            AuthFuture::inner(self.inner.call(request))
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};

    use axum::http::{StatusCode, header};

    use super::*;
    use crate::ScopeSet;

    /// The innermost service: 200, and proof that it ran.
    #[derive(Clone)]
    struct Handler;

    impl Service<Request<Body>> for Handler {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = Ready<Result<Response<Body>, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<Body>) -> Self::Future {
            ready(Ok(Response::new(Body::from("handler ran"))))
        }
    }

    fn caller(scopes: &str) -> Principal {
        Principal::new(
            "client".into(),
            None,
            ScopeSet::parse(scopes).unwrap(),
            u64::MAX,
            "issuer".into(),
            Default::default(),
        )
    }

    async fn run(layer: &RequireScopeLayer, principal: Option<Principal>) -> Response<Body> {
        let mut service = layer.layer(Handler);
        let mut request = Request::new(Body::empty());
        if let Some(principal) = principal {
            request.extensions_mut().insert(principal);
        }
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .unwrap();
        service.call(request).await.unwrap()
    }

    fn challenge(response: &Response<Body>) -> &str {
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
    }

    #[tokio::test]
    async fn one_all_and_any_let_through_exactly_the_callers_they_name() {
        let one = RequireScopeLayer::one("a");
        let all = RequireScopeLayer::all(["a", "b"]);
        let any = RequireScopeLayer::any(["a", "b"]);
        let cases = [
            (&one, "a", true),
            (&one, "b c", false),
            (&all, "a b", true),
            (&all, "a", false),
            (&any, "b", true),
            (&any, "c", false),
        ];
        for (layer, scopes, allowed) in cases {
            let response = run(layer, Some(caller(scopes))).await;
            let expected = if allowed {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(response.status(), expected, "{layer:?} with {scopes:?}");
        }
    }

    #[tokio::test]
    async fn a_refusal_is_403_insufficient_scope_naming_the_scopes() {
        let response = run(&RequireScopeLayer::all(["a", "b"]), Some(caller("a"))).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            challenge(&response),
            r#"Bearer error="insufficient_scope", scope="a b""#
        );
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            crate::problem::PROBLEM_JSON
        );
    }

    #[tokio::test]
    async fn a_predicate_decides_and_its_refusal_names_no_scope() {
        let layer = RequireScopeLayer::predicate("client is client", |p| p.client_id() == "client");
        assert_eq!(run(&layer, Some(caller(""))).await.status(), StatusCode::OK);
        let never = RequireScopeLayer::predicate("nobody", |_| false);
        let response = run(&never, Some(caller("a"))).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(challenge(&response), r#"Bearer error="insufficient_scope""#);
    }

    #[tokio::test]
    async fn without_the_auth_layer_in_front_it_fails_closed() {
        let response = run(&RequireScopeLayer::one("a"), None).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
