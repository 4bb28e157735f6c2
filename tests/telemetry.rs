//! OpenTelemetry across the three processes of `just up` (mock-issuer, my-service, my-bff),
//! exporting over OTLP/HTTP to a receiver this test runs (`infra/otlp-receiver`, decoding
//! the protobuf with the OpenTelemetry proto types).
//!
//! One request, one trace: the caller's `traceparent` is the parent of the BFF's server
//! span; under it the token acquisition (a miss: the flight, its HTTP request, the
//! issuer's server span), then the call to my-service (its server span, the auth layer's
//! decision, the handler). The second request finds the token warm and the service's
//! validated-token cache hit; a forged token is refused, with its reason. No span carries
//! a token, a secret or a claim value, and every attribute is one the docs list.
//!
//! The export's batch delay is left at its default (5 s): the spans arrive because each
//! service flushes them when it stops, which is what this test waits for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeSet;
use std::time::Duration;

use otlp_receiver::Span;
use system_tests::up::{free_ports, start};

/// The attributes a span may carry: the HTTP semantic conventions, OpenTelemetry's own,
/// and shared-auth's (`docs/operations.md`, "Telemetry"). Anything else is a leak
/// waiting to happen.
const DOCUMENTED: &[&str] = &[
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "server.address",
    "server.port",
    "url.scheme",
    "error.type",
    "oauth.client",
    "oauth.token.cache",
    "oauth.grant_type",
    "oauth.outcome",
    "oauth.validation",
    "oauth.refusal",
];

/// A caller's trace context: the trace id this test picks, its own span as the parent.
fn traceparent(trace: &str) -> String {
    format!("00-{trace}-00f067aa0ba902b7-01")
}

const CALLER_SPAN: &str = "00f067aa0ba902b7";
const MISS_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const HIT_TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4737";
const REFUSED_TRACE: &str = "6bf92f3577b34da6a3ce929d0e0e4738";
/// A caller that decided not to sample (flag `00`).
const UNSAMPLED_TRACE: &str = "7bf92f3577b34da6a3ce929d0e0e4739";

/// A JWT-shaped token no issuer signed.
const FORGED: &str =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vLXN1Y2gta2V5In0.eyJzdWIiOiJmb3JnZWQifQ.c2lnbmF0dXJl";

/// Every span's name and attributes hold none of `secrets`, no JWT, no dev secret, no
/// `Bearer`; every attribute key is documented and appears once per span. Returns the keys
/// seen.
fn check_attributes<'a>(spans: &'a [Span], secrets: &[&str]) -> BTreeSet<&'a str> {
    let mut forbidden = vec![
        "eyJ", // any JWT
        "my-bff-dev-secret-change-me",
        "weather-admin-dev-secret",
        "alice-dev-password",
        system_tests::BFF_SECRET,
        "Bearer",
    ];
    forbidden.extend_from_slice(secrets);
    let mut keys = BTreeSet::new();
    for span in spans {
        let mut own = BTreeSet::new();
        for secret in &forbidden {
            assert!(!span.name.contains(secret), "{secret:?} in span {span:?}");
        }
        for (key, value) in &span.attributes {
            assert!(own.insert(key.as_str()), "{key} twice in {span:?}");
            keys.insert(key.as_str());
            for secret in &forbidden {
                assert!(!value.contains(secret), "{secret:?} in span {span:?}");
            }
        }
    }
    let undocumented: Vec<&&str> = keys.iter().filter(|k| !DOCUMENTED.contains(k)).collect();
    assert!(
        undocumented.is_empty(),
        "attributes the docs do not list: {undocumented:?}"
    );
    keys
}

struct Trace<'a>(Vec<&'a Span>);

impl<'a> Trace<'a> {
    fn of(spans: &'a [Span], trace: &str) -> Self {
        Trace(spans.iter().filter(|s| s.trace_id == trace).collect())
    }

    /// The one span named `name` in `service` under `parent`.
    fn child(&self, parent: &str, service: &str, name: &str) -> &'a Span {
        let found: Vec<&&Span> = self
            .0
            .iter()
            .filter(|s| {
                s.parent_span_id.as_deref() == Some(parent)
                    && s.service == service
                    && s.name == name
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {service} span {name:?} under {parent}; the trace:\n{}",
            otlp_receiver::trees(&self.0.iter().map(|s| (*s).clone()).collect::<Vec<_>>())
        );
        found[0]
    }
}

fn get(rt: &tokio::runtime::Runtime, url: &str, headers: &[(&str, &str)]) -> u16 {
    rt.block_on(async {
        let mut request = reqwest::Client::new().get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap().status().as_u16()
    })
}

/// An OTLP/HTTP receiver on a free port, served on `rt`: its spans and its base URL.
fn receiver(rt: &tokio::runtime::Runtime) -> (otlp_receiver::Spans, String) {
    let spans = otlp_receiver::Spans::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(std::future::IntoFuture::into_future(axum::serve(
        listener,
        otlp_receiver::router(spans.clone()),
    )));
    (spans, base)
}

#[test]
fn one_request_is_one_trace_across_the_bff_the_issuer_and_the_service() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (spans, endpoint) = receiver(&rt);

    let ports = free_ports();
    let [issuer_port, service_port, bff_port] = ports;
    let mut up = start(ports, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
    up.wait_for("ready (Ctrl-C stops everything)", Duration::from_secs(60));
    let bff = format!("http://127.0.0.1:{bff_port}/weatherforecast");
    let service = format!("http://127.0.0.1:{service_port}/weatherforecast");
    let miss = traceparent(MISS_TRACE);
    assert_eq!(get(&rt, &bff, &[("traceparent", &miss)]), 200);
    let hit = traceparent(HIT_TRACE);
    assert_eq!(get(&rt, &bff, &[("traceparent", &hit)]), 200);
    // Not sampled by the caller: nothing of its trace is exported.
    let unsampled = format!("00-{UNSAMPLED_TRACE}-00f067aa0ba902b7-00");
    assert_eq!(get(&rt, &bff, &[("traceparent", &unsampled)]), 200);
    let refused = traceparent(REFUSED_TRACE);
    let forged = format!("Bearer {FORGED}");
    assert_eq!(
        get(
            &rt,
            &service,
            &[("traceparent", &refused), ("authorization", &forged)]
        ),
        401
    );
    // Each service flushes its spans as it stops.
    assert!(up.interrupt_and_wait(Duration::from_secs(10)).success());
    let all = spans.all();
    let ours: Vec<Span> = all
        .iter()
        .filter(|s| [MISS_TRACE, HIT_TRACE, REFUSED_TRACE].contains(&s.trace_id.as_str()))
        .cloned()
        .collect();
    println!("{}", otlp_receiver::trees(&ours));

    // The first call: the token is fetched from the issuer inside the trace.
    let trace = Trace::of(&all, MISS_TRACE);
    let request = trace.child(CALLER_SPAN, "my-bff", "GET /weatherforecast");
    assert_eq!(request.kind, "server");
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
    let token = trace.child(&request.span_id, "my-bff", "oauth.token");
    assert_eq!(token.attribute("oauth.token.cache"), Some("miss"));
    assert_eq!(token.attribute("oauth.client"), Some("my-service"));
    let flight = trace.child(&token.span_id, "my-bff", "oauth.token_request");
    assert_eq!(
        flight.attribute("oauth.grant_type"),
        Some("client_credentials")
    );
    assert_eq!(flight.attribute("oauth.outcome"), Some("success"));
    let post = trace.child(&flight.span_id, "my-bff", "POST");
    assert_eq!(post.kind, "client");
    assert_eq!(
        post.attribute("server.port"),
        Some(&*issuer_port.to_string())
    );
    let at_issuer = trace.child(&post.span_id, "mock-issuer", "POST /oauth2/token");
    assert_eq!(at_issuer.kind, "server");
    let call = trace.child(&request.span_id, "my-bff", "GET");
    assert_eq!(call.kind, "client");
    assert_eq!(
        call.attribute("server.port"),
        Some(&*service_port.to_string())
    );
    assert!(
        call.start_unix_nanos >= token.end_unix_nanos,
        "token first, then the call"
    );
    let at_service = trace.child(&call.span_id, "my-service", "GET /weatherforecast");
    let decision = trace.child(&at_service.span_id, "my-service", "oauth.validate");
    assert_eq!(decision.attribute("oauth.validation"), Some("first_seen"));
    trace.child(&at_service.span_id, "my-service", "weather.list");

    // The second: a warm token, a token the service has validated before.
    let trace = Trace::of(&all, HIT_TRACE);
    let request = trace.child(CALLER_SPAN, "my-bff", "GET /weatherforecast");
    let token = trace.child(&request.span_id, "my-bff", "oauth.token");
    assert_eq!(token.attribute("oauth.token.cache"), Some("hit"));
    assert!(
        !trace.0.iter().any(|s| s.name == "oauth.token_request"),
        "no token request on a warm token"
    );
    let call = trace.child(&request.span_id, "my-bff", "GET");
    let at_service = trace.child(&call.span_id, "my-service", "GET /weatherforecast");
    let decision = trace.child(&at_service.span_id, "my-service", "oauth.validate");
    assert_eq!(decision.attribute("oauth.validation"), Some("cached"));

    // The forged token: refused, and why.
    let trace = Trace::of(&all, REFUSED_TRACE);
    let at_service = trace.child(CALLER_SPAN, "my-service", "GET /weatherforecast");
    assert_eq!(
        at_service.attribute("http.response.status_code"),
        Some("401")
    );
    let decisions: Vec<&&Span> = trace
        .0
        .iter()
        .filter(|s| s.name == "oauth.validate")
        .collect();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0].attribute("oauth.validation"), Some("refused"));
    let reason = decisions[0].attribute("oauth.refusal").unwrap_or_default();
    assert!(!reason.is_empty(), "the reason is named");
    println!("the forged token was refused for {reason:?}");

    // The JWKS refresh the unknown kid caused, under `oauth.verify`, before the decision.
    let verify = trace.child(&at_service.span_id, "my-service", "oauth.verify");
    let fetch = trace.child(&verify.span_id, "my-service", "GET");
    trace.child(&fetch.span_id, "mock-issuer", "GET /.well-known/jwks.json");
    assert!(decisions[0].start_unix_nanos >= verify.end_unix_nanos);

    // The unsampled request: no span of its trace, in any of the three; and no trace of its
    // own downstream either (my-bff sent its context on with the flag off, so my-service
    // followed the decision): my-service's only spans outside the sampled requests' traces
    // are `just up`'s readiness probes. (The issuer's include the services' start-up
    // discovery, which runs outside any request.)
    assert!(Trace::of(&all, UNSAMPLED_TRACE).0.is_empty());
    let strays: Vec<Span> = all
        .iter()
        .filter(|s| ![MISS_TRACE, HIT_TRACE, REFUSED_TRACE].contains(&s.trace_id.as_str()))
        .filter(|s| s.service == "my-service" && s.name != "GET /healthz")
        .cloned()
        .collect();
    assert!(
        strays.is_empty(),
        "my-service traced a request its caller did not sample:\n{}",
        otlp_receiver::trees(&strays)
    );

    // Nothing secret, nothing undocumented, in any span of the run (start-up included).
    let keys = check_attributes(&all, &[FORGED]);
    let services: BTreeSet<&str> = all.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["mock-issuer", "my-bff", "my-service"])
    );
    println!(
        "{} spans from three processes; attributes seen: {keys:?}",
        all.len()
    );
}

/// In this process: the client half under an OpenTelemetry layer exporting over OTLP to
/// the receiver. The issuer fails the first token request (503), downstream refuses the
/// first token (401): one caller span holds the miss with its two attempts, the renewal
/// with its own token request, and both calls, each carrying its own `traceparent`.
#[test]
fn a_retry_and_a_401_renewal_are_spans_of_the_callers_trace() {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use shared_auth::client::{
        ClientCredentialsClient, ClientCredentialsMiddleware, ClientId, ClientSecret, TokenManager,
    };
    use tracing::Instrument as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (spans, base) = receiver(&rt);
    let endpoint = format!("{base}/v1/traces");
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("caller")
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("test"))
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_target(false),
        ),
    )
    .unwrap();

    let issuer = rt.block_on(system_tests::start_issuer(
        mock_issuer::TokenProfile::Cognito,
    ));
    issuer.fail_next_token_requests(1, 503);
    let (api, seen) = rt.block_on(system_tests::refusing_first("traceparent"));
    // A token manager of its own (a cold cache), the token middleware first, then the
    // client span: acquisition, then the call.
    let client = || {
        let tokens = TokenManager::builder()
            .build()
            .unwrap()
            .register(
                "api",
                ClientCredentialsClient::new(
                    issuer.token_endpoint(),
                    ClientId::new(system_tests::BFF_ID),
                    ClientSecret::new(system_tests::BFF_SECRET),
                ),
            )
            .unwrap();
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(ClientCredentialsMiddleware::new(tokens))
            .with(shared_auth::client::TracingMiddleware::default())
            .build()
    };
    let (client, cold) = (client(), client());
    let status = rt.block_on(
        async { client.get(format!("{}/data", api.base)).send().await }
            .instrument(tracing::info_span!("caller")),
    );
    assert_eq!(status.unwrap().status(), 200);
    // A call that fails: its span says how, and nothing of the URL's path or query (the
    // error's own text names the whole URL).
    let plain = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(shared_auth::client::TracingMiddleware::default())
        .build();
    let failed = rt.block_on(
        async {
            plain
                .get(format!(
                    "http://{}/private/path?code=query-secret-42",
                    test_support::CLOSED
                ))
                .send()
                .await
        }
        .instrument(tracing::info_span!("failing caller")),
    );
    assert!(failed.is_err());
    // A request its service did not sample: no span is built here (no subscriber on this
    // thread, as under an edge that did not sample), only its trace context with the flag
    // off. Its cold token is fetched in a task of its own (on the runtime's threads, where
    // the subscriber records), and still the trace goes on, flag off, to the issuer and
    // downstream, and nothing of it is exported.
    let unsampled = {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        };
        opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex(UNSAMPLED_TRACE).unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::default(),
            true,
            TraceState::default(),
        ))
    };
    let status =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
            use opentelemetry::context::FutureExt as _;
            rt.block_on(
                async { cold.get(format!("{}/data", api.base)).send().await }
                    .with_context(unsampled),
            )
        });
    assert_eq!(status.unwrap().status(), 200);
    // The batch holds the spans: export them now.
    provider.force_flush().unwrap();

    let all = spans.all();
    println!("{}", otlp_receiver::trees(&all));
    check_attributes(&all, &["query-secret-42", "/private/path"]);
    let failing = all.iter().find(|s| s.name == "failing caller").unwrap();
    let call = Trace::of(&all, &failing.trace_id).child(&failing.span_id, "caller", "GET");
    assert_eq!(call.attribute("error.type"), Some("connect"));
    let root = all.iter().find(|s| s.name == "caller").unwrap();
    let trace = Trace::of(&all, &root.trace_id);
    let under = |parent: &str, name: &str| -> Vec<&Span> {
        let mut found: Vec<&Span> = trace
            .0
            .iter()
            .copied()
            .filter(|s| s.parent_span_id.as_deref() == Some(parent) && s.name == name)
            .collect();
        found.sort_by_key(|s| s.start_unix_nanos);
        found
    };
    let acquisitions = under(&root.span_id, "oauth.token");
    let caches: Vec<&str> = acquisitions
        .iter()
        .map(|s| s.attribute("oauth.token.cache").unwrap_or_default())
        .collect();
    assert_eq!(caches, ["miss", "renewal"]);
    for acquisition in &acquisitions {
        let flight = under(&acquisition.span_id, "oauth.token_request");
        assert_eq!(flight.len(), 1, "one flight per acquisition");
        assert_eq!(flight[0].attribute("oauth.outcome"), Some("success"));
        let attempts: Vec<&str> = under(&flight[0].span_id, "POST")
            .iter()
            .map(|s| s.attribute("http.response.status_code").unwrap_or_default())
            .collect();
        let expected: &[&str] = if acquisition.attribute("oauth.token.cache") == Some("miss") {
            &["503", "200"] // the retry
        } else {
            &["200"]
        };
        assert_eq!(attempts, expected);
    }
    let calls = under(&root.span_id, "GET");
    let statuses: Vec<&str> = calls
        .iter()
        .map(|s| s.attribute("http.response.status_code").unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["401", "200"]);
    // Each call carried its own client span as the parent downstream sees.
    let sent: Vec<String> = calls
        .iter()
        .map(|s| format!("00-{}-{}-01", s.trace_id, s.span_id))
        .collect();
    let unsampled_sent = format!("00-{UNSAMPLED_TRACE}-00f067aa0ba902b7-00");
    assert_eq!(
        *seen.lock().unwrap(),
        [&sent[..], &[unsampled_sent]].concat()
    );
    assert!(Trace::of(&all, UNSAMPLED_TRACE).0.is_empty());
    // The issuer's server spans (in this process: its router has the server span layer)
    // are children of the attempts, one each.
    let attempts: Vec<&Span> = trace
        .0
        .iter()
        .copied()
        .filter(|s| s.name == "POST")
        .collect();
    assert_eq!(
        attempts.len(),
        3,
        "two attempts for the miss, one for the renewal"
    );
    for attempt in attempts {
        trace.child(&attempt.span_id, "caller", "POST /oauth2/token");
    }
    // The unsampled request's token request: the issuer followed its flag (no fourth).
    let at_issuer = all
        .iter()
        .filter(|s| s.name == "POST /oauth2/token")
        .count();
    assert_eq!(
        at_issuer, 3,
        "the issuer traced a request its caller did not sample"
    );
}
