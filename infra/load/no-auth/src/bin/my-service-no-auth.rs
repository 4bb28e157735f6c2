//! my-service as `just load` compares it: the same router, configuration and plumbing, with
//! the weather route answered without the auth layers.

use std::process::ExitCode;

use axum::Router;
use axum::routing::get;
use clap::Parser as _;
use my_service::config::Args;
use shared_auth::server::JwtValidator;

#[tokio::main]
async fn main() -> ExitCode {
    service_kit::exit("my-service-no-auth", run().await)
}

async fn run() -> Result<(), String> {
    let _telemetry = service_kit::init_tracing("my-service-no-auth")?;
    load_no_auth::acknowledged()?;
    let args = Args::parse();
    let bind = args.bind;
    let config = args
        .into_config()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    service_kit::metrics::prometheus();
    let validator = JwtValidator::new(config.validator.clone())
        .await
        .map_err(|e| e.to_string())?;
    let token_url = my_service::token_url(&config, &validator);
    let api = Router::new().route(
        "/weatherforecast",
        get(|| async { axum::Json(my_service::weather::five_days()) }),
    );
    let app = my_service::around(api, validator, &token_url);
    service_kit::serve("my-service-no-auth", bind, app).await
}
