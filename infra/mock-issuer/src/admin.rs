//! Admin endpoints (`--admin`, loopback only): counters and key rotation over HTTP, for
//! scripts and load tests that run outside the test process.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::{IssuerState, IssuerStats};

pub(crate) async fn stats(State(state): State<Arc<IssuerState>>) -> Json<IssuerStats> {
    Json(state.stats())
}

pub(crate) async fn rotate_key(State(state): State<Arc<IssuerState>>) -> Response {
    match state.rotate_key() {
        Ok(kid) => Json(json!({ "kid": kid })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
