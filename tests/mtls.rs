//! Certificate-bound access tokens (RFC 8705) at the resource server, with certificates
//! made here (rcgen): over mutual TLS that the service terminates itself, and behind a
//! TLS-terminating proxy whose certificate header is trusted only from its address.
//!
//! A token with `cnf.x5t#S256` passes with the matching certificate (200), not with another
//! one or none (401 `invalid_token` saying which); a proxy header from an untrusted address
//! is ignored; a token bound both ways is refused; an unbound token needs no certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, connect_info::Connected};
use axum::middleware::Next;
use axum::routing::get;
use axum::serve::{IncomingStream, Listener};
use base64::Engine as _;
use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::json;
use shared_auth::server::{
    CertificateBinding, ClientCertificate, JwtAuthLayer, JwtValidator, Principal,
};
use system_tests::{BFF_ID, READ, cognito, start_issuer, validator_config_for};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;

/// A throwaway CA and what it signs.
struct Pki {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key, PEM, and the certificate's DER.
struct Leaf {
    der: Vec<u8>,
    pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl Pki {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mtls test CA");
        Pki {
            ca: rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap(),
        }
    }

    fn leaf(&self, name: &str, purpose: rcgen::ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![purpose];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }
}

fn thumbprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// An access token of `issuer`, with `cnf` if given.
fn token(issuer: &IssuerHandle, cnf: Option<serde_json::Value>) -> String {
    let (header, mut claims) = issuer.token_template(BFF_ID, &[READ]);
    if let Some(cnf) = cnf {
        claims["cnf"] = cnf;
    }
    issuer.sign(&header, &claims).unwrap()
}

async fn validator(issuer: &IssuerHandle, binding: CertificateBinding) -> JwtValidator {
    let mut config = validator_config_for(issuer.issuer(), cognito());
    config.certificates = binding;
    JwtValidator::new(config).await.unwrap()
}

fn api(validator: JwtValidator) -> Router {
    Router::new().route(
        "/whoami",
        get(|p: Principal| async move { p.certificate_thumbprint().unwrap_or("-").to_owned() })
            .route_layer(JwtAuthLayer::new(validator)),
    )
}

/// A TLS listener for `axum::serve` that asks for a client certificate (one our CA signed,
/// or none) and hands it over with the peer address.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

#[derive(Clone, Debug)]
struct Peer {
    certificate: Option<ClientCertificate>,
}

impl Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, _)) = self.tcp.accept().await else {
                continue;
            };
            // Bounded: a client that never speaks cannot hold the listener.
            let Ok(Ok(tls)) =
                tokio::time::timeout(std::time::Duration::from_secs(5), self.acceptor.accept(tcp))
                    .await
            else {
                continue;
            };
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| ClientCertificate::from_der(der.as_ref().to_vec()));
            return (tls, Peer { certificate });
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer { certificate: None })
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Serves `app` over TLS with the client's certificate in each request's extensions, as a
/// service that terminates TLS itself does.
async fn serve_tls(pki: &Pki, app: Router) -> (String, tokio::task::JoinHandle<()>) {
    serve_tls_trusting(pki, &[pki.ca_pem()], app).await
}

/// [`serve_tls`], accepting client certificates of the CAs in `client_cas` (PEM).
async fn serve_tls_trusting(
    pki: &Pki,
    client_cas: &[String],
    app: Router,
) -> (String, tokio::task::JoinHandle<()>) {
    let server = pki.leaf("127.0.0.1", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in client_cas {
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
    }
    let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(clients)
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(server.der.clone())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
                server.key_der.clone(),
            )),
        )
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let app = app.layer(axum::middleware::from_fn(
        |ConnectInfo(peer): ConnectInfo<Peer>, mut request: Request, next: Next| async move {
            if let Some(certificate) = peer.certificate {
                request.extensions_mut().insert(certificate);
            }
            next.run(request).await
        },
    ));
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
            .await
            .unwrap();
    });
    (base, task)
}

/// An HTTPS client trusting the CA, presenting `identity` if given.
fn https_client(pki: &Pki, identity: Option<&Leaf>) -> reqwest::Client {
    client_of(&pki.ca_pem(), identity.map(|l| (&*l.pem, &*l.key_pem)))
}

/// An HTTPS client trusting `ca_pem`, presenting `identity` (certificate, key; PEM) if given.
fn client_of(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(std::time::Duration::from_secs(10));
    if let Some((certificate, key)) = identity {
        builder = builder.identity(
            reqwest::Identity::from_pem(format!("{certificate}{key}").as_bytes()).unwrap(),
        );
    }
    builder.build().unwrap()
}

/// A client of the mock issuer's mTLS endpoint (or a server of `ca_pem`), presenting `pem`.
fn presenting(ca_pem: &str, pem: &mock_issuer::ClientCertificatePem) -> reqwest::Client {
    client_of(ca_pem, Some((&pem.certificate, &pem.key)))
}

/// A mock issuer with its mTLS endpoint.
async fn mtls_issuer() -> mock_issuer::IssuerHandle {
    mock_issuer::start(system_tests::issuer_config(IssuerProfile::Cognito).with_mtls())
        .await
        .unwrap()
}

/// Status and `WWW-Authenticate` of GET `url` with `token`.
async fn call(client: &reqwest::Client, url: &str, token: &str) -> (u16, String) {
    let response = client.get(url).bearer_auth(token).send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

#[tokio::test]
async fn over_mutual_tls_a_bound_token_needs_its_certificate() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let pki = Pki::new();
    let alice = pki.leaf("alice-workload", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let bob = pki.leaf("bob-workload", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let (base, _server) = serve_tls(
        &pki,
        api(validator(&issuer, CertificateBinding::default()).await),
    )
    .await;
    let url = format!("{base}/whoami");
    let bound = token(&issuer, Some(json!({"x5t#S256": thumbprint(&alice.der)})));

    let (status, _) = call(&https_client(&pki, Some(&alice)), &url, &bound).await;
    assert_eq!(status, 200);
    let (status, challenge) = call(&https_client(&pki, Some(&bob)), &url, &bound).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("invalid_token") && challenge.contains("another client certificate"),
        "{challenge}"
    );
    let (status, challenge) = call(&https_client(&pki, None), &url, &bound).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("mutual TLS"), "{challenge}");
    // An unbound token needs no certificate.
    let (status, _) = call(&https_client(&pki, None), &url, &token(&issuer, None)).await;
    assert_eq!(status, 200);
    // Bound both ways: refused, whatever is presented.
    let both = token(
        &issuer,
        Some(json!({"x5t#S256": thumbprint(&alice.der), "jkt": "some-key-thumbprint"})),
    );
    let (status, _) = call(&https_client(&pki, Some(&alice)), &url, &both).await;
    assert_eq!(status, 401);
    // The same token again (now from the validated-token cache) is checked the same way.
    let (status, _) = call(&https_client(&pki, Some(&bob)), &url, &bound).await;
    assert_eq!(status, 401);
    let (status, _) = call(&https_client(&pki, Some(&alice)), &url, &bound).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn behind_a_proxy_the_certificate_header_counts_only_from_the_proxy() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let pki = Pki::new();
    let alice = pki.leaf("alice-workload", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let bob = pki.leaf("bob-workload", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let proxy: IpAddr = "127.0.0.2".parse().unwrap();
    let binding = CertificateBinding::from_proxy("client-cert", [proxy]);
    let app = api(validator(&issuer, binding).await);
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/whoami", tcp.local_addr().unwrap());
    let _server = tokio::spawn(async move {
        axum::serve(tcp, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    let from = |address: IpAddr| {
        reqwest::Client::builder()
            .local_address(address)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let rfc9440 = |leaf: &Leaf| {
        format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(&leaf.der)
        )
    };
    let bound = token(&issuer, Some(json!({"x5t#S256": thumbprint(&alice.der)})));
    let send = |client: reqwest::Client, header: String| {
        let (url, bound) = (url.clone(), bound.clone());
        async move {
            client
                .get(&url)
                .bearer_auth(&bound)
                .header("client-cert", header)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // From the proxy: its header is the certificate (RFC 9440, or a URL-encoded PEM).
    assert_eq!(send(from(proxy), rfc9440(&alice)).await, 200);
    // URL-encoded as nginx's `$ssl_client_escaped_cert` writes it.
    let escaped =
        percent_encoding::utf8_percent_encode(&alice.pem, percent_encoding::NON_ALPHANUMERIC);
    assert_eq!(send(from(proxy), escaped.to_string()).await, 200);
    assert_eq!(send(from(proxy), rfc9440(&bob)).await, 401);
    // From anyone else the header is ignored: the token has no certificate.
    let direct: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(send(from(direct), rfc9440(&alice)).await, 401);
}

/// The mock issuer's mTLS endpoint issues a certificate-bound token to a client that
/// authenticates with its certificate (`tls_client_auth`), and the resource server accepts
/// that token from that client's certificate only.
#[tokio::test]
async fn the_issuer_binds_a_token_to_the_certificate_the_client_authenticated_with() {
    let issuer = mtls_issuer().await;
    let issuer_ca = issuer.mtls_ca_pem().unwrap();
    let endpoint = issuer.mtls_token_endpoint().unwrap();
    let workload = issuer.issue_client_certificate(BFF_ID).unwrap();
    let other = issuer
        .issue_client_certificate(system_tests::ADMIN_ID)
        .unwrap();
    let with = |pem: &mock_issuer::ClientCertificatePem| presenting(&issuer_ca, pem);
    let ask = |client: reqwest::Client, id: &'static str| {
        let endpoint = endpoint.clone();
        async move {
            let response = client
                .post(&endpoint)
                .form(&[("grant_type", "client_credentials"), ("client_id", id)])
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = ask(with(&workload), BFF_ID).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let der =
        rustls::pki_types::CertificateDer::from_pem_slice(workload.certificate.as_bytes()).unwrap();
    assert_eq!(
        system_tests::decode_part(&token, 1)["cnf"]["x5t#S256"],
        thumbprint(der.as_ref())
    );
    // Another client's certificate does not authenticate this client.
    let (status, body) = ask(with(&other), BFF_ID).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // Discovery names the endpoint.
    let discovery = system_tests::get_json(issuer.discovery_url()).await;
    assert_eq!(
        discovery["mtls_endpoint_aliases"]["token_endpoint"],
        endpoint
    );

    // At the resource server (trusting the issuer's CA for client certificates).
    let pki = Pki::new();
    let (base, _server) = serve_tls_trusting(
        &pki,
        std::slice::from_ref(&issuer_ca),
        api(validator(&issuer, CertificateBinding::default()).await),
    )
    .await;
    let rs = |pem: &mock_issuer::ClientCertificatePem| presenting(&pki.ca_pem(), pem);
    let url = format!("{base}/whoami");
    assert_eq!(call(&rs(&workload), &url, &token).await.0, 200);
    assert_eq!(call(&rs(&other), &url, &token).await.0, 401);
}

/// `BFF_ID` at `issuer` with its certificate `files`: the token endpoint found by
/// discovery, its mTLS alias.
async fn over_mtls(
    issuer: &IssuerHandle,
    files: shared_auth::client::ClientCertificateFiles,
    name: &str,
) -> shared_auth::client::ManagedClient {
    use shared_auth::client::{ClientCredential, ClientCredentialsClient, ClientId, TokenManager};
    let client = ClientCredentialsClient::from_authority(
        issuer.issuer(),
        ClientId::new(BFF_ID),
        ClientCredential::TlsClientCertificate(files),
        std::time::Duration::from_secs(5),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        Some(client.token_endpoint.clone()),
        issuer.mtls_token_endpoint(),
        "the mTLS alias, not the plain endpoint"
    );
    TokenManager::builder()
        .build()
        .unwrap()
        .register(name, client)
        .unwrap()
}

/// The mock issuer's mTLS endpoint does its handshakes side by side: a client that connects
/// and never speaks does not hold the next client's token request (the listener once did one
/// handshake at a time, and the next client waited out the silent one's 5 s bound). Decided
/// by order, not by a clock: the token is issued while the silent connection is still open.
#[tokio::test]
async fn a_silent_client_does_not_hold_the_mtls_endpoint() {
    let issuer = mtls_issuer().await;
    let endpoint = issuer.mtls_token_endpoint().unwrap();
    let url = reqwest::Url::parse(&endpoint).unwrap();
    let silent = tokio::net::TcpStream::connect((
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap(),
    ))
    .await
    .unwrap();
    let workload = issuer.issue_client_certificate(BFF_ID).unwrap();
    let client = presenting(&issuer.mtls_ca_pem().unwrap(), &workload);
    let response = client
        .post(&endpoint)
        .form(&[("grant_type", "client_credentials"), ("client_id", BFF_ID)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Still open: the issuer has neither finished nor given up its handshake.
    let mut byte = [0u8; 1];
    let read = silent.try_read(&mut byte);
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the silent connection was closed before the token was issued: {read:?}"
    );
}

/// The client half over mutual TLS (`tls_client_auth`): the token endpoint from the
/// discovery document's mTLS alias, the certificate and key read from files, the token
/// bound to that certificate; the files rotated, the next token is bound to the new one.
#[tokio::test]
async fn the_client_authenticates_with_its_certificate_files_and_picks_up_a_rotation() {
    use shared_auth::client::{ClientCertificateFiles, TokenRequestParams};
    use system_tests::TempFile;
    let issuer = mtls_issuer().await;
    let (certificate, key, ca) = (
        TempFile::new("mtls-cert"),
        TempFile::new("mtls-key"),
        TempFile::new("mtls-ca"),
    );
    ca.write(&issuer.mtls_ca_pem().unwrap());
    let first = issuer.issue_client_certificate(BFF_ID).unwrap();
    certificate.write(&first.certificate);
    key.write(&first.key);
    let files = ClientCertificateFiles::new(&certificate.0, &key.0).with_ca(&ca.0);
    let tokens = over_mtls(&issuer, files, "over-mtls").await;
    let bound_to = |token: &str| system_tests::decode_part(token, 1)["cnf"]["x5t#S256"].clone();
    let der = |pem: &str| {
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    };
    let token = tokens.token().await.unwrap();
    assert_eq!(
        bound_to(token.secret()),
        thumbprint(&der(&first.certificate))
    );

    // Rotated on disk (as a cert-manager or SPIFFE agent does): the next token request
    // presents the new certificate, and its token is bound to it.
    let second = issuer.issue_client_certificate(BFF_ID).unwrap();
    certificate.write(&second.certificate);
    key.write(&second.key);
    let renewed = tokens
        .token_with(&TokenRequestParams {
            force_renewal: true,
            ..TokenRequestParams::default()
        })
        .await
        .unwrap();
    assert_eq!(
        bound_to(renewed.secret()),
        thumbprint(&der(&second.certificate))
    );

    // Files that are not a certificate and its key: a clear error, nothing sent.
    key.write("not a key");
    let before = issuer.stats().token_requests;
    let error = tokens
        .token_with(&TokenRequestParams {
            force_renewal: true,
            ..TokenRequestParams::default()
        })
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not a PEM certificate and its key"),
        "{error}"
    );
    assert_eq!(issuer.stats().token_requests, before);
}

/// `self_signed_tls_client_auth` (RFC 8705 section 2.2): a certificate the client made
/// itself, registered at the issuer for the client, authenticates it at the mTLS endpoint
/// and binds its token, through the same certificate files; an unregistered self-signed
/// certificate gets no token.
#[tokio::test]
async fn a_self_signed_certificate_registered_at_the_issuer_authenticates_the_client() {
    use shared_auth::client::ClientCertificateFiles;
    use system_tests::TempFile;
    let issuer = mtls_issuer().await;
    let discovery = system_tests::get_json(issuer.discovery_url()).await;
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("self_signed_tls_client_auth")),
        "{discovery}"
    );
    let ca = TempFile::new("self-signed-ca");
    ca.write(&issuer.mtls_ca_pem().unwrap());
    let self_signed = || {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "my own certificate");
        let cert = params.self_signed(&key).unwrap();
        (cert.der().to_vec(), cert.pem(), key.serialize_pem())
    };
    let tokens_with = |certificate: &str, key: &str, name: &'static str| {
        let (cert_file, key_file) = (TempFile::new(name), TempFile::new(&format!("{name}-key")));
        cert_file.write(certificate);
        key_file.write(key);
        let files = ClientCertificateFiles::new(&cert_file.0, &key_file.0).with_ca(&ca.0);
        let issuer = &issuer;
        async move {
            let token = over_mtls(issuer, files, name).await.token().await;
            drop((cert_file, key_file));
            token
        }
    };

    let (der, certificate, key) = self_signed();
    assert!(issuer.register_client_certificate(BFF_ID, &der));
    let token = tokens_with(&certificate, &key, "registered").await.unwrap();
    assert_eq!(
        system_tests::decode_part(token.secret(), 1)["cnf"]["x5t#S256"],
        json!(thumbprint(&der))
    );

    let (_, unregistered, unregistered_key) = self_signed();
    let before = issuer.stats().token_requests;
    let refused = tokens_with(&unregistered, &unregistered_key, "unregistered").await;
    assert!(refused.is_err(), "an unregistered certificate: no token");
    assert_eq!(
        issuer.stats().token_requests,
        before,
        "refused at the handshake"
    );
}
