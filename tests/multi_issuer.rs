//! One my-service trusting two issuers at once (a migration: an RFC 9068 issuer and a
//! Cognito-style one, both live), configured the way an operator does it: the main issuer
//! in `AUTH_*` settings and the second in an issuers file (`AUTH_ISSUERS_FILE`).
//!
//! Each issuer's tokens pass under that issuer's own profile; a token that names issuer A
//! but is signed with issuer B's key is refused; a token that names no trusted issuer is
//! refused without any request to either issuer; and the metrics carry the issuer. Its own
//! test binary: the Prometheus recorder is global to the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser as _;
use mock_issuer::TokenProfile as IssuerProfile;
use reqwest::StatusCode;
use serde_json::json;
use system_tests::*;

async fn call(service: &TestServer, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/weatherforecast", service.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// How many times the issuer's JWKS and discovery document were fetched.
fn fetches(issuer: &mock_issuer::IssuerHandle) -> (u64, u64) {
    let stats = issuer.stats();
    (stats.jwks_fetches, stats.discovery_fetches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_issuers_each_under_its_own_profile_and_keys() {
    let cognito = start_issuer(IssuerProfile::Cognito).await;
    let rfc9068 = start_issuer(IssuerProfile::Rfc9068).await;

    // The operator's way in: the RFC 9068 issuer in AUTH_* flags, Cognito in the file.
    let file = TempFile::new("issuers.toml");
    file.write(&format!(
        "[[issuer]]\nauthority = \"{}\"\ntoken_profile = \"cognito\"\nallowed_client_ids = [\"{BFF_ID}\"]\n\
         scope_aliases = {{ \"legacy.read\" = \"{READ}\" }}\n",
        cognito.issuer()
    ));
    let args = my_service::config::Args::try_parse_from([
        "my-service",
        "--dpop",
        "off",
        "--authority",
        rfc9068.issuer(),
        "--token-profile",
        "rfc9068",
        "--audience",
        "MyService",
        "--issuers-file",
        file.path(),
    ])
    .unwrap();
    let config = args.into_config().unwrap();
    assert_eq!(config.validator.additional_issuers.len(), 1);
    let service = serve(my_service::build(&config).await.unwrap()).await;

    // 1. Each issuer's own token passes.
    let from_cognito = fetch_token(&cognito, BFF_ID, BFF_SECRET, None).await;
    let from_rfc9068 = fetch_token(&rfc9068, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(call(&service, &from_cognito).await.status(), StatusCode::OK);
    assert_eq!(call(&service, &from_rfc9068).await.status(), StatusCode::OK);

    // 2. Each issuer's rules are its own: the Cognito issuer's allow-list applies to its
    //    tokens only (ADMIN is not on it; the RFC 9068 issuer has no allow-list).
    let admin_cognito = fetch_token(&cognito, ADMIN_ID, ADMIN_SECRET, Some(READ)).await;
    let admin_rfc9068 = fetch_token(&rfc9068, ADMIN_ID, ADMIN_SECRET, Some(READ)).await;
    assert_eq!(
        call(&service, &admin_cognito).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&service, &admin_rfc9068).await.status(),
        StatusCode::OK
    );
    //    ... and RFC 9068's typ and aud rules apply to the RFC 9068 issuer's tokens only: a
    //    Cognito-shaped token (no typ at+jwt, no aud) signed by the RFC 9068 issuer's key.
    let (_, mut claims) = cognito.token_template(BFF_ID, &[READ]);
    claims["iss"] = json!(rfc9068.issuer());
    let (mut header, _) = rfc9068.token_template(BFF_ID, &[READ]);
    header.as_object_mut().unwrap().remove("typ");
    let shaped_wrong = rfc9068.sign(&header, &claims).unwrap();
    let response = call(&service, &shaped_wrong).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).contains("invalid_token"));

    //    ... and so are its scope names: `legacy.read` stands for the read scope in the
    //    Cognito issuer's tokens only.
    let (header, mut claims) = cognito.token_template(BFF_ID, &[READ]);
    claims["scope"] = json!("legacy.read");
    let aliased = cognito.sign(&header, &claims).unwrap();
    assert_eq!(call(&service, &aliased).await.status(), StatusCode::OK);
    let (header, mut claims) = rfc9068.token_template(BFF_ID, &[READ]);
    claims["scope"] = json!("legacy.read");
    let not_aliased = rfc9068.sign(&header, &claims).unwrap();
    assert_eq!(
        call(&service, &not_aliased).await.status(),
        StatusCode::FORBIDDEN
    );

    // 3. Issuer A's name, issuer B's key (B's kid, B's signature): A's keys do not have
    //    it, so it is refused; B's keys are never consulted for a token that names A.
    let (header, mut claims) = rfc9068.token_template(BFF_ID, &[READ]);
    claims["iss"] = json!(cognito.issuer());
    claims["token_use"] = json!("access");
    let cross = rfc9068.sign(&header, &claims).unwrap();
    let response = call(&service, &cross).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).contains("invalid_token"));
    //    The same claims signed by A's own key pass: only the key was wrong.
    let (cognito_header, _) = cognito.token_template(BFF_ID, &[READ]);
    let genuine = cognito.sign(&cognito_header, &claims).unwrap();
    assert_eq!(call(&service, &genuine).await.status(), StatusCode::OK);

    // 4. A token naming no trusted issuer: refused with no request to either issuer, even
    //    with a kid neither has seen (which would otherwise trigger a key refresh).
    let before = (fetches(&cognito), fetches(&rfc9068));
    for (i, iss) in ["https://evil.example", "http://127.0.0.1:1/"]
        .into_iter()
        .enumerate()
    {
        // The RFC 9068 header (typ at+jwt) passes either profile's typ check, so only
        // the issuer choice stands between this token and a key lookup.
        let (mut header, mut claims) = rfc9068.token_template(BFF_ID, &[READ]);
        header["kid"] = json!(format!("never-published-{i}"));
        claims["iss"] = json!(iss);
        let token = cognito.sign(&header, &claims).unwrap();
        let response = call(&service, &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{iss}");
        assert!(challenge(&response).contains("invalid_token"));
    }
    //    An `iss` that is an array is no issuer either.
    let (header, mut claims) = cognito.token_template(BFF_ID, &[READ]);
    claims["iss"] = json!([cognito.issuer(), rfc9068.issuer()]);
    let token = cognito.sign(&header, &claims).unwrap();
    assert_eq!(
        call(&service, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        (fetches(&cognito), fetches(&rfc9068)),
        before,
        "a token from an unknown issuer caused a fetch"
    );

    // 5. An unknown kid that names a trusted issuer does refresh that issuer's keys, and
    //    only that issuer's.
    let (mut header, claims) = rfc9068.token_template(BFF_ID, &[READ]);
    header["kid"] = json!("rotated-elsewhere");
    let token = rfc9068.sign(&header, &claims).unwrap();
    assert_eq!(
        call(&service, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fetches(&cognito), before.0, "the other issuer was fetched");
    assert!(
        fetches(&rfc9068).0 > (before.1).0,
        "the named issuer's JWKS was not refreshed for an unknown kid"
    );

    // 6. The metrics carry the issuer: accepted tokens and key refreshes per issuer.
    let metrics = http()
        .get(format!("{}/metrics", service.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for issuer in [cognito.issuer(), rfc9068.issuer()] {
        let accepted = format!("issuer=\"{issuer}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("shared_auth_validations_total")
                    && l.contains("outcome=\"accepted\"")
                    && l.contains(&accepted)),
            "no accepted count for {issuer}:\n{metrics}"
        );
        assert!(
            metrics.lines().any(|l| l.starts_with("shared_auth_jwks_refreshes_total")
                && l.contains(&accepted)),
            "no JWKS refresh count for {issuer}"
        );
    }
}

#[tokio::test]
async fn an_issuers_file_error_names_the_variable_and_the_entry() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let file = TempFile::new("bad-issuers.toml");
    file.write(&format!(
        "[[issuer]]\nauthority = \"{}\"\n\n[[issuer]]\nauthority = \"https://b.example\"\ntoken_profile = \"rfc9068\"\n",
        issuer.issuer()
    ));
    let from_file = || {
        my_service::config::Args::try_parse_from([
            "my-service",
            "--issuers-file",
            file.path(),
            "--dpop",
            "off",
        ])
        .unwrap()
        .into_config()
    };
    let e = from_file().unwrap_err();
    assert_eq!(e.setting, "AUTH_ISSUERS_FILE");
    assert!(
        e.reason.contains("issuer 2") && e.reason.contains("audience"),
        "{e}"
    );

    // The file alone, with one good issuer, is a whole configuration.
    file.write(&format!(
        "[[issuer]]\nauthority = \"{}\"\n",
        issuer.issuer()
    ));
    let config = from_file().unwrap();
    assert!(config.validator.additional_issuers.is_empty());
    let service = serve(my_service::build(&config).await.unwrap()).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(call(&service, &token).await.status(), StatusCode::OK);

    // Two entries for one issuer are refused at start.
    file.write(&format!(
        "[[issuer]]\nauthority = \"{0}\"\n\n[[issuer]]\nauthority = \"{0}/\"\n",
        issuer.issuer()
    ));
    let config = from_file().unwrap();
    let e = my_service::build(&config).await.unwrap_err();
    assert!(e.to_string().contains("configured twice"), "{e}");
}

/// An additional issuer that is down at start (a migration's old issuer in an outage)
/// does not stop the service: it loads lazily unless its entry says `lazy_keys = false`,
/// and the main issuer's tokens pass meanwhile. The main issuer keeps failing fast.
#[tokio::test]
async fn an_additional_issuer_down_at_start_does_not_stop_the_service() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // An address that accepts connections and closes them: an issuer that is down.
    let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_url = format!("http://{}", down.local_addr().unwrap());
    let _refusing = tokio::spawn(async move {
        while let Ok(connection) = down.accept().await {
            drop(connection);
        }
    });
    let file = TempFile::new("down-issuers.toml");
    let config = |entry: &str| {
        file.write(&format!(
            "[[issuer]]\nauthority = \"{down_url}\"\ntoken_profile = \"generic\"\n{entry}"
        ));
        my_service::config::Args::try_parse_from([
            "my-service",
            "--dpop",
            "off",
            "--authority",
            issuer.issuer(),
            "--issuers-file",
            file.path(),
        ])
        .unwrap()
        .into_config()
        .unwrap()
    };
    let service = serve(my_service::build(&config("")).await.unwrap()).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(call(&service, &token).await.status(), StatusCode::OK);

    let e = my_service::build(&config("lazy_keys = false\n"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&down_url), "{e}");
}
