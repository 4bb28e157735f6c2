//! The client settings' unit tests.

use super::*;

fn base() -> ClientSettings {
    ClientSettings {
        token_endpoint_url: "https://issuer.example/token".parse().ok(),
        client_id: Some("bff".into()),
        ..ClientSettings::default()
    }
}

fn definition(settings: ClientSettings) -> Result<ClientDefinition, SettingsError> {
    settings.into_definition_named("AUTH_SERVER_", "AUTH_SERVER_MYBFF_")
}

fn key_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{name}-{}.pem", std::process::id()));
    let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap();
    let der = pair.to_pkcs8v1().unwrap();
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    std::fs::write(
        &path,
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    path
}

#[test]
fn exactly_one_credential_and_the_error_names_the_variables() {
    let e = definition(base()).unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_MYBFF_CLIENT_SECRET");
    assert!(
        e.reason
            .contains("AUTH_SERVER_MYBFF_CLIENT_ASSERTION_KEY_FILE")
            && e.reason.contains("AUTH_SERVER_MYBFF_CLIENT_ASSERTION_FILE"),
        "{e}"
    );
    let key = key_file("two-credentials");
    let mut two = base();
    two.client_secret = Some(ClientSecret::new("s3cret-value"));
    two.client_assertion_key_file = Some(key.clone());
    let e = definition(two).unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_KEY_FILE");
    assert!(!e.to_string().contains("s3cret-value"));

    let mut pkjwt = base();
    pkjwt.client_assertion_key_file = Some(key.clone());
    pkjwt.client_assertion_key_id = Some("k-1".into());
    pkjwt.client_assertion_audience = Some("https://issuer.example".into());
    let d = definition(pkjwt).unwrap();
    match &d.credential {
        ClientCredential::PrivateKeyJwt { key, audience, .. } => {
            assert_eq!(key.key_id(), Some("k-1"));
            assert_eq!(audience.as_deref(), Some("https://issuer.example"));
        }
        other => panic!("{other:?}"),
    }
    let mut wrong_alg = base();
    wrong_alg.client_assertion_key_file = Some(key.clone());
    wrong_alg.client_assertion_alg = Some("PS256".into());
    assert_eq!(
        definition(wrong_alg).unwrap_err().setting,
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_ALG"
    );
    std::fs::remove_file(&key).unwrap();
}

#[test]
fn a_protected_resource_is_a_token_source_with_the_issuers_trusted_with_the_secret() {
    let with = |endpoint: Option<&str>,
                authority: Option<&str>,
                resource: Option<&str>,
                trusted: &[&str]| {
        let mut s = base();
        s.client_secret = Some(ClientSecret::new("s"));
        let url = |u: Option<&str>| u.map(|u| u.parse().unwrap());
        s.token_endpoint_url = url(endpoint);
        s.authority = url(authority);
        s.protected_resource = url(resource);
        s.trusted_issuers = trusted.iter().map(|t| t.parse().unwrap()).collect();
        definition(s)
    };
    // The resource alone would hand the secret to whoever the document names.
    let e = with(None, None, Some("https://api.example/orders"), &[]).unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_PROTECTED_RESOURCE", "{e}");
    assert!(
        e.reason.contains("AUTH_SERVER_AUTHORITY")
            && e.reason.contains("AUTH_SERVER_TRUSTED_ISSUERS")
            && e.reason.contains("RFC 9728 section 7"),
        "{e}"
    );
    let d = with(
        None,
        None,
        Some("https://api.example/orders"),
        &["https://a.example", "https://b.example"],
    )
    .unwrap();
    assert_eq!(
        d.token_source,
        TokenSource::ProtectedResource {
            resource: "https://api.example/orders".into(),
            trusted_issuers: vec!["https://a.example".into(), "https://b.example".into()],
        }
    );
    let d = with(
        None,
        Some("https://issuer.example"),
        Some("https://api.example"),
        &[],
    )
    .unwrap();
    assert_eq!(
        d.token_source,
        TokenSource::ProtectedResource {
            resource: "https://api.example".into(),
            trusted_issuers: vec!["https://issuer.example".into()],
        }
    );
    let e = with(
        None,
        Some("https://issuer.example"),
        Some("https://api.example"),
        &["https://a.example"],
    )
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_TRUSTED_ISSUERS", "{e}");
    let e = with(
        Some("https://issuer.example/token"),
        None,
        None,
        &["https://a.example"],
    )
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_TRUSTED_ISSUERS", "{e}");
    let e = with(
        None,
        None,
        Some("https://api.example"),
        &["http://issuer.example"],
    )
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_TRUSTED_ISSUERS", "{e}");
    let e = with(
        Some("https://issuer.example/token"),
        None,
        Some("https://api.example"),
        &[],
    )
    .unwrap_err();
    assert!(e.reason.contains("AUTH_SERVER_PROTECTED_RESOURCE"), "{e}");
    for bad in ["http://api.example", "https://api.example/?q"] {
        let e = with(None, Some("https://issuer.example"), Some(bad), &[]).unwrap_err();
        assert_eq!(e.setting, "AUTH_SERVER_PROTECTED_RESOURCE", "{e}");
    }

    // private_key_jwt with the default audience: its assertion is bound to the server
    // it goes to, so no pin is needed.
    let key = key_file("pkjwt-resource");
    let mut pkjwt = base();
    pkjwt.token_endpoint_url = None;
    pkjwt.protected_resource = "https://api.example".parse().ok();
    pkjwt.client_assertion_key_file = Some(key.clone());
    assert!(definition(pkjwt.clone()).is_ok());
    pkjwt.client_assertion_audience = Some("https://issuer.example".into());
    assert_eq!(
        definition(pkjwt).unwrap_err().setting,
        "AUTH_SERVER_PROTECTED_RESOURCE"
    );
    std::fs::remove_file(&key).unwrap();
}

#[test]
fn key_settings_without_a_key_and_a_type_without_a_file_are_refused() {
    let mut stray = base();
    stray.client_secret = Some(ClientSecret::new("s"));
    stray.client_assertion_audience = Some("x".into());
    assert_eq!(
        definition(stray).unwrap_err().setting,
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_AUDIENCE"
    );
    let mut stray = base();
    stray.client_secret = Some(ClientSecret::new("s"));
    stray.client_assertion_type = Some("x".into());
    assert_eq!(
        definition(stray).unwrap_err().setting,
        "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_TYPE"
    );
    let mut missing = base();
    missing.client_assertion_file = Some("/nonexistent/token".into());
    let e = definition(missing).unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_MYBFF_CLIENT_ASSERTION_FILE");
    assert!(e.reason.contains("/nonexistent/token"), "{e}");
}

#[test]
fn an_assertion_file_keeps_its_path_and_type() {
    let path = std::env::temp_dir().join(format!("assertion-{}", std::process::id()));
    std::fs::write(&path, "a.b.c").unwrap();
    let mut file = base();
    file.client_assertion_file = Some(path.clone());
    file.client_assertion_type =
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-spiffe".into());
    let d = definition(file).unwrap();
    std::fs::remove_file(&path).unwrap();
    match d.credential {
        ClientCredential::AssertionFile {
            path: p,
            assertion_type,
        } => {
            assert_eq!(p, path);
            assert!(assertion_type.ends_with("jwt-spiffe"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dpop_key_is_generated_or_read_and_a_bad_one_is_named() {
    let mut generated = base();
    generated.client_secret = Some(ClientSecret::new("s"));
    generated.dpop_key_file = Some("generate".into());
    assert!(definition(generated).unwrap().dpop.is_some());
    let mut bad = base();
    bad.client_secret = Some(ClientSecret::new("s"));
    bad.dpop_key_file = Some("/nonexistent/dpop.pem".into());
    assert_eq!(
        definition(bad).unwrap_err().setting,
        "AUTH_SERVER_MYBFF_DPOP_KEY_FILE"
    );
    let key = key_file("dpop-key");
    let mut from_file = base();
    from_file.client_secret = Some(ClientSecret::new("s"));
    from_file.dpop_key_file = Some(key.to_string_lossy().into_owned());
    assert!(definition(from_file).unwrap().dpop.is_some());
    std::fs::remove_file(&key).unwrap();
}

#[test]
fn a_client_certificate_needs_its_key_and_readable_files() {
    let with = |edit: fn(&mut ClientSettings)| {
        let mut settings = base();
        edit(&mut settings);
        definition(settings)
    };
    let e = with(|s| s.client_certificate_file = Some("/nonexistent/cert.pem".into())).unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_MYBFF_CLIENT_CERTIFICATE_KEY_FILE");
    let e =
        with(|s| s.client_certificate_key_file = Some("/nonexistent/key.pem".into())).unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_MYBFF_CLIENT_CERTIFICATE_KEY_FILE");
    let e = with(|s| {
        s.client_certificate_file = Some("/nonexistent/cert.pem".into());
        s.client_certificate_key_file = Some("/nonexistent/key.pem".into());
    })
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_MYBFF_CLIENT_CERTIFICATE_FILE");
    assert!(e.reason.contains("/nonexistent/cert.pem"), "{e}");
    let e = with(|s| {
        s.client_secret = Some(ClientSecret::new("a-secret"));
        s.client_certificate_file = Some("/nonexistent/cert.pem".into());
        s.client_certificate_key_file = Some("/nonexistent/key.pem".into());
    })
    .unwrap_err();
    assert!(e.reason.contains("more than one"), "{e}");
    let e = with(|s| {
        s.client_secret = Some(ClientSecret::new("a-secret"));
        s.client_certificate_ca_file = Some("/nonexistent/ca.pem".into());
    })
    .unwrap_err();
    assert_eq!(e.setting, "AUTH_SERVER_MYBFF_CLIENT_CERTIFICATE_CA_FILE");
    // The unset credential's message lists the certificate too.
    let e = definition(base()).unwrap_err();
    assert!(
        e.reason
            .contains("AUTH_SERVER_MYBFF_CLIENT_CERTIFICATE_FILE"),
        "{e}"
    );
}
