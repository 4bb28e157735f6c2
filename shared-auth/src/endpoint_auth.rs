//! Client authentication at an issuer's endpoints (RFC 6749 section 2.3, RFC 7521,
//! RFC 7523 section 2.2): who a client is and how it proves it. The base layer: the
//! client half authenticates at the token endpoint with it, the server half at the
//! introspection endpoint, and neither knows the other.
//!
//! Values are typed: a [`ClientSecret`] cannot be printed (its `Debug` is redacted and it
//! has no `Display`).
//!
//! Assertions (`private_key_jwt`, or an assertion file the platform writes) are made per
//! request, which for tokens happens only on a cache miss. An assertion file is read again
//! every time because the platform rotates it (a Kubernetes projected service-account
//! token is renewed at 80 % of its life); reading it once at start would send an expired
//! assertion an hour later.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// An OAuth 2.0 client id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Wraps a client id.
    pub fn new(id: impl Into<String>) -> Self {
        ClientId(id.into())
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client secret. Never printed: `Debug` shows `[REDACTED]`, there is no `Display`.
#[derive(Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(SecretString::from(secret.into()))
    }
    /// The secret, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([REDACTED])")
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CredentialStyle {
    /// HTTP Basic (`client_secret_basic`), id and secret form-urlencoded first (RFC 6749
    /// section 2.3.1). The default, as in Duende.
    #[default]
    BasicHeader,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    PostBody,
}

/// The assertion type of RFC 7523 section 2.2 (`client_assertion_type`).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client proves who it is at the token endpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A shared secret (`client_secret_basic` or `client_secret_post`, per the client's
    /// [`CredentialStyle`]).
    Secret(ClientSecret),
    /// `private_key_jwt` (RFC 7523 section 2.2, OpenID Connect Core section 9): a fresh
    /// assertion signed with `key` for every token request, so only on a cache miss. Claims:
    /// `iss` = `sub` = the client id, `aud`, a random `jti`, `iat`, and `exp` 60 s later.
    PrivateKeyJwt {
        /// The signing key (its `kid`, if any, goes into the header).
        key: crate::jose::SigningKey,
        /// The `aud` claim. `None`: the issuer identifier when the client knows it
        /// (built [from an authority](crate::client::ClientCredentialsClient::from_authority), as
        /// draft-ietf-oauth-rfc7523bis asks), else the token endpoint URL (which every
        /// issuer accepts under RFC 7523).
        audience: Option<String>,
        /// Adds the header `typ: client-authentication+jwt` (rfc7523bis) for issuers that
        /// check it.
        explicit_typ: bool,
    },
    /// Mutual TLS (RFC 8705 section 2, `tls_client_auth` or `self_signed_tls_client_auth`):
    /// the client presents a certificate at the token endpoint and sends only its
    /// `client_id`; issuers that support it bind the token to the certificate
    /// (`cnf.x5t#S256`). The files are read again for every token request, so a rotated
    /// certificate is used from the next one on.
    TlsClientCertificate(ClientCertificateFiles),
    /// A JWT that the platform writes and rotates (a Kubernetes projected service-account
    /// token, a SPIFFE JWT-SVID), read again for every token request and sent as it is.
    AssertionFile {
        /// The file.
        path: PathBuf,
        /// `client_assertion_type` (RFC 7523's `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` unless the issuer wants
        /// another, e.g. Keycloak's `urn:ietf:params:oauth:client-assertion-type:jwt-spiffe`).
        assertion_type: String,
    },
}

/// A client certificate and its key in PEM files, for mutual TLS at the token endpoint
/// ([`ClientCredential::TlsClientCertificate`]), and optionally the CA that signed the
/// token endpoint's own certificate (a private PKI's), trusted beside the system's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCertificateFiles {
    /// The certificate (PEM; a chain may follow it).
    pub certificate: PathBuf,
    /// Its private key (PEM, PKCS #8, SEC1 or PKCS #1). Never logged.
    pub key: PathBuf,
    /// A CA (PEM) the token endpoint's certificate may chain to.
    pub ca: Option<PathBuf>,
    /// The certificate's thumbprint when first read (the token cache key's part).
    identity: std::sync::Arc<std::sync::OnceLock<String>>,
}

/// The largest certificate, key or CA file read.
const MAX_PEM_BYTES: u64 = 64 * 1024;

impl ClientCertificateFiles {
    /// The certificate in `certificate` with the key in `key`.
    pub fn new(certificate: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        ClientCertificateFiles {
            certificate: certificate.into(),
            key: key.into(),
            ca: None,
            identity: Default::default(),
        }
    }

    /// Which certificate this is, for the token cache key: its SHA-256 thumbprint as first
    /// read (else the file's path), so replicas with their own certificates at the same
    /// path never share a bound token through a shared cache. Read once: a rotated
    /// certificate keeps the key, and a token bound to the old one is renewed after the
    /// first 401.
    pub(crate) fn identity(&self) -> &str {
        self.identity.get_or_init(|| {
            use rustls_pki_types::pem::PemObject as _;
            match rustls_pki_types::CertificateDer::from_pem_file(&self.certificate) {
                Ok(der) => {
                    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
                    format!(
                        "x5t#S256={}",
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
                    )
                }
                Err(_) => format!("file={}", self.certificate.display()),
            }
        })
    }

    /// Trusts the CA in `ca` for the token endpoint's certificate too.
    pub fn with_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.ca = Some(ca.into());
        self
    }

    /// An HTTP client (the issuer policy: no redirects, `timeout`) that presents the
    /// certificate, read from the files now. Built for each token request: token requests
    /// are rare (a cache miss), and reading the files each time is what picks up a
    /// rotated certificate without a restart.
    pub(crate) fn http(&self, timeout: std::time::Duration) -> Result<reqwest::Client, String> {
        let read = |path: &std::path::Path, what: &str| -> Result<Vec<u8>, String> {
            use std::io::Read as _;
            let file = std::fs::File::open(path)
                .map_err(|e| format!("the client {what} {} cannot be read: {e}", path.display()))?;
            let mut bytes = Vec::new();
            file.take(MAX_PEM_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("the client {what} {} cannot be read: {e}", path.display()))?;
            if bytes.len() as u64 > MAX_PEM_BYTES {
                return Err(format!(
                    "the client {what} {} is larger than 64 KiB",
                    path.display()
                ));
            }
            Ok(bytes)
        };
        let mut pem = read(&self.certificate, "certificate")?;
        pem.push(b'\n');
        pem.extend(read(&self.key, "key")?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
            format!(
                "the client certificate {} and key {} are not a PEM certificate and its key",
                self.certificate.display(),
                self.key.display()
            )
        })?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .identity(identity);
        if let Some(ca) = &self.ca {
            let roots = reqwest::Certificate::from_pem_bundle(&read(ca, "CA")?)
                .map_err(|_| format!("the CA file {} holds no PEM certificate", ca.display()))?;
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        builder
            .build()
            .map_err(|e| format!("the mutual TLS client cannot be built: {e}"))
    }
}

impl ClientCredential {
    /// Whether this credential, sent to an authorization server the client did not choose,
    /// could be replayed at the real one: a secret or a platform assertion file can (the
    /// file's `aud` names the real issuer); a `private_key_jwt` assertion whose audience is
    /// the server it is sent to cannot, unless the audience is pinned to another.
    pub(crate) fn replayable_elsewhere(&self) -> bool {
        !matches!(
            self,
            ClientCredential::PrivateKeyJwt { audience: None, .. }
                | ClientCredential::TlsClientCertificate(_)
        )
    }

    /// The HTTP client a request authenticated with this credential goes through: `shared`,
    /// or for a client certificate one that presents it, built now from its files (read
    /// off the runtime, as an assertion file is).
    pub(crate) async fn http(
        &self,
        shared: &reqwest::Client,
        timeout: std::time::Duration,
    ) -> Result<reqwest::Client, String> {
        let ClientCredential::TlsClientCertificate(files) = self else {
            return Ok(shared.clone());
        };
        let files = files.clone();
        tokio::task::spawn_blocking(move || files.http(timeout))
            .await
            .map_err(|e| e.to_string())?
    }

    /// `private_key_jwt` with the default audience and no `typ` header.
    pub fn private_key_jwt(key: crate::jose::SigningKey) -> Self {
        ClientCredential::PrivateKeyJwt {
            key,
            audience: None,
            explicit_typ: false,
        }
    }

    /// An assertion read from `path` for each request, of RFC 7523's type
    /// (`urn:ietf:params:oauth:client-assertion-type:jwt-bearer`).
    pub fn assertion_file(path: impl Into<PathBuf>) -> Self {
        ClientCredential::AssertionFile {
            path: path.into(),
            assertion_type: JWT_BEARER_ASSERTION.to_owned(),
        }
    }

    /// The kind, for logs and metrics: `secret`, `private_key_jwt`, `tls_client_auth` or
    /// `assertion_file`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientCredential::Secret(_) => "secret",
            ClientCredential::PrivateKeyJwt { .. } => "private_key_jwt",
            ClientCredential::TlsClientCertificate(_) => "tls_client_auth",
            ClientCredential::AssertionFile { .. } => "assertion_file",
        }
    }
}

impl From<ClientSecret> for ClientCredential {
    fn from(secret: ClientSecret) -> Self {
        ClientCredential::Secret(secret)
    }
}

/// Why a request could not be authenticated.
#[derive(Debug)]
pub(crate) enum AuthError {
    /// The id or secret cannot go into a header (does not happen with form-encoding).
    Unencodable,
    /// No assertion could be made: what to fix.
    Assertion(String),
}

/// Who authenticates at an endpoint, and how.
pub(crate) struct Caller<'a> {
    pub(crate) client_id: &'a ClientId,
    pub(crate) credential: &'a ClientCredential,
    /// How a secret is sent.
    pub(crate) style: CredentialStyle,
    /// A `private_key_jwt` assertion's `aud`.
    pub(crate) audience: &'a str,
}

/// Authenticates `request` as `caller`: HTTP Basic (id and secret form-urlencoded first,
/// RFC 6749 section 2.3.1) or the form body per its style for a secret, else a client
/// assertion for its audience in the form, issued at `now_ms`. `client_name` names the
/// client in logs and metrics.
pub(crate) async fn authenticate(
    mut request: reqwest::RequestBuilder,
    form: &mut Vec<(&str, String)>,
    caller: &Caller<'_>,
    client_name: &str,
    now_ms: u64,
) -> Result<reqwest::RequestBuilder, AuthError> {
    let Caller {
        client_id,
        credential,
        style,
        audience,
    } = *caller;
    match credential {
        ClientCredential::Secret(secret) => match style {
            CredentialStyle::BasicHeader => {
                let encode =
                    |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
                let pair = format!("{}:{}", encode(client_id.as_str()), encode(secret.expose()));
                let mut value = reqwest::header::HeaderValue::from_str(&format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
                .map_err(|_| AuthError::Unencodable)?;
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            CredentialStyle::PostBody => {
                form.push(("client_id", client_id.as_str().to_owned()));
                form.push(("client_secret", secret.expose().to_owned()));
            }
        },
        // The certificate is the TLS connection's (see `ClientCertificateFiles::http`).
        ClientCredential::TlsClientCertificate(_) => {
            form.push(("client_id", client_id.as_str().to_owned()));
        }
        credential => {
            let (assertion_type, assertion) =
                client_assertion(client_id, audience, credential, client_name, now_ms)
                    .await
                    .map_err(AuthError::Assertion)?;
            form.push(("client_id", client_id.as_str().to_owned()));
            form.push(("client_assertion_type", assertion_type));
            form.push(("client_assertion", assertion));
        }
    }
    Ok(request)
}

/// How long a signed assertion is valid. RFC 7523 leaves it to the issuer; 60 s covers a
/// slow request and clock skew while keeping a captured assertion nearly useless (issuers
/// also refuse a reused `jti`).
const ASSERTION_LIFETIME_SECS: u64 = 60;
/// Largest assertion file read (a JWT-SVID or a service-account token is 1-2 KiB).
const MAX_ASSERTION_BYTES: u64 = 64 * 1024;

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    iat: u64,
    exp: u64,
}

/// The `client_assertion_type` and `client_assertion` for one request; the error says
/// what to fix (never a secret).
pub(crate) async fn client_assertion(
    client_id: &ClientId,
    audience: &str,
    credential: &ClientCredential,
    client_name: &str,
    now_ms: u64,
) -> Result<(String, String), String> {
    let outcome = make(client_id, audience, credential, now_ms).await;
    metrics::counter!(
        crate::metrics::CLIENT_ASSERTIONS,
        "client" => client_name.to_owned(),
        "kind" => credential.kind(),
        "outcome" => if outcome.is_ok() { "made" } else { "failed" },
    )
    .increment(1);
    if let Err(error) = &outcome {
        tracing::warn!(client = client_name, kind = credential.kind(), %error, "no client assertion");
    }
    outcome
}

async fn make(
    client_id: &ClientId,
    audience: &str,
    credential: &ClientCredential,
    now_ms: u64,
) -> Result<(String, String), String> {
    match credential {
        ClientCredential::PrivateKeyJwt {
            key, explicit_typ, ..
        } => {
            let now = now_ms / 1000;
            let jti = crate::jose::random_jti()
                .map_err(|_| "no randomness for the assertion's jti".to_owned())?;
            let id = client_id.as_str();
            let claims = AssertionClaims {
                iss: id,
                sub: id,
                aud: audience,
                jti: &jti,
                iat: now,
                exp: now + ASSERTION_LIFETIME_SECS,
            };
            // Strings and integers: serialization cannot fail.
            let claims = serde_json::to_vec(&claims).unwrap_or_default();
            let typ = [(
                "typ",
                serde_json::Value::String("client-authentication+jwt".into()),
            )];
            let header = key.encoded_header(if *explicit_typ { &typ } else { &[] });
            let assertion = key
                .sign_compact(&header, &claims)
                .map_err(|e| e.to_string())?;
            Ok((JWT_BEARER_ASSERTION.to_owned(), assertion))
        }
        ClientCredential::AssertionFile {
            path,
            assertion_type,
        } => {
            let unreadable =
                |reason: String| format!("the assertion file {} {reason}", path.display());
            // What tokio::fs does, without its feature: a blocking read off the runtime.
            let file = path.clone();
            let text = tokio::task::spawn_blocking(move || read_capped(&file))
                .await
                .map_err(|e| unreadable(format!("cannot be read: {e}")))?
                .map_err(unreadable)?;
            let assertion = text.trim();
            // A JWS in compact form: three base64url parts. Anything else would be sent
            // to the issuer only to be refused, with a less helpful message.
            let compact = assertion.split('.').count() == 3
                && assertion
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !compact {
                return Err(unreadable(
                    "does not hold a JWT (three base64url parts)".into(),
                ));
            }
            Ok((assertion_type.clone(), assertion.to_owned()))
        }
        ClientCredential::Secret(_) => Err("a secret is not an assertion".into()),
        ClientCredential::TlsClientCertificate(_) => {
            Err("a client certificate is not an assertion".into())
        }
    }
}

/// The file's text, at most [`MAX_ASSERTION_BYTES`]; the error says why not (no path).
pub(crate) fn read_capped(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut text = String::new();
    file.take(MAX_ASSERTION_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if text.len() as u64 > MAX_ASSERTION_BYTES {
        return Err(format!("is larger than {MAX_ASSERTION_BYTES} bytes"));
    }
    Ok(text)
}

/// The error answer of an issuer endpoint (RFC 6749 section 5.2: `error` and
/// `error_description`), as the token, introspection and revocation endpoints send it.
#[derive(serde::Deserialize)]
pub(crate) struct ErrorAnswer {
    pub(crate) error: String,
    pub(crate) error_description: Option<String>,
}

impl ErrorAnswer {
    /// The answer in `body`, if it is one.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

/// An issuer's text, printable and bounded (200 characters), for logs and errors.
pub(crate) fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}
