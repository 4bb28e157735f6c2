//! Service plumbing the services share, kept out of the auth core (`shared-auth`): what
//! every `main.rs` does around its router.
//!
//! - [`init_tracing`]: `tracing` to stdout, filtered by `RUST_LOG`, and OpenTelemetry
//!   traces over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`telemetry`]);
//! - [`serve`]: bind `BIND_ADDR`, log the ready line, serve until SIGINT/SIGTERM
//!   ([`shutdown_signal`]), drain;
//! - [`exit`]: a start-up failure printed to stderr whatever `RUST_LOG` says;
//! - [`metrics`]: the Prometheus recorder and the `GET /metrics` handler.
//!
//! ```no_run
//! # async fn app() -> axum::Router { axum::Router::new() }
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let _telemetry = match service_kit::init_tracing("my-service") {
//!         Ok(telemetry) => telemetry,
//!         Err(e) => return service_kit::exit("my-service", Err(e)),
//!     };
//!     let bind = "127.0.0.1:0".parse().unwrap();
//!     service_kit::exit("my-service", service_kit::serve("my-service", bind, app().await).await)
//! }
//! ```

pub mod metrics;
mod shutdown;
pub mod telemetry;

use std::net::SocketAddr;
use std::process::ExitCode;

pub use shutdown::shutdown_signal;
pub use telemetry::Telemetry;

/// `tracing` to stdout: the filter from `RUST_LOG` (default `info,tower_http=warn`),
/// colours only on a terminal. With `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans are also exported over OTLP, as
/// `service` unless `OTEL_SERVICE_NAME` is set ([`telemetry`]); hold the returned
/// [`Telemetry`] for the life of `main`, its drop flushes them. The error names the
/// variables to check.
pub fn init_tracing(service: &str) -> Result<Telemetry, String> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        );
    let provider = if telemetry::wanted() {
        Some(telemetry::provider(service)?)
    } else {
        None
    };
    let export = provider.as_ref().map(|p| telemetry::layer(p, service));
    tracing_subscriber::registry()
        .with(log)
        .with(export)
        .try_init()
        .map_err(|e| format!("tracing: {e}"))?;
    if provider.is_some() {
        telemetry::start();
    }
    Ok(Telemetry(provider))
}

/// Binds `bind` (an error names `BIND_ADDR`), logs `{name} ready on http://...`, serves
/// `app` until SIGINT or SIGTERM, then lets in-flight requests finish.
pub async fn serve(name: &str, bind: SocketAddr, app: axum::Router) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (BIND_ADDR): {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("{name} ready on http://{bound} (Swagger UI: http://{bound}/swagger-ui/)");
    // With each request's peer address (`ConnectInfo<SocketAddr>`): the auth layer reads a
    // TLS-terminating proxy's client certificate header only from the proxies it trusts.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("{name} stopped");
    Ok(())
}

/// The process's exit: success, or the error on stderr as `{name}: {message}` (printed
/// whatever `RUST_LOG` says: a service that cannot start must say why).
#[allow(clippy::print_stderr)]
pub fn exit(name: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}
