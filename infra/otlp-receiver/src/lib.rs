//! An OTLP/HTTP trace receiver, for the tests and `just trace`: `POST /v1/traces` with an
//! `ExportTraceServiceRequest` (protobuf, decoded with the OpenTelemetry proto types); the
//! spans are kept in memory ([`Spans`]) and printed as trees ([`trees`]).
//!
//! Not a collector: no gzip, no JSON encoding, no other signal (the services send neither).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let spans = otlp_receiver::Spans::default();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4318").await?;
//! tokio::spawn(async move { axum::serve(listener, otlp_receiver::router(spans)).await });
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;

/// One received span, its ids in lower-case hex.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The `service.name` of its resource.
    pub service: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    /// Its name.
    pub name: String,
    /// `server`, `client`, `internal`, `producer`, `consumer` or `unspecified`.
    pub kind: &'static str,
    /// Its attributes, values as text, in the order sent (a key sent twice shows twice).
    pub attributes: Vec<(String, String)>,
    /// Start, in nanoseconds since the epoch.
    pub start_unix_nanos: u64,
    /// End, in nanoseconds since the epoch.
    pub end_unix_nanos: u64,
}

impl Span {
    /// The attribute `key`, if present (the last one sent under that key).
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The spans received so far (clones share them).
#[derive(Clone, Debug, Default)]
pub struct Spans(Arc<Mutex<Vec<Span>>>);

impl Spans {
    /// Every span received, in order of arrival.
    pub fn all(&self) -> Vec<Span> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn extend(&self, spans: Vec<Span>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(spans);
    }
}

/// `POST /v1/traces`, storing into `spans`.
pub fn router(spans: Spans) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        .with_state(spans)
}

/// `POST /v1/traces` answered as a success, the export read and dropped.
pub fn discarding_router() -> Router {
    Router::new().route(
        "/v1/traces",
        post(|_body: Bytes| async {
            (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }),
    )
}

async fn export(State(spans): State<Spans>, headers: HeaderMap, body: Bytes) -> Response {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    if !protobuf || headers.contains_key(header::CONTENT_ENCODING) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/x-protobuf, uncompressed, only",
        )
            .into_response();
    }
    match decode(&body) {
        Ok(received) => {
            spans.extend(received);
            (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("not an OTLP trace export: {e}"),
        )
            .into_response(),
    }
}

/// The spans of one `ExportTraceServiceRequest` (protobuf).
pub fn decode(body: &[u8]) -> Result<Vec<Span>, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(body)?;
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(Span {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty())
                        .then(|| hex(&span.parent_span_id)),
                    kind: match span.kind {
                        1 => "internal",
                        2 => "server",
                        3 => "client",
                        4 => "producer",
                        5 => "consumer",
                        _ => "unspecified",
                    },
                    name: span.name,
                    attributes: attributes(&span.attributes),
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                });
            }
        }
    }
    Ok(spans)
}

fn attributes(list: &[KeyValue]) -> Vec<(String, String)> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Every trace in `spans` as an indented tree: per span its service, name, kind, duration
/// and attributes; children in the order they started. A span whose parent was not
/// received is shown as a root.
pub fn trees(spans: &[Span]) -> String {
    let known: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut roots: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.parent_span_id
                .as_deref()
                .is_none_or(|p| !known.contains(p))
        })
        .collect();
    roots.sort_by_key(|s| s.start_unix_nanos);
    let mut out = String::new();
    let mut trace = "";
    for root in roots {
        if root.trace_id != trace {
            trace = &root.trace_id;
            let _ = writeln!(out, "trace {trace}");
        }
        print(spans, root, 1, &mut out);
    }
    out
}

fn print(spans: &[Span], span: &Span, depth: usize, out: &mut String) {
    let millis = span.end_unix_nanos.saturating_sub(span.start_unix_nanos) as f64 / 1e6;
    let mut attributes: Vec<String> = span
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    attributes.sort();
    let _ = writeln!(
        out,
        "{:indent$}{} | {} ({}, {millis:.1} ms) {}",
        "",
        span.service,
        span.name,
        span.kind,
        attributes.join(" "),
        indent = depth * 2
    );
    let mut children: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.as_deref() == Some(span.span_id.as_str()))
        .collect();
    children.sort_by_key(|s| s.start_unix_nanos);
    for child in children {
        print(spans, child, depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan};

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_an_export_and_prints_its_tree() {
        let span = |id: u8, parent: Option<u8>, name: &str, start: u64| ProtoSpan {
            trace_id: vec![0xab; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: name.into(),
            kind: if parent.is_none() { 2 } else { 1 },
            start_time_unix_nano: start,
            end_time_unix_nano: start + 2_000_000,
            attributes: vec![string("http.route", "/x")],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", "svc")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span(2, Some(1), "second", 20),
                        span(1, None, "GET /x", 0),
                        span(3, Some(1), "first", 10),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let spans = decode(&request.encode_to_vec()).unwrap_or_default();
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[1].parent_span_id, None);
        assert_eq!(spans[0].parent_span_id.as_deref(), Some("0101010101010101"));
        assert_eq!(spans[0].service, "svc");
        assert_eq!(spans[0].attribute("http.route"), Some("/x"));
        let tree = trees(&spans);
        assert_eq!(
            tree,
            "trace abababababababababababababababab\n  svc | GET /x (server, 2.0 ms) http.route=/x\n    svc | first (internal, 2.0 ms) http.route=/x\n    svc | second (internal, 2.0 ms) http.route=/x\n"
        );
    }
}
