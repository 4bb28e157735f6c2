//! RFC 8693 token exchange at the mock issuer, over HTTP: a service trades the token it
//! received for one meant for another API, issued to it on behalf of the subject, with
//! the delegation chain in nested `act` claims; and everything it must refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile};
use serde_json::{Value, json};
use test_support::decode_part;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const TXN_TOKEN: &str = "urn:ietf:params:oauth:token-type:txn_token";
const TRUST_DOMAIN: &str = "https://trust.example";

async fn issuer() -> IssuerHandle {
    mock_issuer::start(
        IssuerConfig::new(TokenProfile::Cognito)
            .with_resource_server("MyService", ["weather_read", "weather_write"])
            .with_resource_server("Downstream", ["read"])
            .with_trust_domain(TRUST_DOMAIN)
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

#[tokio::test]
async fn the_transaction_token_service_issues_a_txn_token_for_the_trust_domain() {
    let issuer = issuer().await;
    let token = subject(&issuer, json!({}));
    let form = |audience: &'static str| {
        vec![
            ("subject_token", token.clone()),
            ("subject_token_type", ACCESS_TOKEN.to_owned()),
            ("requested_token_type", TXN_TOKEN.to_owned()),
            ("audience", audience.to_owned()),
            ("scope", "MyService/weather_read".to_owned()),
            ("request_context", r#"{"req_ip":"198.51.100.7"}"#.to_owned()),
            ("request_details", r#"{"action":"forecast"}"#.to_owned()),
        ]
    };
    let send = |form: Vec<(&'static str, String)>| {
        let issuer = &issuer;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            exchange(issuer, SERVICE, &form).await
        }
    };
    let (status, body) = send(form(TRUST_DOMAIN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], TXN_TOKEN);
    assert_eq!(body["token_type"], "N_A");
    assert!(body.get("refresh_token").is_none());
    assert!(body["expires_in"].as_u64().unwrap() <= 60);
    let txn_token = body["access_token"].as_str().unwrap();
    assert_eq!(decode_part(txn_token, 0)["typ"], "txntoken+jwt");
    let claims = decode_part(txn_token, 1);
    assert_eq!(claims["aud"], TRUST_DOMAIN);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], "MyService/weather_read");
    assert_eq!(claims["req_wl"], "my-service");
    assert_eq!(claims["rctx"], json!({"req_ip": "198.51.100.7"}));
    assert_eq!(claims["tctx"], json!({"action": "forecast"}));
    let txn = claims["txn"].as_str().unwrap().to_owned();
    assert!(!txn.is_empty());
    // Each call is a transaction of its own.
    let (_, again) = send(form(TRUST_DOMAIN)).await;
    assert_ne!(
        decode_part(again["access_token"].as_str().unwrap(), 1)["txn"],
        json!(txn)
    );

    // Another audience than the trust domain; no audience; a context that is not an
    // object; a subject that is not this issuer's.
    let (status, body) = send(form("https://other-domain.example")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let mut no_audience = form(TRUST_DOMAIN);
    no_audience.retain(|(k, _)| *k != "audience");
    let (status, body) = send(no_audience).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let mut bad_context = form(TRUST_DOMAIN);
    bad_context[5].1 = "[1,2]".into();
    let (status, body) = send(bad_context).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // A Transaction Token is no subject token: it would leave its trust domain as an access
    // token, or mint another transaction.
    for requested in [ACCESS_TOKEN, TXN_TOKEN] {
        let mut reused = form(TRUST_DOMAIN);
        reused[0].1 = txn_token.to_owned();
        reused[2].1 = requested.to_owned();
        if requested == ACCESS_TOKEN {
            reused.retain(|(k, _)| !["audience", "request_context", "request_details"].contains(k));
        }
        let (status, body) = send(reused).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    // Nor is an ID token (no token_use: access).
    let mut id_token = form(TRUST_DOMAIN);
    id_token[0].1 = issuer
        .sign_claims(
            &json!({"iss": issuer.issuer(), "sub": "alice", "aud": "my-bff",
            "exp": decode_part(&token, 1)["exp"], "iat": decode_part(&token, 1)["iat"]}),
        )
        .unwrap();
    let (status, body) = send(id_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let foreign = mock_issuer::start(IssuerConfig::new(TokenProfile::Cognito))
        .await
        .unwrap();
    let mut foreign_subject = form(TRUST_DOMAIN);
    foreign_subject[0].1 = subject(&foreign, json!({}));
    let (status, body) = send(foreign_subject).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}
