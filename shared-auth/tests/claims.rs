//! One claims-to-principal path: a JWT and an opaque (introspected) token of the same
//! issuer meet the same rules. Here the main issuer's scope aliases, which only the JWT
//! path applied before the two paths became one.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mock_issuer::{ClientConfig, IssuerConfig, TokenProfile as Profile};
use shared_auth::client::{ClientId, ClientSecret};
use shared_auth::server::{
    IntrospectionConfig, JwtValidator, MetadataSource, TokenProfile, ValidatorConfig,
};

#[tokio::test]
async fn scope_aliases_apply_to_jwts_and_introspected_tokens_alike() {
    let issuer = mock_issuer::start(
        IssuerConfig::new(Profile::Cognito)
            .with_resource_server("Api", ["read"])
            .with_client(ClientConfig::new(
                "api",
                "api-introspection-secret",
                Vec::<String>::new(),
            ))
            .with_client(ClientConfig::new(
                "svc",
                "svc-secret-0123456789",
                ["Api/read"],
            )),
    )
    .await
    .unwrap();
    let mut config = ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: Vec::new(),
        },
    );
    // The issuer spells the scope `Api/read`; the routes require `weather.read`.
    config.scope_aliases = vec![("Api/read".into(), "weather.read".into())];
    let mut introspection = IntrospectionConfig::new(
        ClientId::new("api"),
        ClientSecret::new("api-introspection-secret"),
    );
    // Cognito-style tokens carry no audience to check.
    introspection.any_audience = true;
    config.introspection = Some(introspection);
    let validator = JwtValidator::new(config).await.unwrap();

    let (header, claims) = issuer.token_template("svc", &["Api/read"]);
    let jwt = issuer.sign(&header, &claims).unwrap();
    let opaque = issuer.issue_opaque_token("svc", &["Api/read"], None);
    assert_eq!(opaque.split('.').count(), 1, "an opaque token");

    for (kind, token) in [("jwt", jwt), ("opaque", opaque)] {
        let principal = validator.validate(&token).await.unwrap();
        assert!(
            principal.has_scope("Api/read"),
            "{kind}: its own scope stays"
        );
        assert!(principal.has_scope("weather.read"), "{kind}: the alias");
        assert_eq!(principal.client_id(), "svc", "{kind}");
    }
}
