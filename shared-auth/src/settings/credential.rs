//! The credential settings both halves share: how a client authenticates at an issuer (a
//! secret or its file, a `private_key_jwt` key, or a platform-issued assertion file;
//! exactly one), checked with errors that name the setting. The client half's token
//! requests and the server half's introspection calls both use it, so it lives here, in
//! the base layer, and neither half imports the other for it.

use std::path::PathBuf;

use crate::endpoint_auth::{
    ClientCredential, ClientId, ClientSecret, CredentialStyle, JWT_BEARER_ASSERTION,
};
use crate::jose::{SignatureAlgorithm, SigningKey};
use crate::settings::SettingsError;

/// The `private_key_jwt` settings.
pub(crate) struct KeySettings {
    pub(crate) file: Option<PathBuf>,
    pub(crate) id: Option<String>,
    pub(crate) audience: Option<String>,
    /// The RSA algorithm, already parsed by the client's settings (its error text if it
    /// did not parse); checked here after the settings it depends on.
    pub(crate) alg: Option<Result<SignatureAlgorithm, String>>,
}

/// The mutual-TLS settings (a client's only: `None` for introspection).
pub(crate) struct CertificateSettings {
    pub(crate) file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) ca_file: Option<PathBuf>,
}

/// Exactly one credential: a secret (or its file), an assertion key, a client certificate
/// (a client's), or an assertion file.
/// The key settings belong to the key, the assertion type to the file. `client` names a
/// field as the operator knows it (the resource server's introspection credential reuses
/// this with its own names).
pub(crate) fn credential(
    client: &dyn Fn(&str) -> String,
    secret: Option<ClientSecret>,
    secret_file: Option<PathBuf>,
    key: KeySettings,
    assertion_file: Option<PathBuf>,
    assertion_type: Option<String>,
    certificate: Option<CertificateSettings>,
) -> Result<ClientCredential, SettingsError> {
    let fail = |field: &str, reason: String| SettingsError {
        setting: client(field),
        reason,
    };
    let has_certificate = certificate.as_ref().is_some_and(|c| c.file.is_some());
    let given = [
        (secret.is_some(), "client_secret"),
        (secret_file.is_some(), "client_secret_file"),
        (key.file.is_some(), "client_assertion_key_file"),
        (has_certificate, "client_certificate_file"),
        (assertion_file.is_some(), "client_assertion_file"),
    ];
    let set: Vec<&str> = given
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
    let one_of = || {
        let certificate = if certificate.is_some() {
            format!(", {}", client("client_certificate_file"))
        } else {
            String::new()
        };
        format!(
            "set exactly one of {}, {}, {}{certificate} or {}",
            client("client_secret"),
            client("client_secret_file"),
            client("client_assertion_key_file"),
            client("client_assertion_file")
        )
    };
    // The certificate's own settings first: a key file alone names what it lacks.
    if let Some(certificate) = &certificate {
        match (&certificate.file, &certificate.key_file) {
            (Some(_), None) => {
                return Err(fail(
                    "client_certificate_key_file",
                    format!("required with {}", client("client_certificate_file")),
                ));
            }
            (None, Some(_)) => {
                return Err(fail(
                    "client_certificate_key_file",
                    format!("only used with {}", client("client_certificate_file")),
                ));
            }
            _ => {}
        }
        if certificate.ca_file.is_some() && certificate.file.is_none() {
            return Err(fail(
                "client_certificate_ca_file",
                format!("only used with {}", client("client_certificate_file")),
            ));
        }
    }
    match set.as_slice() {
        [] => return Err(fail("client_secret", one_of())),
        [_] => {}
        [_, second, ..] => return Err(fail(second, format!("{}; more than one is set", one_of()))),
    }
    if key.file.is_none() {
        for (set, field) in [
            (key.id.is_some(), "client_assertion_key_id"),
            (key.audience.is_some(), "client_assertion_audience"),
            (key.alg.is_some(), "client_assertion_alg"),
        ] {
            if set {
                return Err(fail(
                    field,
                    format!("only used with {}", client("client_assertion_key_file")),
                ));
            }
        }
    }
    if let Some(CertificateSettings {
        file: Some(file),
        key_file: Some(key_file),
        ca_file,
    }) = certificate
    {
        let mut files = crate::endpoint_auth::ClientCertificateFiles::new(file, key_file);
        if let Some(ca) = ca_file {
            files = files.with_ca(ca);
        }
        // Read once now, so that a wrong path or a broken file stops the start; read again
        // for every token request, since certificates rotate.
        files
            .http(std::time::Duration::from_secs(10))
            .map_err(|reason| fail("client_certificate_file", reason))?;
        return Ok(ClientCredential::TlsClientCertificate(files));
    }
    if assertion_type.is_some() && assertion_file.is_none() {
        return Err(fail(
            "client_assertion_type",
            format!("only used with {}", client("client_assertion_file")),
        ));
    }
    if let Some(path) = key.file {
        let alg = key
            .alg
            .transpose()
            .map_err(|e| fail("client_assertion_alg", e))?;
        let mut signing = SigningKey::from_file(&path, alg)
            .map_err(|e| fail("client_assertion_key_file", e.to_string()))?;
        if let Some(alg) = alg
            && signing.algorithm() != alg
        {
            return Err(fail(
                "client_assertion_alg",
                format!(
                    "{alg:?} does not fit the key, which is {:?}",
                    signing.algorithm()
                ),
            ));
        }
        if let Some(id) = key.id {
            signing = signing.with_key_id(id);
        }
        return Ok(ClientCredential::PrivateKeyJwt {
            key: signing,
            audience: key.audience,
            explicit_typ: false,
        });
    }
    if let Some(path) = assertion_file {
        // Read once now so that a wrong path or an unreadable file stops the start; read
        // again for every token request, since the platform rotates it.
        crate::endpoint_auth::read_capped(&path).map_err(|reason| {
            fail(
                "client_assertion_file",
                format!("{} {reason}", path.display()),
            )
        })?;
        return Ok(ClientCredential::AssertionFile {
            path,
            assertion_type: assertion_type.unwrap_or_else(|| JWT_BEARER_ASSERTION.to_owned()),
        });
    }
    let secret = match (secret, secret_file) {
        (Some(s), _) => s,
        (None, Some(path)) => ClientSecret::new(
            std::fs::read_to_string(&path)
                .map_err(|e| {
                    fail(
                        "client_secret_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?
                .trim_end_matches(['\r', '\n']),
        ),
        (None, None) => return Err(fail("client_secret", one_of())),
    };
    if secret.expose().is_empty() {
        return Err(fail("client_secret", "the client secret is empty".into()));
    }
    Ok(ClientCredential::Secret(secret))
}

/// The resource server's introspection client: its id, its credential (as [`credential`]
/// checks it; no key id, audience or algorithm settings), and HTTP Basic unless
/// `secret_post`. `name` turns a credential field (`client_secret`, ...) into the setting's
/// name.
#[allow(clippy::too_many_arguments)] // one argument per setting, named at the call
pub(crate) fn introspection_client(
    name: &dyn Fn(&str) -> String,
    client_id: String,
    secret: Option<&str>,
    secret_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    assertion_file: Option<PathBuf>,
    secret_post: bool,
) -> Result<(ClientId, ClientCredential, CredentialStyle), SettingsError> {
    let credential = credential(
        name,
        secret.filter(|s| !s.is_empty()).map(ClientSecret::new),
        secret_file,
        KeySettings {
            file: key_file,
            id: None,
            audience: None,
            alg: None,
        },
        assertion_file,
        None,
        None,
    )?;
    let style = if secret_post {
        CredentialStyle::PostBody
    } else {
        CredentialStyle::BasicHeader
    };
    Ok((ClientId::new(client_id), credential, style))
}
