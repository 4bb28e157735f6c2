//! Service plumbing the services share, kept out of the auth core (`shared-auth`): what
//! every `main.rs` does around its router.
//!
//! - [`init_tracing`]: `tracing` to stdout, filtered by `RUST_LOG`;
//! - [`serve`]: bind `BIND_ADDR`, log the ready line, serve until SIGINT/SIGTERM
//!   ([`shutdown_signal`]), drain;
//! - [`exit`]: a start-up failure printed to stderr whatever `RUST_LOG` says;
//! - [`metrics`]: the Prometheus recorder and the `GET /metrics` handler.
//!
//! ```no_run
//! # async fn app() -> axum::Router { axum::Router::new() }
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     service_kit::init_tracing();
//!     let bind = "127.0.0.1:0".parse().unwrap();
//!     service_kit::exit("my-service", service_kit::serve("my-service", bind, app().await).await)
//! }
//! ```

pub mod metrics;
mod shutdown;

use std::net::SocketAddr;
use std::process::ExitCode;

pub use shutdown::shutdown_signal;

/// `tracing` to stdout: the filter from `RUST_LOG` (default `info,tower_http=warn`),
/// colours only on a terminal.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
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
