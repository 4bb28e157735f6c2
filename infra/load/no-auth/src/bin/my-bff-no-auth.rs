//! my-bff as `just load` compares it: the same router and configuration, calling my-service
//! without the token middleware.

use std::process::ExitCode;

use clap::Parser as _;
use my_bff::config::Args;
use my_bff::my_service_client::{MyServiceClient, http_client};

#[tokio::main]
async fn main() -> ExitCode {
    service_kit::exit("my-bff-no-auth", run().await)
}

async fn run() -> Result<(), String> {
    let _telemetry = service_kit::init_tracing("my-bff-no-auth")?;
    load_no_auth::acknowledged()?;
    let args = Args::parse();
    let bind = args.bind;
    let config = args
        .into_config()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    service_kit::metrics::prometheus();
    // Registered for /readyz only; the calls to my-service carry no token.
    let tokens = my_bff::token_client(&config)
        .await
        .map_err(|e| e.to_string())?;
    let http =
        reqwest_middleware::ClientBuilder::new(http_client(config.my_service_timeout)).build();
    let my_service = MyServiceClient::with_http(http, config.my_service_base_url.clone());
    let app = my_bff::router(my_service, tokens);
    service_kit::serve("my-bff-no-auth", bind, app).await
}
