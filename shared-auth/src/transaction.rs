//! Transaction Tokens (draft-ietf-oauth-transaction-tokens-08): the one value both halves
//! share.
//!
//! A Transaction Token (Txn-Token) is a short-lived JWT (`typ: txntoken+jwt`) that a
//! Transaction Token Service mints when a request enters a trust domain: who the call is
//! for (`sub`), a unique transaction id (`txn`), the scope, and the context of the request.
//! It travels in the `Txn-Token` header beside each service's own credential, and every
//! service passes it on **unchanged** to the services it calls while handling that
//! request.
//!
//! - The client half gets one at the edge
//!   ([`ManagedClient::transaction_token`](crate::client::ManagedClient::transaction_token))
//!   and sends it ([`TransactionTokenMiddleware`](crate::client::TransactionTokenMiddleware)).
//! - The server half checks it ([`TransactionTokenLayer`](crate::server::TransactionTokenLayer))
//!   and, while the handler runs, makes it [`TransactionToken::current`], which the client
//!   half's middleware sends on.

use std::fmt;
use std::sync::Arc;

/// The header a Transaction Token travels in (`Txn-Token`; header names are compared
/// without case).
pub(crate) const TXN_TOKEN_HEADER: &str = "txn-token";

/// A Transaction Token as it travels: the compact JWS. Cheap to clone. Its `Debug` shows
/// no token.
#[derive(Clone, PartialEq, Eq)]
pub struct TransactionToken(Arc<str>);

tokio::task_local! {
    /// The checked Transaction Token of the request the current task is handling.
    static CURRENT: TransactionToken;
}

impl TransactionToken {
    /// Wraps a token (as the Transaction Token Service issued it, or as a request carried
    /// it). Nothing is checked here: the server half checks what it receives.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        TransactionToken(token.into())
    }

    /// The token itself. Do not log it.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The Transaction Token of the request this task is handling, checked by the server
    /// half's `TransactionTokenLayer`; `None` outside such a handler (or in a task the
    /// handler spawned: give that task the token, and put it on its requests as an
    /// extension).
    pub fn current() -> Option<TransactionToken> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `future` with `self` as [`TransactionToken::current`].
    pub(crate) fn scope<F: Future>(
        self,
        future: F,
    ) -> tokio::task::futures::TaskLocalFuture<TransactionToken, F> {
        CURRENT.scope(self, future)
    }
}

impl fmt::Debug for TransactionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionToken([REDACTED], {} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_current_token_is_the_scope_s_and_only_inside_it() {
        assert_eq!(TransactionToken::current(), None);
        let token = TransactionToken::new("a.b.c");
        let seen = token
            .clone()
            .scope(async { TransactionToken::current() })
            .await;
        assert_eq!(seen, Some(token));
        assert_eq!(TransactionToken::current(), None);
        assert!(!format!("{:?}", TransactionToken::new("secret.jwt.x")).contains("secret"));
    }
}
