//! RFC 8693 token exchange at the mock issuer, over HTTP: a service trades the token it
//! received for one meant for another API, issued to it on behalf of the subject, with
//! the delegation chain in nested `act` claims; and everything it must refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile};
use serde_json::{Value, json};
use test_support::decode_part;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

async fn issuer() -> IssuerHandle {
    mock_issuer::start(
        IssuerConfig::new(TokenProfile::Cognito)
            .with_resource_server("MyService", ["weather_read", "weather_write"])
            .with_resource_server("Downstream", ["read"])
            .with_client(
                ClientConfig::new(
                    "my-service",
                    "my-service-secret-0123456789",
                    Vec::<String>::new(),
                )
                .with_grant_types([GRANT]),
            )
            .with_client(ClientConfig::new(
                "plain",
                "plain-secret-0123456789",
                ["MyService/weather_read"],
            )),
    )
    .await
    .unwrap()
}

/// A token this issuer signed for `sub`, with `extra` claims.
fn subject(issuer: &IssuerHandle, extra: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({
        "iss": issuer.issuer(),
        "sub": "alice",
        "client_id": "my-bff",
        "token_use": "access",
        "scope": "MyService/weather_read Downstream/read",
        "iat": now,
        "exp": now + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    issuer.sign_claims(&claims).unwrap()
}

/// An exchange as `client` with `form` (the grant type added): status and JSON body.
async fn exchange(
    issuer: &IssuerHandle,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    form.push(("grant_type", GRANT));
    let response = reqwest::Client::new()
        .post(issuer.token_endpoint())
        .basic_auth(client.0, Some(client.1))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

const SERVICE: (&str, &str) = ("my-service", "my-service-secret-0123456789");

#[tokio::test]
async fn a_service_gets_a_token_for_another_api_on_behalf_of_the_subject() {
    let issuer = issuer().await;
    let token = subject(&issuer, json!({}));
    let (status, body) = exchange(
        &issuer,
        SERVICE,
        &[
            ("subject_token", &token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "Downstream"),
            ("scope", "Downstream/read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let claims = decode_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "my-service");
    assert_eq!(claims["aud"], "Downstream");
    assert_eq!(claims["scope"], "Downstream/read");
    assert_eq!(claims["act"], json!({"sub": "my-service"}));
    assert!(claims["exp"].as_u64().unwrap() <= decode_part(&token, 1)["exp"].as_u64().unwrap());

    // Exchanged again downstream: the chain grows, the current actor outermost.
    let (status, again) = exchange(
        &issuer,
        SERVICE,
        &[
            ("subject_token", body["access_token"].as_str().unwrap()),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, 200, "{again}");
    let claims = decode_part(again["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        claims["act"],
        json!({"sub": "my-service", "act": {"sub": "my-service"}})
    );
}

#[tokio::test]
async fn an_exchange_is_refused_for_what_the_subject_token_does_not_allow() {
    let issuer = issuer().await;
    let token = subject(&issuer, json!({}));
    let refused = |form: Vec<(&'static str, String)>| {
        let issuer = &issuer;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            exchange(issuer, SERVICE, &form).await
        }
    };
    let base = |token: &str| {
        vec![
            ("subject_token", token.to_owned()),
            ("subject_token_type", ACCESS_TOKEN.to_owned()),
        ]
    };

    // Not this issuer's token, expired, or of a type not accepted: invalid_request.
    let foreign = mock_issuer::start(IssuerConfig::new(TokenProfile::Cognito))
        .await
        .unwrap();
    let (status, body) = refused(base(&subject(&foreign, json!({})))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = refused(base(&subject(&issuer, json!({"exp": 1_000})))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let mut wrong_type = base(&token);
    wrong_type[1].1 = "urn:ietf:params:oauth:token-type:refresh_token".into();
    let (status, body) = refused(wrong_type).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // A scope the subject was not granted, an unknown audience.
    let mut wider = base(&token);
    wider.push(("scope", "MyService/weather_write".into()));
    let (status, body) = refused(wider).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let mut elsewhere = base(&token);
    elsewhere.push(("audience", "https://evil.example".into()));
    let (status, body) = refused(elsewhere).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    // may_act names someone else.
    let (status, body) = refused(base(&subject(
        &issuer,
        json!({"may_act": {"sub": "other"}}),
    )))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, _) = refused(base(&subject(
        &issuer,
        json!({"may_act": {"sub": "my-service"}}),
    )))
    .await;
    assert_eq!(status, 200);
    // A chain already 8 deep cannot grow.
    let mut act = json!({"sub": "svc-8"});
    for level in (1..8).rev() {
        act = json!({"sub": format!("svc-{level}"), "act": act});
    }
    let (status, body) = refused(base(&subject(&issuer, json!({"act": act})))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // A client not registered for the grant.
    let (status, body) = exchange(
        &issuer,
        ("plain", "plain-secret-0123456789"),
        &[
            ("subject_token", &token),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
}
