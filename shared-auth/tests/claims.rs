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

/// RFC 8693 delegation on the resource server: a token issued to a service acting for a
/// user names the chain of actors in nested `act` claims. The principal shows the chain,
/// the current actor first; `may_act` is checked against the current actor; a malformed
/// chain, or one deeper than 8, refuses the token.
#[tokio::test]
async fn the_delegation_chain_is_read_bounded_and_checked_against_may_act() {
    use serde_json::json;
    let issuer = test_support::start_issuer(Profile::Cognito).await;
    let validator = JwtValidator::new(ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: Vec::new(),
        },
    ))
    .await
    .unwrap();
    let token = |act: Option<serde_json::Value>, may_act: Option<serde_json::Value>| {
        test_support::forge(&issuer, &[test_support::READ], |_, claims| {
            claims["sub"] = json!("alice");
            if let Some(act) = act {
                claims["act"] = act;
            }
            if let Some(may_act) = may_act {
                claims["may_act"] = may_act;
            }
        })
    };

    let own = validator.validate(&token(None, None)).await.unwrap();
    assert!(own.actors().is_empty() && own.actor().is_none());
    assert_eq!(own.actor_allowed_by_may_act(), None);

    let chain = json!({"sub": "my-service", "act": {"sub": "my-bff"}});
    let delegated = validator
        .validate(&token(
            Some(chain.clone()),
            Some(json!({"sub": "my-service"})),
        ))
        .await
        .unwrap();
    assert_eq!(delegated.subject(), Some("alice"));
    assert_eq!(delegated.actors(), ["my-service", "my-bff"]);
    assert_eq!(delegated.actor(), Some("my-service"));
    assert_eq!(delegated.actor_allowed_by_may_act(), Some(true));
    let other = validator
        .validate(&token(Some(chain), Some(json!({"sub": "someone-else"}))))
        .await
        .unwrap();
    assert_eq!(other.actor_allowed_by_may_act(), Some(false));

    // Eight deep is accepted, nine is not; a chain link without a string `sub`, or an
    // `act` that is not an object, refuses the token.
    let nested = |depth: usize| {
        let mut act = json!({"sub": format!("svc-{depth}")});
        for level in (1..depth).rev() {
            act = json!({"sub": format!("svc-{level}"), "act": act});
        }
        act
    };
    let eight = validator
        .validate(&token(Some(nested(8)), None))
        .await
        .unwrap();
    assert_eq!(eight.actors().len(), 8);
    assert_eq!(eight.actors()[7], "svc-8");
    for bad in [
        nested(9),
        json!("my-service"),
        json!({"client_id": "my-service"}),
        json!({"sub": ""}),
        json!({"sub": "a", "act": "b"}),
        json!({"sub": 5}),
    ] {
        assert!(
            validator
                .validate(&token(Some(bad.clone()), None))
                .await
                .is_err(),
            "{bad}"
        );
    }
    assert!(
        validator
            .validate(&token(None, Some(json!("my-service"))))
            .await
            .is_err()
    );
}
