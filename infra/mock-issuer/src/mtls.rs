//! The mutual-TLS token endpoint (RFC 8705): with `mtls = true`, the issuer makes its own
//! local CA at start, serves its endpoints over TLS on a second port with a certificate of
//! that CA, asks each client for a certificate, and issues certificate-bound tokens
//! (`cnf.x5t#S256`) to clients that authenticate with one (`tls_client_auth`).
//!
//! A client's certificate is issued by the issuer itself
//! (`IssuerHandle::issue_client_certificate`, `tls_client_auth`) or made by the client and
//! registered (`IssuerHandle::register_client_certificate`, `self_signed_tls_client_auth`):
//! either way its SHA-256 thumbprint is registered for that client, so the certificate
//! authenticates exactly that client id. Discovery
//! publishes the endpoint as `mtls_endpoint_aliases.token_endpoint`. Development and tests
//! only: the CA's key lives in memory and dies with the process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{ConnectInfo, Request, connect_info::Connected};
use axum::middleware::Next;
use axum::serve::{IncomingStream, Listener};
use base64::Engine as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use crate::StartError;

/// The client certificate of the TLS connection a request came on (DER).
#[derive(Clone, Debug)]
pub(crate) struct PeerCertificate(pub(crate) Vec<u8>);

/// The issuer's local CA and the client certificates it issued.
pub(crate) struct Mtls {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    server: Arc<rustls::ServerConfig>,
    /// Registered certificate thumbprints (`x5t#S256`) and their client ids (shared with
    /// the TLS verifier, which lets a registered self-signed certificate through).
    clients: Registered,
    /// `https://127.0.0.1:{port}`, once the listener is bound.
    pub(crate) base: OnceLock<String>,
}

/// Certificate thumbprints and the client each authenticates.
type Registered = Arc<Mutex<HashMap<String, String>>>;

/// A certificate and its private key, PEM.
#[derive(Clone, Debug)]
pub struct ClientCertificatePem {
    /// The certificate.
    pub certificate: String,
    /// Its PKCS #8 private key.
    pub key: String,
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> StartError {
    StartError::Tls(format!("{what}: {e}"))
}

impl Mtls {
    /// A fresh CA and a server certificate for the loopback names.
    pub(crate) fn generate() -> Result<Self, StartError> {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("CA", e))?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mock-issuer local CA");
        let ca_key = rcgen::KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
        let ca =
            rcgen::CertifiedIssuer::self_signed(params, ca_key).map_err(|e| tls_error("CA", e))?;
        let mut leaf =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(|e| tls_error("certificate", e))?;
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().map_err(|e| tls_error("key", e))?;
        let cert = leaf
            .signed_by(&key, &ca)
            .map_err(|e| tls_error("certificate", e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(ca.der().to_vec()))
            .map_err(|e| tls_error("CA", e))?;
        // Clients without a certificate may still connect (and authenticate otherwise).
        let issued = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls_error("client verifier", e))?;
        let registered: Registered = Arc::default();
        let clients = Arc::new(IssuedOrRegistered {
            issued,
            registered: registered.clone(),
        });
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS", e))?
            .with_client_cert_verifier(clients)
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(
                    rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
                ),
            )
            .map_err(|e| tls_error("TLS", e))?;
        Ok(Mtls {
            ca,
            server: Arc::new(server),
            clients: registered,
            base: OnceLock::new(),
        })
    }

    /// The CA certificate, PEM: what a client trusts the endpoint with.
    pub(crate) fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A new client certificate for `client_id`, registered for it.
    pub(crate) fn issue(&self, client_id: &str) -> Result<ClientCertificatePem, StartError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| tls_error("client certificate", e))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, client_id);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().map_err(|e| tls_error("client key", e))?;
        let cert = params
            .signed_by(&key, &self.ca)
            .map_err(|e| tls_error("client certificate", e))?;
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(thumbprint(cert.der()), client_id.to_owned());
        Ok(ClientCertificatePem {
            certificate: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// Registers a certificate the client made itself (`self_signed_tls_client_auth`,
    /// RFC 8705 section 2.2) for `client_id`: presented at the mTLS endpoint, it
    /// authenticates that client and binds its tokens.
    pub(crate) fn register(&self, client_id: &str, der: &[u8]) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(thumbprint(der), client_id.to_owned());
    }

    /// The client id a certificate was issued to, if this issuer issued it.
    pub(crate) fn client_of(&self, der: &[u8]) -> Option<String> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&thumbprint(der))
            .cloned()
    }

    /// Serves `app` over TLS on `listener` until the task is aborted.
    pub(crate) async fn serve(&self, listener: TcpListener, app: Router) {
        let listener = TlsListener::new(
            listener,
            tokio_rustls::TlsAcceptor::from(self.server.clone()),
        );
        let app = app.layer(axum::middleware::from_fn(
            |ConnectInfo(peer): ConnectInfo<Peer>, mut request: Request, next: Next| async move {
                if let Some(certificate) = peer.0 {
                    request.extensions_mut().insert(certificate);
                }
                next.run(request).await
            },
        ));
        if let Err(e) =
            axum::serve(listener, app.into_make_service_with_connect_info::<Peer>()).await
        {
            tracing::error!(error = %e, "mock issuer's mTLS endpoint stopped with an error");
        }
    }
}

/// The mTLS endpoint's client certificate check: a certificate of the local CA (checked by
/// rustls's WebPKI verifier, as before), or any certificate registered for a client (a
/// self-signed one: its thumbprint is what the client registered, RFC 8705 section 2.2).
/// The TLS handshake's signature is checked by the WebPKI verifier either way: the client
/// holds the certificate's key.
#[derive(Debug)]
struct IssuedOrRegistered {
    issued: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    registered: Registered,
}

impl rustls::server::danger::ClientCertVerifier for IssuedOrRegistered {
    fn offer_client_auth(&self) -> bool {
        self.issued.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.issued.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.issued.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let registered = self
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&thumbprint(end_entity));
        if registered {
            return Ok(rustls::server::danger::ClientCertVerified::assertion());
        }
        self.issued
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.issued.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.issued.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.issued.supported_verify_schemes()
    }
}

/// RFC 8705's `x5t#S256`: base64url of the certificate's SHA-256.
pub(crate) fn thumbprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// TLS connections, each with the client's certificate. Handshakes run side by side, each
/// in a task of its own bounded to 5 s: a client that connects and never speaks (or one with
/// an untrusted certificate) holds only its own connection, never the others'.
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, Peer)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(tcp: TcpListener, acceptor: tokio_rustls::TlsAcceptor) -> TlsListener {
        let (done, ready) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = tcp.accept().await else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    let handshake = acceptor.accept(tcp);
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(std::time::Duration::from_secs(5), handshake).await
                    else {
                        return;
                    };
                    let certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|der| PeerCertificate(der.as_ref().to_vec()));
                    let _ = done.send((tls, Peer(certificate))).await;
                });
            }
        });
        TlsListener { ready, accepting }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The accepting task holds the port: it ends with the server.
        self.accepting.abort();
    }
}

#[derive(Clone, Debug)]
struct Peer(Option<PeerCertificate>);

impl Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer(None))
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Binds the mTLS listener beside `bound` (same IP, another port).
pub(crate) async fn bind(bound: SocketAddr) -> Result<TcpListener, StartError> {
    let addr = SocketAddr::new(bound.ip(), 0);
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}
