//! The kit's issuer over https (`--https`), for targets that refuse plain-http key sets
//! (Auth0's `express-oauth2-jwt-bearer` with `NODE_ENV=production`, most production
//! configurations of Spring, ASP.NET Core and Go libraries).
//!
//! At start the kit makes a throwaway CA and a certificate it signs for `127.0.0.1`,
//! `::1`, `localhost` (and the listen address, when one is given), all in memory; only the
//! CA certificate leaves the process, as the PEM file the target is told to trust. The
//! mock issuer keeps serving plain http on a loopback port of its own; a TLS terminator on
//! the listen address decrypts each connection and forwards its bytes there, so the
//! issuer's discovery, JWKS and token endpoint are all reached over https and its fault
//! knobs work unchanged. The issuer's URL (`iss`) is the terminator's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::KitError;

/// A CA and the server configuration of a certificate it signed.
pub(crate) struct Certificates {
    /// The CA certificate, PEM.
    pub(crate) ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl Certificates {
    /// A fresh CA and a certificate for the loopback names and `extra` (the listen
    /// address, if it is a specific one), ECDSA P-256 (aws-lc-rs).
    pub(crate) fn generate(extra: Option<IpAddr>) -> Result<Self, KitError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            KitError::Setting(format!("cannot make the https issuer's {what}: {e}"))
        };
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA", &e))?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "conformance kit throwaway CA");
        let ca_key = rcgen::KeyPair::generate().map_err(|e| err("CA key", &e))?;
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)
            .map_err(|e| err("CA certificate", &e))?;

        let mut names: Vec<String> = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
        .iter()
        .chain(extra.iter())
        .map(IpAddr::to_string)
        .collect();
        names.push("localhost".to_owned());
        // The listen address may be a loopback one already.
        names.sort();
        names.dedup();
        let mut leaf_params =
            rcgen::CertificateParams::new(names).map_err(|e| err("certificate", &e))?;
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "conformance kit issuer");
        leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = rcgen::KeyPair::generate().map_err(|e| err("key", &e))?;
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .map_err(|e| err("certificate", &e))?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        // The workspace's one crypto library, named rather than taken from the process
        // default (which is ambiguous when several providers are compiled in).
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("TLS settings", &e))?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .map_err(|e| err("TLS settings", &e))?;
        Ok(Certificates {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        })
    }
}

/// TLS handshakes that failed: a target that does not trust the CA shows up here, not as
/// an error of the kit (its refusals would make the run inconclusive, and this says why).
#[derive(Default)]
pub(crate) struct HandshakeFailures {
    count: AtomicUsize,
    last: Mutex<Option<String>>,
}

impl HandshakeFailures {
    /// How many failed, and the last error.
    pub(crate) fn get(&self) -> Option<(usize, String)> {
        let count = self.count.load(Ordering::SeqCst);
        // A poisoned lock still holds a valid string.
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (count > 0).then(|| (count, last.unwrap_or_default()))
    }

    fn record(&self, peer: SocketAddr, error: &std::io::Error) {
        self.count.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("from {peer}: {error}"));
    }
}

/// Accepts TLS on `listener` and forwards each connection's plaintext to `backend`, until
/// the task is aborted.
pub(crate) async fn terminate(
    listener: TcpListener,
    certificates: &Certificates,
    backend: SocketAddr,
    failures: Arc<HandshakeFailures>,
) {
    let acceptor = TlsAcceptor::from(certificates.server.clone());
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let failures = failures.clone();
        tokio::spawn(async move {
            let mut tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => return failures.record(peer, &e),
            };
            let Ok(mut plain) = TcpStream::connect(backend).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject as _;

    #[test]
    fn the_ca_is_written_as_one_pem_certificate() {
        let certs = Certificates::generate(None).unwrap();
        let pem = &certs.ca_pem;
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"), "{pem}");
        assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
        assert_eq!(
            rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).count(),
            1
        );
    }
}
