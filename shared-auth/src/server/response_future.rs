//! [`AuthFuture`]: the response future of the auth layers, unboxed where it can be.
//!
//! Most requests are decided without waiting: a repeated token is found in the
//! validated-token cache, a scope check reads the principal, a refusal is a ready response.
//! Those paths call the inner service directly (it was polled ready) or answer at once, and
//! allocate nothing. Only a first-seen token, whose validation may wait for a key refresh,
//! takes the boxed path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::Response;

/// A boxed response future (the slow path of [`AuthFuture`]).
pub(crate) type Boxed<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

pin_project_lite::pin_project! {
    /// Response future of [`JwtAuth`](super::JwtAuth) and
    /// [`RequireScope`](super::RequireScope). Opaque (as tower-http's are): how a request
    /// is answered is this crate's business, and may change without a breaking release.
    pub struct AuthFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = Projection]
    enum Kind<F, E> {
        // The inner service's own future (request let through).
        Inner {
            #[pin]
            future: F,
        },
        // Validation that may wait, then the inner service.
        Boxed {
            future: Boxed<E>,
        },
        // A refusal, ready now.
        Ready {
            response: Option<Response<Body>>,
        },
    }
}

impl<F, E> AuthFuture<F, E> {
    pub(crate) fn ready(response: Response<Body>) -> Self {
        AuthFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        AuthFuture {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn boxed(future: Boxed<E>) -> Self {
        AuthFuture {
            kind: Kind::Boxed { future },
        }
    }
}

impl<F, E> Future for AuthFuture<F, E>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            Projection::Inner { future } => future.poll(cx),
            Projection::Boxed { future } => future.as_mut().poll(cx),
            // Polled again after completion (a caller bug): an empty response, not a panic.
            Projection::Ready { response } => Poll::Ready(Ok(response.take().unwrap_or_default())),
        }
    }
}
