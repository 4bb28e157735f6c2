//! The BFF's user routes: log in at the issuer, who am I, the user's API calls, sign out,
//! and the small front end at `/`.
//!
//! - `GET /bff/login?returnUrl=/path`: starts a login (a local path only: no open
//!   redirect); a short-lived cookie binds the callback to this browser.
//! - `GET /bff/callback`: completes it; a fresh session id in the session cookie
//!   (`HttpOnly`, `SameSite=Lax`, and `Secure` with the `__Host-` prefix unless the BFF
//!   runs on plain-http loopback), then back to the path.
//! - `GET /bff/user`: the user's claims, when the session ends, and the logout URL; 401
//!   without a session.
//! - `GET /bff/weatherforecast`: my-service's forecasts fetched with the user's access
//!   token (renewed as needed); the browser's cookies never go upstream. With
//!   `BFF_TRUST_DOMAIN`, fetched instead with the BFF's own token and a Transaction Token
//!   for the user (draft-ietf-oauth-transaction-tokens-08), obtained for each call from
//!   the issuer's Transaction Token Service with the user's access token.
//! - `GET /bff/whoami`: the caller as my-service sees it (its `/whoami`), the same way:
//!   with a Transaction Token, my-service names the BFF as the caller and the user as the
//!   transaction's subject.
//! - `GET /bff/logout?sid=...`: signs out (the refresh token revoked at the issuer) and
//!   goes to the issuer's end-session page. `sid` is the session's logout id, which only
//!   `/bff/user` tells, so another site cannot sign the user out.
//!
//! Every `/bff/` route but login, callback and logout (which are browser navigations)
//! needs the anti-forgery header `X-CSRF: 1` (a cross-site page cannot send a custom
//! header without a CORS preflight, which this BFF never allows), as Duende's BFF does.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use shared_auth::client::{
    AccessToken, Callback, TokenRequestParams, TransactionTokenRequest, UserSessions,
    UserTokenError,
};
use shared_auth::{TransactionToken, problem};

use crate::my_service_client::{MyServiceClient, MyServiceError};

/// What the user routes need.
pub(crate) struct Users {
    /// Set once the login issuer is found (in the background: it may start after the BFF).
    pub(crate) ready: std::sync::OnceLock<Ready>,
    pub(crate) secure_cookies: bool,
    /// With `BFF_TRUST_DOMAIN`: users' calls go in a transaction.
    pub(crate) edge: Option<Edge>,
}

/// The edge of the trust domain: the BFF's own client (token and Transaction Token
/// requests) and my-service called with it.
pub(crate) struct Edge {
    pub(crate) trust_domain: String,
    pub(crate) app: Arc<crate::AppState>,
}

/// The users' sessions, and my-service called with their tokens.
pub(crate) struct Ready {
    pub(crate) sessions: UserSessions,
    pub(crate) my_service: MyServiceClient,
}

impl Users {
    fn session_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-bff-session"
        } else {
            "bff-session"
        }
    }

    fn login_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-bff-login"
        } else {
            "bff-login"
        }
    }

    /// A cookie of this BFF: the whole site, `HttpOnly`, `SameSite=Lax` (sent on the
    /// issuer's redirect back, a top-level navigation), `Secure` unless on loopback http.
    fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure_cookies)
            .same_site(SameSite::Lax)
            .build()
    }
}

/// The user routes and the front end.
pub(crate) fn routes(users: Arc<Users>) -> Router {
    Router::new()
        .route("/", get(front_end))
        .route("/bff/login", get(login))
        .route("/bff/callback", get(callback))
        .route("/bff/user", get(user))
        .route("/bff/logout", get(logout))
        .route("/bff/weatherforecast", get(weatherforecast))
        .route("/bff/whoami", get(whoami))
        .with_state(users)
}

async fn front_end() -> Html<&'static str> {
    Html(include_str!("../static/index.html"))
}

/// The 503 a user route answers while the login issuer is not found.
fn login_unavailable() -> Response {
    crate::unavailable("Login is not available yet; try again shortly.")
}

/// 401 with a problem body a front end can act on (log in again).
fn unauthenticated(detail: &str) -> Response {
    problem(StatusCode::UNAUTHORIZED, detail).into_response()
}

/// The refusal of a request without the anti-forgery header `X-CSRF: 1`, if it lacks it.
fn forgery_refused(headers: &HeaderMap) -> Option<Response> {
    headers
        .get("x-csrf")
        .is_none_or(|v| v != "1")
        .then(|| unauthenticated("This route needs the anti-forgery header X-CSRF: 1."))
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(rename = "returnUrl")]
    return_url: Option<String>,
}

async fn login(
    State(users): State<Arc<Users>>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    let Some(Ready { sessions, .. }) = users.ready.get() else {
        return login_unavailable();
    };
    let return_to = query.return_url.as_deref().unwrap_or("/");
    match sessions.begin_login(return_to).await {
        // A browser-session cookie: the login it names expires on the server after ten
        // minutes, and is used once.
        Ok((url, login_id)) => (
            jar.add(users.cookie(users.login_cookie(), login_id)),
            Redirect::to(&url),
        )
            .into_response(),
        Err(error) => problem(StatusCode::BAD_REQUEST, &error.to_string()).into_response(),
    }
}

async fn callback(
    State(users): State<Arc<Users>>,
    jar: CookieJar,
    Query(callback): Query<Callback>,
) -> Response {
    let Some(Ready { sessions, .. }) = users.ready.get() else {
        return login_unavailable();
    };
    let Some(login_id) = jar.get(users.login_cookie()).map(|c| c.value().to_owned()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "No login in progress in this browser: start again at /bff/login.",
        )
        .into_response();
    };
    let jar = jar.remove(users.cookie(users.login_cookie(), String::new()));
    match sessions.complete_login(&login_id, &callback).await {
        Ok((session_id, return_to)) => {
            // A browser that logs in again while signed in: its old session ends (it would
            // otherwise stay usable by whoever holds the old cookie).
            if let Some(old) = jar.get(users.session_cookie()) {
                sessions.end(old.value()).await;
            }
            let jar = jar.add(users.cookie(users.session_cookie(), session_id));
            (jar, Redirect::to(&return_to)).into_response()
        }
        Err(error) => {
            // The reason goes to the log; the page says only what to do.
            tracing::warn!(%error, "login refused");
            (
                jar,
                problem(
                    StatusCode::BAD_REQUEST,
                    "The login could not be completed; start again at /bff/login.",
                ),
            )
                .into_response()
        }
    }
}

async fn user(State(users): State<Arc<Users>>, jar: CookieJar, headers: HeaderMap) -> Response {
    let Some(Ready { sessions, .. }) = users.ready.get() else {
        return login_unavailable();
    };
    if let Some(refused) = forgery_refused(&headers) {
        return refused;
    }
    let Some(session) = jar.get(users.session_cookie()) else {
        return unauthenticated("Not logged in.");
    };
    match sessions.info(session.value()).await {
        Some(info) => Json(serde_json::json!({
            "claims": info.claims,
            "sessionExpiresAt": info.expires_at,
            "logoutUrl": format!("/bff/logout?sid={}", info.logout_id),
        }))
        .into_response(),
        None => unauthenticated("Not logged in."),
    }
}

#[derive(Deserialize)]
struct LogoutQuery {
    sid: Option<String>,
}

async fn logout(
    State(users): State<Arc<Users>>,
    jar: CookieJar,
    Query(query): Query<LogoutQuery>,
) -> Response {
    let Some(Ready { sessions, .. }) = users.ready.get() else {
        return login_unavailable();
    };
    let (Some(session), Some(sid)) = (jar.get(users.session_cookie()), query.sid) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Sign out needs the session and its logout id (from /bff/user).",
        )
        .into_response();
    };
    match sessions.logout(session.value(), &sid).await {
        Ok(end_session) => {
            let jar = jar.remove(users.cookie(users.session_cookie(), String::new()));
            let to = end_session.unwrap_or_else(|| "/".to_owned());
            (jar, Redirect::to(&to)).into_response()
        }
        Err(_) => problem(
            StatusCode::BAD_REQUEST,
            "That is not this session's logout id.",
        )
        .into_response(),
    }
}

/// What a user's call to my-service goes with.
enum UserCall<'a> {
    /// The user's access token (the session's).
    Session(&'a MyServiceClient, &'a str),
    /// The BFF's own token and the user's Transaction Token.
    Transaction(MyServiceClient, TransactionToken),
}

/// The refusal for a user's call that could not be made: no session (401), a session
/// whose token cannot be renewed now (503), or the downstream's answer.
fn user_call_failed(error: &MyServiceError) -> Response {
    match error {
        MyServiceError::UserToken(UserTokenError::Unavailable(error)) => {
            tracing::warn!(%error, "no user access token for now");
            crate::unavailable("Your access could not be renewed just now; try again shortly.")
        }
        MyServiceError::UserToken(_) => {
            unauthenticated("Not logged in (or the session has ended).")
        }
        MyServiceError::TokenUnavailable(error) => {
            tracing::warn!(%error, "no Transaction Token for a user's call");
            crate::unavailable("The call could not be authorized just now; try again shortly.")
        }
        error => crate::downstream_problem(error),
    }
}

/// Checks a user route's request (login ready, anti-forgery header, session) and decides
/// how its call to my-service goes (`action` goes into the Transaction Token's details).
async fn user_call<'a>(
    users: &'a Users,
    jar: &'a CookieJar,
    headers: &HeaderMap,
    action: &str,
) -> Result<UserCall<'a>, Response> {
    let Some(Ready {
        my_service,
        sessions,
    }) = users.ready.get()
    else {
        return Err(login_unavailable());
    };
    if let Some(refused) = forgery_refused(headers) {
        return Err(refused);
    }
    let Some(session) = jar.get(users.session_cookie()) else {
        return Err(unauthenticated("Not logged in."));
    };
    let Some(edge) = &users.edge else {
        return Ok(UserCall::Session(my_service, session.value()));
    };
    let user = sessions
        .access_token(session.value(), &TokenRequestParams::default())
        .await
        .map_err(|e| user_call_failed(&MyServiceError::UserToken(e)))?;
    let Some(calls) = edge.app.calls.get() else {
        return Err(crate::unavailable("my-bff is not ready yet."));
    };
    let mut details = serde_json::Map::new();
    details.insert("action".into(), serde_json::Value::from(action));
    let txn = calls
        .tokens
        .transaction_token(
            &AccessToken::new(user.secret()),
            &TransactionTokenRequest::new(edge.trust_domain.clone()).with_request_details(details),
        )
        .await
        .map_err(|e| user_call_failed(&MyServiceError::TokenUnavailable(e)))?;
    Ok(UserCall::Transaction(calls.my_service.clone(), txn))
}

async fn weatherforecast(
    State(users): State<Arc<Users>>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let answer = match user_call(&users, &jar, &headers, "GET /weatherforecast").await {
        Err(refused) => return refused,
        Ok(UserCall::Session(my_service, session)) => my_service.forecasts_for(session).await,
        Ok(UserCall::Transaction(my_service, txn)) => my_service.forecasts_in(&txn).await,
    };
    match answer {
        Ok(forecasts) => Json(forecasts).into_response(),
        Err(error) => user_call_failed(&error),
    }
}

async fn whoami(State(users): State<Arc<Users>>, jar: CookieJar, headers: HeaderMap) -> Response {
    let answer = match user_call(&users, &jar, &headers, "GET /whoami").await {
        Err(refused) => return refused,
        Ok(UserCall::Session(my_service, session)) => my_service.whoami_for(session).await,
        Ok(UserCall::Transaction(my_service, txn)) => my_service.whoami_in(&txn).await,
    };
    match answer {
        Ok(caller) => Json(caller).into_response(),
        Err(error) => user_call_failed(&error),
    }
}
