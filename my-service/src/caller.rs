//! `GET /whoami`: the caller as this service sees it: the client whose token it is, the
//! subject, the actor of an exchanged token, and with a Transaction Token who the call
//! chain is for. The template's example of reading [`Principal`] and [`Transaction`].

use axum::Json;
use serde::Serialize;
use shared_auth::server::{Principal, Transaction};
use utoipa::ToSchema;

/// Who is calling, and for whom.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// The client the access token was issued to.
    pub client_id: String,
    /// The token's subject (a user, or the client itself).
    pub subject: Option<String>,
    /// The service acting for the subject (RFC 8693 `act`), for an exchanged token.
    pub actor: Option<String>,
    /// The transaction the call belongs to, when it came with a Transaction Token.
    pub transaction: Option<CallerTransaction>,
}

/// The call's Transaction Token, as checked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallerTransaction {
    /// The transaction id (`txn`), the same at every service of the chain.
    pub txn: String,
    /// Who the transaction is for (`sub`): the user at the edge.
    pub subject: String,
    /// The workload that asked for the Transaction Token (`req_wl`).
    pub requesting_workload: Option<String>,
}

/// The caller.
#[utoipa::path(
    get,
    path = "/whoami",
    tag = "caller",
    security(("oauth2" = [])),
    params(("Txn-Token" = Option<String>, Header, description = "A Transaction Token of the trust domain (checked when AUTH_TXN_TOKEN_TRUST_DOMAIN is set)")),
    responses(
        (status = 200, description = "The caller", body = Caller),
        (status = 401, description = "No or invalid access token", content_type = "application/problem+json"),
        (status = 403, description = "An invalid Transaction Token", content_type = "application/problem+json"),
    )
)]
// The handler in the trace (no arguments recorded: they hold the caller's claims).
#[tracing::instrument(name = "caller.whoami", level = "debug", skip_all)]
pub async fn whoami(principal: Principal, transaction: Option<Transaction>) -> Json<Caller> {
    Json(Caller {
        client_id: principal.client_id().to_owned(),
        subject: principal.subject().map(str::to_owned),
        actor: principal.actor().map(str::to_owned),
        transaction: transaction.map(|t| CallerTransaction {
            txn: t.txn().to_owned(),
            subject: t.subject().to_owned(),
            requesting_workload: t.requesting_workload().map(str::to_owned),
        }),
    })
}
