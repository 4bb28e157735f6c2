//! The authorization endpoint (RFC 6749 section 4.1, with PKCE, RFC 7636) and its login
//! page.
//!
//! `GET /authorize` checks the request in the order that decides where an error may go:
//!
//! 1. `client_id` and `redirect_uri`. An unknown client, a missing or repeated parameter,
//!    or a `redirect_uri` that is not exactly one the client registered is shown as an
//!    error page and **never** redirected (section 4.1.2.1: an open redirector otherwise).
//! 2. Everything else is answered at the verified `redirect_uri` as a section 4.1.2.1
//!    error (`error`, `error_description`, `state`, and `iss` per RFC 9207):
//!    `response_type=code` only, the client must be allowed `authorization_code`, `scope`
//!    required (the client's API scopes plus `openid`, `profile`, `email`,
//!    `offline_access`), PKCE required with `code_challenge_method=S256` (`plain` and a
//!    missing method are refused), `prompt=none` is `login_required` (the issuer keeps no
//!    single sign-on session: every authorization shows the form).
//!
//! A good request becomes a *login transaction*, held server side for 10 minutes under a
//! random key, and the answer is a plain HTML form (no script) that posts the user's
//! username and password back to `POST /authorize` with that key as its anti-forgery
//! token and the request's parameters in hidden fields. The post must carry the key of a
//! live transaction and the same parameters; a wrong password shows the form again (five
//! tries), the right one ends the transaction, starts a session (`sid`) and redirects to
//! `redirect_uri?code=...&state=...&iss=...` with a single-use code valid for 60 seconds
//! and bound to the client, the redirect URI, the PKCE challenge and the nonce.
//!
//! `offline_access` asks for a refresh token (OpenID Connect Core section 11); from a
//! client that is not allowed the `refresh_token` grant it is dropped from the grant, as
//! the specification says to ignore it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::config::ClientConfig;
use crate::state::IssuerState;
use crate::user_flows::{
    AuthorizationCode, AuthorizationRequest, CODE_LIFETIME_SECS, LOGIN_TRANSACTION_SECS,
    LoginTransaction, Session, lock, random_value,
};

/// Scopes of OpenID Connect itself, granted to every client that may use the code flow.
pub(crate) const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Wrong passwords allowed per login form before the request is answered `access_denied`.
const MAX_LOGIN_ATTEMPTS: u32 = 5;

/// Login forms waiting at once, at most: a script that fetches `/authorize` in a loop
/// cannot make the issuer's memory grow without bound (each waits 10 minutes).
const MAX_PENDING_LOGINS: usize = 10_000;

/// The hidden fields of the login form, in order: the request's parameters.
const HIDDEN: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

/// Why a request cannot go on.
enum Refusal {
    /// Shown to the user: the redirect URI is not known good.
    Page(String),
    /// Sent to the client at its verified redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// Query or form parameters with their repetitions visible.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        Params(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The value of a parameter given once; `Err` when it is repeated.
    pub(crate) fn single(&self, name: &str) -> Result<Option<&str>, ()> {
        let mut values = self.0.iter().filter(|(k, _)| k == name);
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(()),
            (first, _) => Ok(first.map(|(_, v)| v.as_str())),
        }
    }

    pub(crate) fn repeated(&self) -> Option<&str> {
        self.0
            .iter()
            .enumerate()
            .find(|(i, (k, _))| self.0[..*i].iter().any(|(seen, _)| seen == k))
            .map(|(_, (k, _))| k.as_str())
    }
}

/// Steps 1 and 2 of the module documentation.
fn check_request(state: &IssuerState, params: &Params) -> Result<AuthorizationRequest, Refusal> {
    let client_id = match params.single("client_id") {
        Ok(Some(id)) => id,
        _ => return Err(Refusal::Page("client_id is missing or repeated".into())),
    };
    let Some(client) = state.config.client(client_id) else {
        return Err(Refusal::Page(format!("unknown client {client_id:?}")));
    };
    let redirect_uri = match params.single("redirect_uri") {
        Ok(Some(uri)) => uri,
        _ => {
            return Err(Refusal::Page(
                "redirect_uri is missing or repeated (this issuer requires it)".into(),
            ));
        }
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(Refusal::Page(format!(
            "redirect_uri {redirect_uri:?} is not registered for client {client_id:?} (compared \
             exactly)"
        )));
    }
    // From here on the redirect URI is the client's own: errors go there.
    let client_state = params.single("state").ok().flatten();
    let refuse = |error: &'static str, description: String| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: client_state.map(str::to_owned),
        error,
        description,
    };
    if let Some(name) = params.repeated() {
        return Err(refuse(
            "invalid_request",
            format!("parameter {name} is repeated"),
        ));
    }
    let get = |name: &str| params.single(name).ok().flatten();
    match get("response_type") {
        Some("code") => {}
        None => {
            return Err(refuse(
                "invalid_request",
                "response_type is required".into(),
            ));
        }
        Some(other) => {
            return Err(refuse(
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; only code"),
            ));
        }
    }
    if !allows(client, "authorization_code") {
        return Err(refuse(
            "unauthorized_client",
            "this client may not use the authorization_code grant".into(),
        ));
    }
    if get("response_mode").is_some_and(|m| m != "query") {
        return Err(refuse(
            "invalid_request",
            "response_mode: only query is supported".into(),
        ));
    }
    if get("request").is_some() {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported".into(),
        ));
    }
    if get("request_uri").is_some() {
        return Err(refuse(
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        ));
    }
    let scope_param = get("scope").unwrap_or("");
    let mut scopes: Vec<String> = Vec::new();
    for scope in scope_param.split(' ').filter(|s| !s.is_empty()) {
        let known =
            OIDC_SCOPES.contains(&scope) || client.allowed_scopes.iter().any(|s| s == scope);
        if !known {
            return Err(refuse(
                "invalid_scope",
                format!("scope {scope:?} is unknown or not allowed for this client"),
            ));
        }
        // OpenID Connect Core section 11: ignore offline_access when it cannot be granted.
        if scope == "offline_access" && !allows(client, "refresh_token") {
            continue;
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    if scope_param.trim().is_empty() {
        return Err(refuse("invalid_scope", "scope is required".into()));
    }
    if get("code_challenge_method") != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256 (PKCE is required; plain is refused)".into(),
        ));
    }
    let challenge = get("code_challenge").unwrap_or("");
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(refuse(
            "invalid_request",
            "code_challenge is required: BASE64URL(SHA-256(code_verifier)), 43 characters".into(),
        ));
    }
    if get("prompt").is_some_and(|p| p.split(' ').any(|p| p == "none")) {
        return Err(refuse(
            "login_required",
            "prompt=none: the issuer keeps no session to log in from".into(),
        ));
    }
    Ok(AuthorizationRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        scope_param: scope_param.to_owned(),
        state: client_state.map(str::to_owned),
        nonce: get("nonce").map(str::to_owned),
        code_challenge: challenge.to_owned(),
    })
}

pub(crate) fn allows(client: &ClientConfig, grant_type: &str) -> bool {
    client.allowed_grant_types.iter().any(|g| g == grant_type)
}

/// `GET /authorize`.
pub(crate) async fn authorize(State(state): State<Arc<IssuerState>>, uri: Uri) -> Response {
    let params = Params::parse(uri.query().unwrap_or("").as_bytes());
    match check_request(&state, &params) {
        Ok(request) => {
            let token = random_value();
            let now = state.users.now();
            let mut logins = lock(&state.users.logins);
            logins.retain(|_, t| t.expires_at > now);
            if logins.len() >= MAX_PENDING_LOGINS {
                drop(logins);
                tracing::warn!("authorization request refused: too many login forms pending");
                return redirect_error(
                    &state,
                    &request.redirect_uri,
                    request.state.as_deref(),
                    "temporarily_unavailable",
                    "too many logins are pending; try again later",
                );
            }
            logins.insert(
                token.clone(),
                LoginTransaction {
                    request: request.clone(),
                    expires_at: now + LOGIN_TRANSACTION_SECS,
                    failed_attempts: 0,
                },
            );
            drop(logins);
            login_page(&state, &request, &token, None)
        }
        Err(refusal) => refused(&state, refusal),
    }
}

/// `POST /authorize`: the login form.
pub(crate) async fn login(State(state): State<Arc<IssuerState>>, body: Bytes) -> Response {
    let params = Params::parse(&body);
    if let Some(name) = params.repeated() {
        return error_page(&format!("parameter {name} is repeated"));
    }
    let get = |name: &str| params.single(name).ok().flatten();
    let token = get("login_token").unwrap_or("");
    let now = state.users.now();
    let mut logins = lock(&state.users.logins);
    let Some(transaction) = logins.get_mut(token).filter(|t| t.expires_at > now) else {
        return error_page(
            "This login form has expired or was already used. Go back to the application and \
             sign in again.",
        );
    };
    let request = transaction.request.clone();
    let expected = hidden_values(&request);
    if HIDDEN
        .iter()
        .zip(&expected)
        .any(|(name, value)| get(name).unwrap_or("") != value)
    {
        logins.remove(token);
        return error_page(
            "The login form was altered. Go back to the application and sign in again.",
        );
    }
    if get("cancel").is_some() {
        logins.remove(token);
        drop(logins);
        return redirect_error(
            &state,
            &request.redirect_uri,
            request.state.as_deref(),
            "access_denied",
            "the user cancelled the login",
        );
    }
    let username = get("username").unwrap_or("");
    let password = get("password").unwrap_or("");
    let Some(user) = crate::users::authenticate(&state.config.users, username, password) else {
        state
            .users
            .counters
            .login_failures
            .fetch_add(1, Ordering::SeqCst);
        transaction.failed_attempts += 1;
        tracing::info!(client_id = %request.client_id, username = %username, attempts = transaction.failed_attempts, "login refused: wrong username or password");
        if transaction.failed_attempts >= MAX_LOGIN_ATTEMPTS {
            logins.remove(token);
            drop(logins);
            return redirect_error(
                &state,
                &request.redirect_uri,
                request.state.as_deref(),
                "access_denied",
                "too many failed logins",
            );
        }
        drop(logins);
        let mut page = login_page(&state, &request, token, Some("Wrong username or password."));
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    };
    logins.remove(token);
    drop(logins);

    let sid = random_value();
    lock(&state.users.sessions).insert(
        sid.clone(),
        Session {
            sub: user.sub.clone(),
            ended: false,
        },
    );
    let code = random_value();
    let mut codes = lock(&state.users.codes);
    // Redeemed codes are kept past their expiry for a while, so a late replay still
    // revokes what the code issued.
    codes.retain(|_, c| c.expires_at + crate::user_flows::LOGIN_TRANSACTION_SECS > now);
    codes.insert(
        code.clone(),
        AuthorizationCode {
            request: request.clone(),
            sub: user.sub.clone(),
            sid,
            auth_time: crate::state::unix_now(),
            expires_at: now + CODE_LIFETIME_SECS,
            redeemed: false,
            access_token: None,
            refresh_family: None,
        },
    );
    drop(codes);
    state
        .users
        .counters
        .authorization_codes_issued
        .fetch_add(1, Ordering::SeqCst);
    tracing::info!(client_id = %request.client_id, sub = %user.sub, "user logged in; authorization code issued");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &state.issuer));
    see_other(&with_query(&request.redirect_uri, &pairs))
}

/// The values of [`HIDDEN`] for `request`.
fn hidden_values(request: &AuthorizationRequest) -> [String; 8] {
    [
        "code".to_owned(),
        request.client_id.clone(),
        request.redirect_uri.clone(),
        request.scope_param.clone(),
        request.state.clone().unwrap_or_default(),
        request.nonce.clone().unwrap_or_default(),
        request.code_challenge.clone(),
        "S256".to_owned(),
    ]
}

fn refused(state: &IssuerState, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => {
            tracing::info!(reason = %message, "authorization request refused (not redirected)");
            error_page(&message)
        }
        Refusal::Redirect {
            redirect_uri,
            state: client_state,
            error,
            description,
        } => {
            tracing::info!(error, reason = %description, "authorization request refused");
            redirect_error(
                state,
                &redirect_uri,
                client_state.as_deref(),
                error,
                &description,
            )
        }
    }
}

/// An RFC 6749 section 4.1.2.1 error at the client's redirect URI, with RFC 9207 `iss`.
fn redirect_error(
    state: &IssuerState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(s) = client_state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &state.issuer));
    see_other(&with_query(redirect_uri, &pairs))
}

/// `uri` with `pairs` appended to its query (a registered URI may have one already).
pub(crate) fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return uri.to_owned();
    }
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.into()
        }
        // Registered URIs were checked at start; keep the URI as it is if one is odd.
        Err(_) => uri.to_owned(),
    }
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    page_headers(response.headers_mut());
    response
}

/// Headers of every page and redirect: never cached, never framed, no referrer (the
/// query carries codes).
fn page_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // No form-action: browsers apply it to the redirect that follows the post, which goes
    // to the client's origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px #0002}h1{font-size:1.4rem;margin-top:0}label{display:block;\
margin-top:1rem}input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}\
button{margin-top:1.5rem;padding:.5rem 1rem;font-size:1rem}.error{color:#b00020}\
.note{color:#666;font-size:.8rem;margin-top:2rem}";

/// An HTML page with `body` (already escaped).
pub(crate) fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - mock-issuer</title><style>{STYLE}</style></head>\
         <body><main>{body}<p class=\"note\">mock-issuer: for local development and tests \
         only.</p></main></body></html>\n",
        title = escape(title)
    );
    let mut response = (status, axum::response::Html(html)).into_response();
    page_headers(response.headers_mut());
    response
}

pub(crate) fn error_page(message: &str) -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "Sign-in error",
        &format!(
            "<h1>Sign-in error</h1><p id=\"error\" class=\"error\">{}</p>",
            escape(message)
        ),
    )
}

fn login_page(
    state: &IssuerState,
    request: &AuthorizationRequest,
    token: &str,
    error: Option<&str>,
) -> Response {
    let mut hidden = format!(
        "<input type=\"hidden\" name=\"login_token\" value=\"{}\">",
        escape(token)
    );
    for (name, value) in HIDDEN.iter().zip(hidden_values(request)) {
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(&value)
        ));
    }
    let error = error
        .map(|e| {
            format!(
                "<p id=\"error\" class=\"error\" role=\"alert\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{error}\
         <form method=\"post\" action=\"{action}\">{hidden}\
         <label for=\"username\">Username</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required>\
         <button id=\"login\" type=\"submit\">Sign in</button> \
         <button id=\"cancel\" name=\"cancel\" value=\"1\" type=\"submit\" formnovalidate>Cancel</button>\
         </form>",
        client = escape(&request.client_id),
        action = escape(&state.root_url("/authorize")),
    );
    html_page(StatusCode::OK, "Sign in", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn query_is_appended_to_a_registered_query() {
        assert_eq!(
            with_query("http://a.test/cb?x=1", &[("code", "a b"), ("state", "&")]),
            "http://a.test/cb?x=1&code=a+b&state=%26"
        );
    }

    #[test]
    fn repeated_parameters_are_seen() {
        let p = Params::parse(b"a=1&b=2&a=3");
        assert_eq!(p.repeated(), Some("a"));
        assert!(p.single("a").is_err());
        assert_eq!(p.single("b"), Ok(Some("2")));
        assert_eq!(p.single("c"), Ok(None));
    }
}
