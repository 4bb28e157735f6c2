//! The library's spans, in one place: their names, their attributes, and what they may
//! carry. Any `tracing` subscriber receives them; with OpenTelemetry (the
//! `tracing-opentelemetry` layer, as `service_kit` installs it) they join the request's
//! trace.
//!
//! They are DEBUG spans, so a process that logs at INFO and exports no traces pays one
//! comparison per call site for them (the level check `tracing` caches), nothing more.
//!
//! | span | where | attributes |
//! |------|-------|------------|
//! | `oauth.token` | a token for a call: the cache looked at, then maybe a flight joined or started | `oauth.client` (the configured client name), `oauth.token.cache` (`hit`, `miss`, `negative`, `renewal`) |
//! | `oauth.token_request` | one flight: the request to the token endpoint, retries included (each attempt is an HTTP client span under it with the `opentelemetry` feature) | `oauth.client`, `oauth.grant_type`, `oauth.outcome` (`success`, `rejected`, `error`, `shared_cache`) |
//! | `oauth.validate` | the auth layer's decision on one request | `oauth.validation` (`cached`, `first_seen`, `accepted`, `refused`), `oauth.refusal` (the reason code, as in the metrics) |
//! | `oauth.verify` | a first-seen token whose check waits for the issuer's keys or an introspection (the request to the issuer under it) | none |
//! | `{method}` (client) | with the `opentelemetry` feature, a request to the issuer, or one sent through [`TracingMiddleware`] | OpenTelemetry's HTTP client conventions: `http.request.method`, `server.address`, `server.port`, `url.scheme`, `http.response.status_code`, `error.type` (`timeout`, `connect`, `request`, or the status of an answer of 400 and more) |
//!
//! Never an attribute: a token, a secret, a key, a proof, a claim value, a URL's path or
//! query (nor an error's text, which names the URL). A warm token
//! (`hit`) and the auth layer's decisions are spans of no duration: marks in the trace
//! that cost nothing when disabled.

use tracing::Span;
use tracing::field::Empty;

/// `oauth.token` for `client`, its cache result recorded later ([`cache`]).
pub(crate) fn token(client: &str) -> Span {
    tracing::debug_span!(
        "oauth.token",
        oauth.client = client,
        oauth.token.cache = Empty
    )
}

/// A warm token taken from the client's own slot: a mark of no duration.
pub(crate) fn token_hit(client: &str) {
    let _mark = tracing::debug_span!(
        "oauth.token",
        oauth.client = client,
        oauth.token.cache = "hit"
    );
}

/// Records the cache result on an `oauth.token` span.
pub(crate) fn cache(span: &Span, result: &'static str) {
    span.record("oauth.token.cache", result);
}

/// `oauth.token_request`: one flight for `client` with `grant_type`.
pub(crate) fn token_request(client: &str, grant_type: &'static str) -> Span {
    tracing::debug_span!(
        "oauth.token_request",
        oauth.client = client,
        oauth.grant_type = grant_type,
        oauth.outcome = Empty
    )
}

/// Records a flight's outcome on its `oauth.token_request` span (the current one).
pub(crate) fn outcome(outcome: &'static str) {
    Span::current().record("oauth.outcome", outcome);
}

/// The auth layer accepted the request's token: a mark of no duration (`cached`,
/// `first_seen`, `accepted`).
pub(crate) fn validated(how: &'static str) {
    let _mark = tracing::debug_span!("oauth.validate", oauth.validation = how);
}

/// The auth layer refused the request for `reason`: a mark of no duration.
pub(crate) fn refused(reason: &'static str) {
    let _mark = tracing::debug_span!(
        "oauth.validate",
        oauth.validation = "refused",
        oauth.refusal = reason
    );
}

/// `oauth.verify`: a validation that waits (for the issuer's keys, or an introspection);
/// the JWKS or introspection request is under it, the decision mark after it.
pub(crate) fn verify() -> Span {
    tracing::debug_span!("oauth.verify")
}

/// Whether a DEBUG span of this crate may be recorded here and now (a subscriber that
/// wants them). With per-layer filters it can say yes where the export layer then records
/// nothing: [`TracingMiddleware`] also asks whether the request is in a trace not sampled.
#[cfg(feature = "opentelemetry")]
fn calls_traced() -> bool {
    tracing::enabled!(kind: tracing::metadata::Kind::SPAN, tracing::Level::DEBUG)
}

/// `task` carrying the current OpenTelemetry context, for a task spawned on behalf of the
/// request (a token flight, a session renewal): a request its service did not sample then
/// still sends its trace on, flag off, from there (a spawned task does not inherit it).
#[cfg(feature = "opentelemetry")]
pub(crate) fn in_current_context<F: std::future::Future>(
    task: F,
) -> impl std::future::Future<Output = F::Output> {
    opentelemetry::context::FutureExt::with_current_context(task)
}

/// Without the feature: `task` as it is.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn in_current_context<F: std::future::Future>(
    task: F,
) -> impl std::future::Future<Output = F::Output> {
    task
}

/// Whether the request runs in a trace its service did not sample: the current
/// OpenTelemetry context (a service's edge runs such a request in its trace context with
/// the sampled flag off; a recorded span's context is current inside it otherwise).
#[cfg(feature = "opentelemetry")]
fn in_unsampled_trace() -> bool {
    use opentelemetry::trace::TraceContextExt as _;
    opentelemetry::Context::map_current(|context| {
        let span = context.span();
        let span = span.span_context();
        span.is_valid() && !span.is_sampled()
    })
}

/// Where no client span is made: the current OpenTelemetry context's trace, if it has one,
/// into `headers` through the global propagator. In a request its service did not sample,
/// that is the trace with the sampled flag off (`traceparent: ...-00`), so the next service
/// follows that decision instead of starting a trace of its own, and no span is built.
#[cfg(feature = "opentelemetry")]
fn inject_current(headers: &mut http::HeaderMap) {
    use opentelemetry::trace::TraceContextExt as _;
    opentelemetry::Context::map_current(|context| {
        if context.span().span_context().is_valid() {
            opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator
                    .inject_context(context, &mut opentelemetry_http::HeaderInjector(headers));
            });
        }
    });
}

/// The HTTP client span of a call (reqwest-tracing's backend): the HTTP conventions'
/// attributes, none of the URL but its scheme, host and port; an error by its kind only
/// (reqwest's error text names the whole URL).
#[cfg(feature = "opentelemetry")]
pub(crate) struct ClientSpans;

#[cfg(feature = "opentelemetry")]
impl reqwest_tracing::ReqwestOtelSpanBackend for ClientSpans {
    fn on_request_start(request: &reqwest::Request, _: &mut http::Extensions) -> Span {
        let url = request.url();
        let method = request.method().as_str();
        tracing::debug_span!(
            "HTTP client",
            otel.name = method,
            otel.kind = "client",
            http.request.method = method,
            server.address = url.host_str().unwrap_or_default(),
            server.port = url.port_or_known_default().unwrap_or_default(),
            url.scheme = url.scheme(),
            http.response.status_code = Empty,
            error.r#type = Empty,
            otel.status_code = Empty,
        )
    }

    fn on_request_end(
        span: &Span,
        outcome: &reqwest_middleware::Result<reqwest::Response>,
        _: &mut http::Extensions,
    ) {
        match outcome {
            Ok(response) => {
                let status = response.status();
                span.record("http.response.status_code", status.as_u16());
                if status.as_u16() >= 400 {
                    span.record("error.type", status.as_str());
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(error) => {
                let kind = if error.is_timeout() {
                    "timeout"
                } else if error.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                span.record("error.type", kind);
                span.record("otel.status_code", "ERROR");
            }
        }
    }
}

/// Each request through it as an HTTP client span (OpenTelemetry's HTTP client
/// conventions: method, server address and port, status, an error by its kind; never the
/// path, the query or an error's text) carrying the W3C trace context (`traceparent`) of
/// that span, through the global propagator the process sets. Put it last in the stack,
/// after the token middleware: the token's acquisition is then a span of its own before
/// the call, and a retry after a 401 a second client span.
///
/// A DEBUG span: free where no subscriber records DEBUG spans of this crate; the current
/// OpenTelemetry context, if any (a request its service did not sample), is still
/// injected.
#[cfg(feature = "opentelemetry")]
#[derive(Clone)]
pub struct TracingMiddleware(reqwest_tracing::TracingMiddleware<ClientSpans>);

#[cfg(feature = "opentelemetry")]
impl Default for TracingMiddleware {
    fn default() -> Self {
        TracingMiddleware(reqwest_tracing::TracingMiddleware::new())
    }
}

#[cfg(feature = "opentelemetry")]
impl std::fmt::Debug for TracingMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TracingMiddleware")
    }
}

#[cfg(feature = "opentelemetry")]
#[async_trait::async_trait]
impl reqwest_middleware::Middleware for TracingMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if !calls_traced() || in_unsampled_trace() {
            let mut request = request;
            inject_current(request.headers_mut());
            return next.run(request, extensions).await;
        }
        self.0.handle(request, extensions, next).await
    }
}
