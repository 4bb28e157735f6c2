//! my-service binary: configuration, tracing, listener, graceful shutdown.
//!
//! The plumbing (tracing, serving, shutdown, exit) is `service_kit`'s.

use std::process::ExitCode;

use clap::Parser as _;
use my_service::config::Args;

#[tokio::main]
async fn main() -> ExitCode {
    service_kit::exit("my-service", run().await)
}

async fn run() -> Result<(), String> {
    // Held to the end: its drop flushes the trace export.
    let _telemetry = service_kit::init_tracing("my-service")?;
    let args = Args::parse();
    let bind = args.bind;
    // Kept to name the setting behind a start error (which issuer, which variable).
    let auth = args.auth.clone();
    let config = args
        .into_config()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    let app = my_service::build(&config)
        .await
        .map_err(|e| auth.explain_start_error(&config.validator, &e))?;
    service_kit::serve("my-service", bind, app).await
}
