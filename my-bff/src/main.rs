//! my-bff binary: configuration, tracing, listener, graceful shutdown.
//!
//! A fatal start-up error is printed to stderr whatever RUST_LOG says, hence the allowed
//! print lint.
#![allow(clippy::print_stderr)]

use std::process::ExitCode;

use clap::Parser as _;
use my_bff::config::Args;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("my-bff: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    // A benchmark build has no authentication. It must never run by accident (say, left
    // in target/ and picked up by a script), so it starts only when told it is one.
    #[cfg(feature = "bench-no-auth")]
    if std::env::var("BENCH_NO_AUTH_ACK").as_deref() != Ok("yes") {
        return Err(
            "this binary was built with the bench-no-auth feature: it has NO authentication. \
             It is for `just load` only; set BENCH_NO_AUTH_ACK=yes if that is what you want"
                .to_owned(),
        );
    }
    let args = Args::parse();
    let bind = args.bind;
    let config = args
        .into_config()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    let app = my_bff::build(&config).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (BIND_ADDR): {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("my-bff ready on http://{bound} (Swagger UI: http://{bound}/swagger-ui/)");
    axum::serve(listener, app)
        .with_graceful_shutdown(shared_auth::shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("my-bff stopped");
    Ok(())
}
