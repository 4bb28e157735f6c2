//! OpenTelemetry traces for a service, off by default.
//!
//! On when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (and `OTEL_TRACES_EXPORTER` is not `none`): spans go to that OTLP/HTTP (protobuf)
//! receiver in batches, from a thread of their own; the standard `OTEL_*` variables
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_BSP_*`) apply as the OpenTelemetry SDK reads
//! them.
//!
//! A trace starts at a request ([`http_layer`]): the sampler decides there, once, from the
//! caller's `traceparent` (its sampled flag) or, for a request without one, from
//! `OTEL_TRACES_SAMPLER` (default: every request). A request not sampled builds no span,
//! and nothing under it does: the export layer records a span only inside a request's
//! server span (work outside any request, such as a background key refresh, is not
//! traced). Its calls still carry its trace context with the sampled flag off
//! (`traceparent: 00-{trace}-{span}-00`: the caller's trace, or a new one), so the next
//! service follows the decision rather than start a trace of its own: the request runs in
//! an OpenTelemetry context of its own (no span, no `tracing` span), and the client half
//! injects it where it records no span.
//!
//! What is exported: spans, never log events. The server span of each request
//! (`{method} {route}`, the caller's trace context as its parent), shared-auth's spans
//! (`oauth.token`, `oauth.token_request`, `oauth.validate`, `oauth.verify`), the HTTP
//! client spans of calls to the issuer and, through [`traced`], to downstream services
//! (both carrying `traceparent`), and a service's own DEBUG spans. None carries a token, a
//! secret, a key, a claim value, a URL path or query.
//!
//! Off, nothing of this runs: no exporter, no propagator, no client middleware, and the
//! spans are DEBUG spans that an INFO log filter disables at their call sites.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use futures_util::future::Either;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, ShouldSample};
use tower::layer::util::Stack;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Whether this process exports traces (the edge is set once, by
/// [`crate::init_tracing`], when it does).
pub fn enabled() -> bool {
    EDGE.get().is_some()
}

/// The sampler at the start of a trace (`OTEL_TRACES_SAMPLER`, as the SDK reads it) and
/// the ids of new traces; set once, with the export.
struct Edge {
    sampler: Box<dyn ShouldSample>,
    ids: opentelemetry_sdk::trace::RandomIdGenerator,
}

static EDGE: OnceLock<Edge> = OnceLock::new();

/// The server span's name: the one span the export layer records outside another.
const SERVER_SPAN: &str = "HTTP request";

/// Whether the environment asks for trace export.
pub(crate) fn wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let exporter_off = std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
    !exporter_off
        && (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// The endpoint variables that are set must be http(s) URLs: the exporter would take
/// anything else for its default (`http://localhost:4318`) without a word.
fn check_endpoints(get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        let Some(value) = get(name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let uri: axum::http::Uri = value
            .parse()
            .map_err(|e| format!("{name}: {value:?} is not a URL ({e})"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(format!(
                "{name}: {value:?} is not an http:// or https:// URL (OTLP over HTTP)"
            ));
        }
    }
    Ok(())
}

/// The tracer provider exporting to the configured endpoint, `service` its
/// `service.name` unless `OTEL_SERVICE_NAME` says otherwise. The error names the variables
/// to check.
pub(crate) fn provider(service: &str) -> Result<SdkTracerProvider, String> {
    check_endpoints(|name| std::env::var(name).ok())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| {
            format!(
                "OpenTelemetry export (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_COMPRESSION): {e}"
            )
        })?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(FollowEdge)
        .with_resource(resource.build())
        .build())
}

/// The SDK's sampler: the edge ([`http_layer`]) decided already. A server span made is
/// sampled, whatever the caller's flag said (a sampler that does not follow the parent may
/// trace a request its caller did not); a span inside the process follows its parent.
#[derive(Clone, Debug)]
struct FollowEdge;

impl ShouldSample for FollowEdge {
    fn should_sample(
        &self,
        parent: Option<&opentelemetry::Context>,
        _trace_id: opentelemetry::trace::TraceId,
        _name: &str,
        _kind: &opentelemetry::trace::SpanKind,
        _attributes: &[opentelemetry::KeyValue],
        _links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        use opentelemetry::trace::TraceContextExt as _;
        use opentelemetry_sdk::trace::SamplingDecision;
        let parent = parent.map(|cx| cx.span().span_context().clone());
        let sampled = match &parent {
            Some(parent) if parent.is_valid() && !parent.is_remote() => parent.is_sampled(),
            _ => true,
        };
        opentelemetry_sdk::trace::SamplingResult {
            decision: if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
        }
    }
}

/// Turns the edge's sampling and the W3C propagation on, once the export layer is in.
pub(crate) fn start() {
    let _ = EDGE.set(Edge {
        sampler: opentelemetry_sdk::trace::Config::default().sampler,
        ids: opentelemetry_sdk::trace::RandomIdGenerator::default(),
    });
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
}

/// The `tracing` layer that turns spans into OpenTelemetry spans: spans only (log events
/// stay in the log), DEBUG and above, and only a request's server span or a span inside
/// one, so a request that is not sampled (no server span) records nothing.
pub(crate) fn layer<S>(
    provider: &SdkTracerProvider,
    service: &str,
) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    use tracing_subscriber::Layer as _;
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service.to_owned()))
        // No source locations, thread names or busy/idle times: what the span is and
        // what it decided, nothing about the binary.
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_filter(
            tracing_subscriber::filter::dynamic_filter_fn(|metadata, cx| {
                metadata.is_span()
                    && *metadata.level() <= tracing::Level::DEBUG
                    && ((metadata.name() == SERVER_SPAN && metadata.target() == module_path!())
                        || cx.lookup_current().is_some())
            })
            .with_max_level_hint(tracing::Level::DEBUG),
        )
}

/// Flushes and stops the export when dropped (hold it for the life of `main`).
#[must_use = "dropping it stops the trace export"]
pub struct Telemetry(pub(crate) Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!("OpenTelemetry export did not finish: {e}");
        }
    }
}

/// The client middleware for calls to downstream services, when traces are exported:
/// `shared_auth::client::TracingMiddleware`, an HTTP client span per request (method,
/// scheme, host and port, status, never the path, query or an error's text) carrying its
/// `traceparent`. Put it last, so the token acquisition before it is a span of its own
/// and a retry after a 401 is a second client span. Off, the builder is returned as it is.
pub fn traced(builder: reqwest_middleware::ClientBuilder) -> reqwest_middleware::ClientBuilder {
    if enabled() {
        builder.with(shared_auth::client::TracingMiddleware::default())
    } else {
        builder
    }
}

/// The server span of every request: `{method} {route}` (OpenTelemetry's HTTP server
/// conventions: `http.request.method`, `http.route`, `http.response.status_code`, status
/// error on a 5xx), the caller's W3C trace context as its parent, where the trace is
/// sampled (see the module). A DEBUG span: with traces off and logs at INFO it is never
/// built. In front of it, [`EdgeLayer`] takes the sampling decision (nothing when traces
/// are off).
pub fn http_layer() -> Stack<
    TraceLayer<
        SharedClassifier<ServerErrorsAsFailures>,
        ServerSpan,
        DefaultOnRequest,
        RecordStatus,
    >,
    EdgeLayer,
> {
    Stack::new(
        TraceLayer::new_for_http()
            .make_span_with(ServerSpan)
            .on_response(RecordStatus),
        EdgeLayer,
    )
}

/// What the edge decided for a request (a request extension, read by [`ServerSpan`]).
#[derive(Clone)]
enum Decision {
    /// Traced, under the caller's context.
    Sampled(opentelemetry::Context),
    /// Not traced: no span (the request runs in its trace context, the flag off).
    NotSampled,
}

/// The sampling decision, taken once before the server span ([`http_layer`]'s outer half):
/// a request not sampled runs in its trace context with the sampled flag off, which the
/// client half sends on.
#[derive(Clone, Copy, Debug)]
pub struct EdgeLayer;

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgeService(inner)
    }
}

/// [`EdgeLayer`]'s service.
#[derive(Clone, Debug)]
pub struct EdgeService<S>(S);

impl<S, B> tower::Service<Request<B>> for EdgeService<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, opentelemetry::context::WithContext<S::Future>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        use opentelemetry::context::FutureExt as _;
        let Some(edge) = EDGE.get() else {
            return Either::Left(self.0.call(request));
        };
        match decide(edge, &request) {
            Ok(parent) => {
                request.extensions_mut().insert(Decision::Sampled(parent));
                Either::Left(self.0.call(request))
            }
            Err(unsampled) => {
                request.extensions_mut().insert(Decision::NotSampled);
                Either::Right(self.0.call(request).with_context(unsampled))
            }
        }
    }
}

/// The edge's decision for `request`: sampled, the caller's context (the server span's
/// parent); else the context it runs in: the caller's trace (or a new one), a span id of
/// its own, the sampled flag off.
fn decide<B>(
    edge: &Edge,
    request: &Request<B>,
) -> Result<opentelemetry::Context, opentelemetry::Context> {
    use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags};
    use opentelemetry_sdk::trace::IdGenerator as _;
    let parent = caller(request);
    let remote = parent.span().span_context().clone();
    let trace_id = if remote.is_valid() {
        remote.trace_id()
    } else {
        edge.ids.new_trace_id()
    };
    if sampled(edge, &parent, trace_id, &span_name(request)) {
        return Ok(parent);
    }
    let own = SpanContext::new(
        trace_id,
        edge.ids.new_span_id(),
        TraceFlags::default(),
        false,
        remote.trace_state().clone(),
    );
    Err(opentelemetry::Context::new().with_remote_span_context(own))
}

/// The caller's trace context, through the global propagator.
fn caller<B>(request: &Request<B>) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
    })
}

/// The server span's name for `request` ([`SpanName`]).
fn span_name<B>(request: &Request<B>) -> SpanName<'_> {
    // The route template, never the path: a path may name a person or a resource.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    SpanName(request.method().as_str(), route)
}

/// Makes the server span ([`http_layer`]).
#[derive(Clone, Copy, Debug)]
pub struct ServerSpan;

impl<B> MakeSpan<B> for ServerSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let name = span_name(request);
        let mut parent = None;
        if let Some(edge) = EDGE.get() {
            match request.extensions().get::<Decision>() {
                Some(Decision::Sampled(context)) => parent = Some(context.clone()),
                // Not sampled: no span here nor under it.
                Some(Decision::NotSampled) => return Span::none(),
                // Without the edge's layer in front (`ServerSpan` alone): decided here.
                None => match decide(edge, request) {
                    Ok(context) => parent = Some(context),
                    Err(_) => return Span::none(),
                },
            }
        }
        let span = tracing::debug_span!(
            "HTTP request",
            otel.name = %name,
            otel.kind = "server",
            http.request.method = name.0,
            http.route = name.1,
            http.response.status_code = Empty,
            otel.status_code = Empty,
        );
        // Without this crate's export, a layer the process set up itself may still record
        // the span: the caller's context, through whatever propagator it set.
        if parent.is_none() && !span.is_disabled() {
            parent = Some(caller(request));
        }
        if let Some(parent) = parent {
            let _ = span.set_parent(parent);
        }
        span
    }
}

/// The edge's sampler on a request with the caller's context `parent` and the trace id it
/// will carry: the caller's sampled flag when it sent a trace context, else
/// `OTEL_TRACES_SAMPLER`'s for a new trace.
fn sampled(
    edge: &Edge,
    parent: &opentelemetry::Context,
    trace_id: opentelemetry::trace::TraceId,
    name: &SpanName<'_>,
) -> bool {
    let decision = edge
        .sampler
        .should_sample(
            Some(parent),
            trace_id,
            &name.to_string(),
            &opentelemetry::trace::SpanKind::Server,
            &[],
            &[],
        )
        .decision;
    decision != opentelemetry_sdk::trace::SamplingDecision::Drop
}

/// `{method} {route}`, or `{method}` where no route matched (a 404).
struct SpanName<'a>(&'a str, Option<&'a str>);

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(route) => write!(f, "{} {route}", self.0),
            None => f.write_str(self.0),
        }
    }
}

/// Records the response status on the server span ([`http_layer`]).
#[derive(Clone, Copy, Debug)]
pub struct RecordStatus;

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, response: &Response<B>, _latency: Duration, span: &Span) {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_that_is_not_an_http_url_is_named() {
        let with = |name: &'static str, value: &'static str| {
            move |asked: &str| (asked == name).then(|| value.to_owned())
        };
        assert!(
            check_endpoints(with("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")).is_ok()
        );
        assert!(check_endpoints(with("OTEL_EXPORTER_OTLP_ENDPOINT", "")).is_ok());
        assert!(check_endpoints(|_| None).is_ok());
        for (name, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"),
        ] {
            let error = check_endpoints(with(name, value)).unwrap_err();
            assert!(error.starts_with(name), "{error}");
        }
    }
}
