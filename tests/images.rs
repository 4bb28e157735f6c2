//! The container images end to end: mock-issuer, my-service and my-bff started from
//! `localhost/NAME:dev` (built by `just images`) with testcontainers, BFF -> service ->
//! issuer through them. Run by `just test-images` (feature `images` of system-tests).
//!
//! The three share one network namespace, as containers of a pod do: the issuer's container
//! owns it and publishes the three ports on 127.0.0.1; the others join it
//! (`network_mode: container:ID`) and reach each other on 127.0.0.1. That works the same on
//! Docker and on podman, and needs no DNS or user network.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use serde_json::Value;
use system_tests::containers::{self, free_port};
use system_tests::{BFF_ID, READ, http};
use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};

const TAG: &str = "dev";
const BFF_SECRET: &str = "images-bff-secret-0123456789";

fn image(name: &str) -> GenericImage {
    GenericImage::new(format!("localhost/{name}"), TAG.to_owned())
        .with_wait_for(WaitFor::message_on_stdout("ready on http://"))
}

/// Starts `image` inside the network namespace of container `owner`.
async fn joined(
    image: testcontainers::ContainerRequest<GenericImage>,
    owner: &str,
) -> ContainerAsync<GenericImage> {
    let mode = format!("container:{owner}");
    image
        .with_host_config_modifier(move |config| {
            config.network_mode = Some(mode.clone());
            config.publish_all_ports = Some(false);
            config.port_bindings = None;
        })
        .start()
        .await
        .expect("start a container from a `just images` image")
}

#[tokio::test]
async fn bff_service_and_issuer_images_work_together() {
    let (issuer_port, service_port, bff_port) = (free_port(), free_port(), free_port());
    let issuer = image("mock-issuer")
        .with_env_var("AUTH_SERVER_MYBFF_CLIENT_SECRET", BFF_SECRET)
        .with_env_var(
            "WEATHER_ADMIN_CLIENT_SECRET",
            "images-admin-secret-0123456789",
        )
        .with_mapped_port(issuer_port, 7000.tcp())
        .with_mapped_port(service_port, 7062.tcp())
        .with_mapped_port(bff_port, 7248.tcp())
        .with_host_config_modifier(containers::publish_on_loopback)
        .start()
        .await
        .expect("start localhost/mock-issuer:dev (run `just images` first)");
    let owner = issuer.id().to_owned();

    let _service = joined(
        image("my-service")
            .with_env_var("AUTH_AUTHORITY", "http://127.0.0.1:7000")
            .with_env_var("AUTH_RESOURCE", "http://127.0.0.1:7062")
            .with_env_var("AUTH_TOKEN_PROFILE", "cognito"),
        &owner,
    )
    .await;
    let _bff = joined(
        image("my-bff")
            .with_env_var(
                "AUTH_SERVER_TOKEN_ENDPOINT_URL",
                "http://127.0.0.1:7000/oauth2/token",
            )
            .with_env_var("AUTH_SERVER_MYBFF_CLIENT_ID", BFF_ID)
            .with_env_var("AUTH_SERVER_MYBFF_CLIENT_SECRET", BFF_SECRET)
            .with_env_var("AUTH_SERVER_MYBFF_SCOPE", READ)
            .with_env_var("MY_SERVICE_BASE_URL", "http://127.0.0.1:7062"),
        &owner,
    )
    .await;

    let bff = format!("http://127.0.0.1:{bff_port}");
    for _ in 0..3 {
        let response = http()
            .get(format!("{bff}/weatherforecast"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let forecasts: Vec<Value> = response.json().await.unwrap();
        assert_eq!(forecasts.len(), 5);
    }
    // my-service itself still wants a token.
    let direct = http()
        .get(format!("http://127.0.0.1:{service_port}/weatherforecast"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    // One token for the three calls, as the BFF's own metrics say.
    let metrics = http()
        .get(format!("{bff}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let requests = metrics
        .lines()
        .find(|l| {
            l.starts_with("shared_auth_token_requests_total{") && l.contains("outcome=\"success\"")
        })
        .expect("token request counter");
    println!("images: 3 BFF calls; {requests}");
    assert!(requests.ends_with(" 1"), "{requests}");
}
