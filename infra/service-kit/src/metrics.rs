//! Prometheus for a service: [`prometheus`] installs the recorder (once) that the
//! `metrics` facade (and so shared-auth's counters) reaches, and [`render`] answers
//! `GET /metrics`. This crate knows no metric by name; the service describes its own and
//! passes what must run before each scrape:
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! service_kit::metrics::prometheus();
//! shared_auth::describe_metrics();
//! let app: Router = Router::new()
//!     .route("/metrics", get(|| service_kit::metrics::render(shared_auth::publish_metrics)));
//! ```

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs a Prometheus recorder for this process (once; later calls return the same
/// handle). `None` if another recorder was installed first. Histograms named
/// `*_duration_seconds` get buckets from 5 ms to 10 s (token requests, retries included).
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const BUCKETS: &[f64] = &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".to_owned()), BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// The Prometheus text exposition after running `before_scrape` (e.g. publishing sharded
/// counters), or 404 when no Prometheus recorder is installed.
pub async fn render(before_scrape: impl FnOnce()) -> Response {
    match prometheus() {
        Some(handle) => {
            before_scrape();
            handle.run_upkeep();
            let mut response = handle.render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
