//! my-bff binary: configuration, tracing, listener, graceful shutdown.
//!
//! The plumbing (tracing, serving, shutdown, exit) is `service_kit`'s.

use std::process::ExitCode;

use clap::Parser as _;
use my_bff::config::Args;

#[tokio::main]
async fn main() -> ExitCode {
    service_kit::exit("my-bff", run().await)
}

async fn run() -> Result<(), String> {
    // Held to the end: its drop flushes the trace export.
    let _telemetry = service_kit::init_tracing("my-bff")?;
    let args = Args::parse();
    let bind = args.bind;
    let config = args
        .into_config()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    let app = my_bff::build(&config).await.map_err(|e| e.to_string())?;
    service_kit::serve("my-bff", bind, app).await
}
