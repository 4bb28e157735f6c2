//! The validator settings' unit tests.

use super::*;

fn url(text: &str) -> Option<HttpUrl> {
    Some(text.parse().unwrap())
}

fn settings(edit: impl FnOnce(&mut ValidatorSettings)) -> ValidatorSettings {
    let mut s = ValidatorSettings {
        authority: url("https://issuer.example"),
        // DPoP is on by default in the settings: it needs the API's URL.
        public_base_url: url("https://api.example"),
        ..ValidatorSettings::default()
    };
    edit(&mut s);
    s
}

#[test]
fn introspection_settings_are_checked_and_name_the_variable() {
    let on = |edit: fn(&mut ValidatorSettings)| {
        settings(|s| {
            s.introspection = true;
            s.token_profile = ProfileName::Generic;
            s.audience = Some("MyService".into());
            s.introspection_client_id = Some("my-service".into());
            s.introspection_client_secret = Some(SecretValue::new("a-long-secret"));
            edit(s);
        })
        .into_config_named("AUTH_")
    };
    let config = on(|_| {}).unwrap();
    let introspection = config.introspection.unwrap();
    assert_eq!(introspection.client_id.as_str(), "my-service");
    assert_eq!(introspection.max_cache, Duration::from_secs(300));
    assert_eq!(introspection.negative_cache, Duration::from_secs(10));
    assert!(introspection.endpoint.is_none(), "discovered");
    let e = on(|s| s.introspection_client_id = None).unwrap_err();
    assert_eq!(e.setting, "AUTH_INTROSPECTION_CLIENT_ID");
    let e = on(|s| s.introspection_client_secret = None).unwrap_err();
    assert_eq!(e.setting, "AUTH_INTROSPECTION_CLIENT_SECRET");
    assert!(!e.to_string().contains("a-long-secret"));
    let e = on(|s| s.introspection_endpoint = url("http://issuer.example/i")).unwrap_err();
    assert_eq!(e.setting, "AUTH_INTROSPECTION_ENDPOINT");
    let e = on(|s| s.introspection_cache_secs = 0).unwrap_err();
    assert_eq!(e.setting, "AUTH_INTROSPECTION_CACHE_SECS");
    // Without an audience, any API's opaque token would pass: an explicit choice only.
    let e = on(|s| s.audience = None).unwrap_err();
    assert_eq!(e.setting, "AUTH_INTROSPECTION");
    assert!(
        e.reason.contains("AUTH_AUDIENCE")
            && e.reason.contains("AUTH_INTROSPECTION_ANY_AUDIENCE=true"),
        "{e}"
    );
    let config = on(|s| {
        s.token_profile = ProfileName::Cognito;
        s.audience = None;
        s.introspection_any_audience = true;
    })
    .unwrap();
    assert!(config.introspection.unwrap().any_audience);
    // Off: nothing is read, nothing is required.
    let config = settings(|s| s.introspection_client_id = None)
        .into_config_named("AUTH_")
        .unwrap();
    assert!(config.introspection.is_none());
}

#[test]
fn errors_name_the_setting_under_the_services_prefix() {
    let e = settings(|s| {
        s.token_profile = ProfileName::Rfc9068;
    })
    .into_config_named("ORDERS_AUTH_")
    .unwrap_err();
    assert_eq!(e.setting, "ORDERS_AUTH_AUDIENCE");
    assert!(
        e.reason.contains("ORDERS_AUTH_TOKEN_PROFILE=rfc9068"),
        "{e}"
    );
    let e = settings(|s| s.authority = url("http://issuer.example"))
        .into_config_named("AUTH_")
        .unwrap_err();
    assert_eq!(e.setting, "AUTH_AUTHORITY");
    assert!(e.reason.contains("AUTH_ALLOW_INSECURE_HTTP=true"), "{e}");
    // Without a prefix (a configuration file), the field name.
    let e = settings(|s| s.audience = Some("api".into()))
        .into_config_named("")
        .unwrap_err();
    assert_eq!(e.setting, "audience");
    let e = ValidatorSettings::default()
        .into_config_named("")
        .unwrap_err();
    assert_eq!(e.setting, "authority");
}

#[test]
fn dpop_on_needs_the_apis_url_never_the_callers_host() {
    let e = settings(|s| s.public_base_url = None)
        .into_config_named("AUTH_")
        .unwrap_err();
    assert_eq!(e.setting, "AUTH_DPOP");
    assert!(
        e.reason.contains("AUTH_PUBLIC_BASE_URL")
            && e.reason.contains("AUTH_RESOURCE")
            && e.reason.contains("AUTH_DPOP=off"),
        "{e}"
    );
    let off = settings(|s| {
        s.public_base_url = None;
        s.dpop = DpopMode::Off;
    });
    assert!(off.into_config_named("AUTH_").is_ok());
    let by_resource = settings(|s| {
        s.public_base_url = None;
        s.resource = url("https://api.example/orders");
    });
    let config = by_resource.into_config_named("AUTH_").unwrap();
    assert!(
        config.dpop.public_base_url.is_none(),
        "the resource's origin, at start"
    );
}

#[test]
fn good_settings_make_the_validator_config() {
    let config = settings(|s| {
        s.token_profile = ProfileName::Generic;
        s.audience = Some("api".into());
        s.clock_skew_secs = 5;
        s.lazy_keys = true;
    })
    .into_config_named("AUTH_")
    .unwrap();
    assert_eq!(
        config.metadata,
        MetadataSource::Authority("https://issuer.example".into())
    );
    assert_eq!(
        config.profile,
        TokenProfile::Generic {
            audience: Some("api".into())
        }
    );
    assert_eq!(config.leeway, Duration::from_secs(5));
    assert!(config.lazy);
}

#[test]
fn the_protected_resource_settings_are_checked_and_name_the_variable() {
    assert!(
        settings(|_| {})
            .into_config_named("AUTH_")
            .unwrap()
            .resource
            .is_none()
    );
    let config = settings(|s| {
        s.resource = url("https://api.example/orders");
        s.scopes_supported = vec!["orders/read".into(), " orders/write ".into()];
    })
    .into_config_named("AUTH_")
    .unwrap();
    assert_eq!(
        config.resource,
        Some(
            ProtectedResource::new("https://api.example/orders")
                .with_scopes(["orders/read", "orders/write"])
        )
    );
    for (edit, variable) in [
        (
            Box::new(|s: &mut ValidatorSettings| s.resource = url("http://api.example"))
                as Box<dyn Fn(&mut ValidatorSettings)>,
            "AUTH_RESOURCE",
        ),
        (
            Box::new(|s: &mut ValidatorSettings| s.resource = url("https://api.example/?x=1")),
            "AUTH_RESOURCE",
        ),
        (
            Box::new(|s: &mut ValidatorSettings| s.scopes_supported = vec!["a".into()]),
            "AUTH_SCOPES_SUPPORTED",
        ),
        (
            Box::new(|s: &mut ValidatorSettings| {
                s.resource = url("https://api.example");
                s.scopes_supported = vec!["a\"b".into()];
            }),
            "AUTH_SCOPES_SUPPORTED",
        ),
    ] {
        let e = settings(|s| edit(s))
            .into_config_named("AUTH_")
            .unwrap_err();
        assert_eq!(e.setting, variable, "{e}");
    }
}

#[test]
fn dpop_settings_are_checked_and_errors_name_the_variable() {
    let config = settings(|_| {}).into_config_named("AUTH_").unwrap();
    assert_eq!(config.dpop.mode, DpopMode::Allowed, "allowed by default");
    assert!(!config.dpop.nonces);
    let config = settings(|s| {
        s.dpop = DpopMode::Required;
        s.dpop_algs = vec!["ES256 EdDSA".into()];
        s.dpop_proof_max_age_secs = 30;
        s.dpop_nonce = true;
        s.dpop_nonce_secret = Some(SecretValue::new("x".repeat(32)));
        s.public_base_url = url("https://api.example.com/orders");
    })
    .into_config_named("AUTH_")
    .unwrap();
    assert_eq!(config.dpop.mode, DpopMode::Required);
    assert_eq!(
        config.dpop.algorithms,
        [SignatureAlgorithm::ES256, SignatureAlgorithm::EdDSA]
    );
    assert_eq!(config.dpop.max_age, Duration::from_secs(30));
    assert!(config.dpop.nonces && config.dpop.nonce_secret.is_some());
    for (edit, variable) in [
        (
            Box::new(|s: &mut ValidatorSettings| s.dpop_algs = vec!["ES256 HS256".into()])
                as Box<dyn Fn(&mut ValidatorSettings)>,
            "AUTH_DPOP_ALGS",
        ),
        (
            Box::new(|s: &mut ValidatorSettings| s.dpop_algs = vec!["none".into()]),
            "AUTH_DPOP_ALGS",
        ),
        (
            Box::new(|s: &mut ValidatorSettings| s.dpop_proof_max_age_secs = 0),
            "AUTH_DPOP_PROOF_MAX_AGE_SECS",
        ),
        (
            Box::new(|s: &mut ValidatorSettings| s.public_base_url = url("https://x.example/?q=1")),
            "AUTH_PUBLIC_BASE_URL",
        ),
        (
            Box::new(|s: &mut ValidatorSettings| {
                s.dpop_nonce_secret = Some(SecretValue::new("short-secret-value"))
            }),
            "AUTH_DPOP_NONCE_SECRET",
        ),
    ] {
        let mut s = settings(|_| {});
        edit(&mut s);
        let e = s.into_config_named("AUTH_").unwrap_err();
        assert_eq!(e.setting, variable, "{e}");
        assert!(!e.to_string().contains("short-secret-value"), "{e}");
    }
}

#[test]
fn the_replay_store_bounds_are_settings() {
    let config = settings(|s| {
        s.dpop_replay_capacity = 500;
        s.dpop_replay_per_key = 50;
    })
    .into_config_named("AUTH_")
    .unwrap();
    assert!(matches!(
        config.dpop.replay_store,
        crate::server::ReplayStoreConfig::InMemory {
            capacity: 500,
            per_key: 50
        }
    ));
    for (capacity, per_key, variable) in [
        (0, 1, "AUTH_DPOP_REPLAY_CAPACITY"),
        (10, 0, "AUTH_DPOP_REPLAY_PER_KEY"),
        (10, 11, "AUTH_DPOP_REPLAY_PER_KEY"),
    ] {
        let e = settings(|s| {
            s.dpop_replay_capacity = capacity;
            s.dpop_replay_per_key = per_key;
        })
        .into_config_named("AUTH_")
        .unwrap_err();
        assert_eq!(e.setting, variable, "{e}");
    }
}

#[cfg(feature = "serde")]
#[test]
fn settings_deserialize_from_a_configuration_file() {
    let parsed: ValidatorSettings = serde_json::from_str(
        r#"{"metadata_address": "https://as.example/meta.json", "issuer": "https://as.example",
            "token_profile": "rfc9068", "audience": "api", "resource": "https://api.example"}"#,
    )
    .unwrap();
    assert_eq!(parsed.token_profile, ProfileName::Rfc9068);
    assert_eq!(parsed.clock_skew_secs, 60, "defaults fill the rest");
    assert!(parsed.into_config_named("").is_ok());
    assert!(serde_json::from_str::<ValidatorSettings>(r#"{"authorty": "x"}"#).is_err());
}

#[test]
fn an_issuers_file_adds_issuers_with_their_own_profiles() {
    let path = std::env::temp_dir().join(format!("issuers-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[issuer]]\nauthority = \"https://b.example\"\ntoken_profile = \"rfc9068\"\n\
         audience = \"api\"\n\n[[issuer]]\njwks_uri = \"https://c.example/jwks\"\n\
         issuer = \"https://c.example\"\nallowed_client_ids = [\"bff\"]\n",
    )
    .unwrap();
    let file = path.to_str().unwrap().to_owned();
    let config = settings(|s| s.issuers_file = Some(file.clone()))
        .into_config_named("AUTH_")
        .unwrap();
    assert_eq!(
        config.metadata,
        MetadataSource::Authority("https://issuer.example".into())
    );
    let more = &config.additional_issuers;
    assert_eq!(more.len(), 2);
    assert_eq!(
        more[0].profile,
        TokenProfile::Rfc9068 {
            audience: "api".into()
        }
    );
    assert_eq!(
        more[1].profile,
        TokenProfile::Cognito {
            allowed_client_ids: vec!["bff".into()]
        }
    );
    // Alone, the file's first issuer is the main one.
    let config = ValidatorSettings {
        issuers_file: Some(file.clone()),
        dpop: DpopMode::Off,
        ..ValidatorSettings::default()
    }
    .into_config_named("AUTH_")
    .unwrap();
    assert_eq!(
        config.metadata,
        MetadataSource::Authority("https://b.example".into())
    );
    assert_eq!(config.additional_issuers.len(), 1);
    // Errors name the variable and the entry; an unknown field is one.
    std::fs::write(&path, "[[issuer]]\nauthorty = \"https://b.example\"\n").unwrap();
    let e = settings(|s| s.issuers_file = Some(file.clone()))
        .into_config_named("AUTH_")
        .unwrap_err();
    assert_eq!(e.setting, "AUTH_ISSUERS_FILE");
    assert!(e.reason.contains("authorty"), "{e}");
    std::fs::write(&path, "[[issuer]]\nauthority = \"http://b.example\"\n").unwrap();
    let e = settings(|s| s.issuers_file = Some(file.clone()))
        .into_config_named("AUTH_")
        .unwrap_err();
    assert_eq!(e.setting, "AUTH_ISSUERS_FILE");
    assert!(
        e.reason.starts_with("issuer 1, authority:")
            && e.reason.contains("AUTH_ALLOW_INSECURE_HTTP"),
        "{e}"
    );
    let _ = std::fs::remove_file(&path);
    let e = settings(|s| s.issuers_file = Some(file))
        .into_config_named("AUTH_")
        .unwrap_err();
    assert!(e.reason.contains("cannot read"), "{e}");
}

#[test]
fn start_errors_name_the_setting_under_the_services_prefix() {
    let path = std::env::temp_dir().join(format!("start-issuers-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[issuer]]\nauthority = \"https://b.example\"\n\n\
         [[issuer]]\nmetadata_address = \"https://c.example/.well-known/openid-configuration\"\n",
    )
    .unwrap();
    let file = path.to_str().unwrap().to_owned();
    let discovery = |url: &str| StartError::Discovery {
        url: url.into(),
        reason: "connection refused".into(),
    };
    let unusable = StartError::UnusableEndpoint {
        url: "https://c.example/.well-known/openid-configuration".into(),
        field: "jwks_uri",
        reason: "plain http is refused".into(),
    };
    // The error's own text names no variable: the prefix is the service's to choose.
    assert!(!unusable.to_string().contains("AUTH_"), "{unusable}");
    assert!(!discovery("https://x").to_string().contains("AUTH_"));

    let s = settings(|s| s.issuers_file = Some(file.clone()));
    let config = s.clone().into_config_named("ORDERS_AUTH_").unwrap();
    let explain = |e: &StartError| s.explain_start_error("ORDERS_AUTH_", &config, e);
    let e = explain(&discovery(
        "https://issuer.example/.well-known/openid-configuration",
    ));
    assert!(e.starts_with("ORDERS_AUTH_AUTHORITY: cannot read"), "{e}");
    let e = explain(&discovery(
        "https://b.example/.well-known/openid-configuration",
    ));
    assert!(
        e.starts_with("ORDERS_AUTH_ISSUERS_FILE: issuer 1, authority: cannot read"),
        "{e}"
    );
    let e = explain(&unusable);
    assert!(
        e.starts_with("ORDERS_AUTH_ISSUERS_FILE: issuer 2, metadata_address: ")
            && e.ends_with(
                "(ORDERS_AUTH_ALLOW_INSECURE_HTTP=true allows plain http on a test network)"
            ),
        "{e}"
    );
    // The file alone: its first issuer is the main one, and still named as the file's.
    let s = ValidatorSettings {
        issuers_file: Some(file),
        dpop: DpopMode::Off,
        ..ValidatorSettings::default()
    };
    let config = s.clone().into_config_named("AUTH_").unwrap();
    let e = s.explain_start_error(
        "AUTH_",
        &config,
        &discovery("https://b.example/.well-known/openid-configuration"),
    );
    assert!(
        e.starts_with("AUTH_ISSUERS_FILE: issuer 1, authority: "),
        "{e}"
    );
    let _ = std::fs::remove_file(&path);
}

#[cfg(feature = "clap")]
#[test]
fn the_services_prefix_names_the_variables_and_the_help() {
    use clap::{CommandFactory, Parser};
    struct Orders;
    impl crate::settings::EnvPrefix for Orders {
        const PREFIX: &'static str = "ORDERS_AUTH_";
    }
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        auth: ValidatorArgs<Orders>,
    }
    let cmd = Args::command();
    let arg = |id: &str| cmd.get_arguments().find(|a| a.get_id() == id).unwrap();
    assert_eq!(
        arg("clock_skew_secs").get_env().unwrap(),
        "ORDERS_AUTH_CLOCK_SKEW_SECS"
    );
    let help = arg("jwks_uri").get_help().unwrap().to_string();
    assert!(help.contains("needs ORDERS_AUTH_ISSUER"), "{help}");
    let args = Args::try_parse_from([
        "svc",
        "--jwks-uri",
        "https://old.example/jwks",
        "--issuer",
        "https://old.example",
        "--token-profile",
        "generic",
        "--allowed-client-ids",
        "a,b",
        "--resource",
        "https://api.example",
    ])
    .unwrap();
    assert_eq!(args.auth.settings.allowed_client_ids, ["a", "b"]);
    assert_eq!(args.auth.settings.token_profile, ProfileName::Generic);
    assert_eq!(args.auth.settings.clock_skew_secs, 60);
    assert!(args.auth.into_config().is_ok());
    // A metadata source is required, and the error names it by its variable.
    let e = Args::try_parse_from(["svc"]).err().unwrap().to_string();
    assert!(e.contains("ORDERS_AUTH_AUTHORITY"), "{e}");
    let e = Args::try_parse_from(["svc", "--authority", "ftp://x"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("ORDERS_AUTH_AUTHORITY") && e.contains("must be an http:// or https:// URL"),
        "{e}"
    );
}

#[test]
fn transaction_token_settings_default_to_the_authority_and_name_the_variable() {
    let txn =
        |edit: fn(&mut ValidatorSettings)| settings(edit).transaction_token_config_named("AUTH_");
    assert!(
        txn(|_| {}).unwrap().is_none(),
        "off unless a trust domain is set"
    );
    let on = txn(|s| s.txn_token_trust_domain = Some("https://trust.example".into()))
        .unwrap()
        .unwrap();
    assert_eq!(on.trust_domain, "https://trust.example");
    assert_eq!(
        on.metadata,
        MetadataSource::Authority("https://issuer.example".into())
    );
    let own = txn(|s| {
        s.txn_token_trust_domain = Some("https://trust.example".into());
        s.txn_token_authority = url("https://tts.example");
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        own.metadata,
        MetadataSource::Authority("https://tts.example".into())
    );
    let e = txn(|s| s.txn_token_authority = url("https://tts.example")).unwrap_err();
    assert_eq!(e.setting, "AUTH_TXN_TOKEN_AUTHORITY");
    let e = txn(|s| {
        s.txn_token_trust_domain = Some("https://trust.example".into());
        s.authority = None;
        s.jwks_uri = url("https://issuer.example/jwks");
    })
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_TXN_TOKEN_AUTHORITY");
    let e = txn(|s| {
        s.txn_token_trust_domain = Some("https://trust.example".into());
        s.txn_token_authority = url("http://tts.example");
    })
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_TXN_TOKEN_AUTHORITY");
    assert!(e.reason.contains("AUTH_ALLOW_INSECURE_HTTP"), "{e}");
}

#[test]
fn client_certificate_settings_need_each_other_and_name_the_variable() {
    let binding = |edit: fn(&mut ValidatorSettings)| settings(edit).into_config_named("AUTH_");
    assert_eq!(
        binding(|_| {}).unwrap().certificates,
        crate::server::CertificateBinding::default()
    );
    let on = binding(|s| {
        s.client_certificate_header = Some("Client-Cert".into());
        s.client_certificate_proxies = vec!["10.0.0.7".into(), " ::1".into()];
    })
    .unwrap();
    assert_eq!(on.certificates.proxy_header.as_deref(), Some("client-cert"));
    assert_eq!(on.certificates.trusted_proxies.len(), 2);
    let e = binding(|s| s.client_certificate_header = Some("client-cert".into())).unwrap_err();
    assert_eq!(e.setting, "AUTH_CLIENT_CERTIFICATE_PROXIES");
    let e = binding(|s| s.client_certificate_proxies = vec!["10.0.0.7".into()]).unwrap_err();
    assert_eq!(e.setting, "AUTH_CLIENT_CERTIFICATE_PROXIES");
    let e = binding(|s| {
        s.client_certificate_header = Some("client-cert".into());
        s.client_certificate_proxies = vec!["proxy.internal".into()];
    })
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_CLIENT_CERTIFICATE_PROXIES");
    let e = binding(|s| {
        s.client_certificate_header = Some("bad header".into());
        s.client_certificate_proxies = vec!["10.0.0.7".into()];
    })
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_CLIENT_CERTIFICATE_HEADER");
}
