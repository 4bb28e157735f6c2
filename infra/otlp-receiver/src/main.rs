//! `otlp-receiver [BIND] [--discard]` (default `127.0.0.1:4318`, the OTLP/HTTP port):
//! receives trace exports until SIGINT or SIGTERM, then prints every trace it received as
//! a tree (`just trace` runs it beside `just up`). With `--discard` it answers every
//! export and keeps nothing (`just load`'s telemetry row: the export's cost to the
//! services, not a collector's).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    service_kit::exit("otlp-receiver", run().await)
}

#[allow(clippy::print_stdout)] // the trees are this tool's output
async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let discard = args.iter().any(|a| a == "--discard");
    let bind = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:4318".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let spans = otlp_receiver::Spans::default();
    println!("otlp-receiver listening on http://{bind}/v1/traces");
    let router = if discard {
        otlp_receiver::discarding_router()
    } else {
        otlp_receiver::router(spans.clone())
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(service_kit::shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    print!("{}", otlp_receiver::trees(&spans.all()));
    Ok(())
}
