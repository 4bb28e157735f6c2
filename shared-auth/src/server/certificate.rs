//! Certificate-bound access tokens (RFC 8705 section 3): a token whose `cnf.x5t#S256`
//! names a client certificate is accepted only from a request made with that certificate.
//!
//! The certificate of a request comes from one of two places:
//! - **the TLS connection**, when the service terminates TLS itself: whatever accepts the
//!   connection puts the client's certificate into the request's extensions as a
//!   [`ClientCertificate`];
//! - **a header set by a TLS-terminating proxy** (`CertificateBinding::proxy_header`), read
//!   only when the request's peer address (axum's `ConnectInfo<SocketAddr>`) is one of
//!   `CertificateBinding::trusted_proxies`. From anyone else the header is ignored, so a
//!   caller cannot claim a certificate by writing a header. Two shapes are understood: RFC
//!   9440's `Client-Cert: :<base64 DER>:`, and a URL-encoded PEM certificate (nginx's
//!   `$ssl_client_escaped_cert`, AWS ALB's `X-Amzn-Mtls-Clientcert`).
//!
//! A certificate-bound token without the certificate, or with another one, is refused
//! with 401 `invalid_token` and a description that says which. The TLS connection wins
//! over the header when both are there. A token cannot be both DPoP- and
//! certificate-bound: the claims check refuses it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, Request, Response};
use base64::Engine as _;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::challenge;
use super::error::StartError;
use super::principal::Principal;

/// The client certificate (DER) of the TLS connection a request came on. The code that
/// accepts TLS connections inserts it into each request's extensions; the auth layer
/// reads it for certificate-bound tokens. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate(Arc<[u8]>);

impl ClientCertificate {
    /// The certificate as DER bytes (rustls' `peer_certificates()[0]`).
    pub fn from_der(der: impl Into<Arc<[u8]>>) -> Self {
        ClientCertificate(der.into())
    }

    /// The RFC 8705 thumbprint: base64url of the SHA-256 of the DER.
    pub(crate) fn thumbprint(&self) -> String {
        thumbprint(&self.0)
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCertificate(x5t#S256={})", self.thumbprint())
    }
}

fn thumbprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Where client certificates come from besides the TLS connection
/// ([`ValidatorConfig::certificates`](super::ValidatorConfig::certificates)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateBinding {
    /// The header a TLS-terminating proxy puts the client certificate in (`client-cert`
    /// for RFC 9440); `None` (the default): no header is read.
    pub proxy_header: Option<String>,
    /// The proxies' addresses: the header is read only from these peers (required with
    /// a header).
    pub trusted_proxies: Vec<IpAddr>,
}

impl CertificateBinding {
    /// The client certificate in `header`, trusted only from the proxies at `trusted`.
    pub fn from_proxy(
        header: impl Into<String>,
        trusted: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        CertificateBinding {
            proxy_header: Some(header.into()),
            trusted_proxies: trusted.into_iter().collect(),
        }
    }
}

/// The checks, made once from a [`CertificateBinding`].
#[derive(Debug, Default)]
pub(crate) struct CertificateCheck {
    header: Option<HeaderName>,
    trusted: Vec<IpAddr>,
}

/// Why a certificate-bound token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No certificate came with the request.
    Missing,
    /// Another certificate than the token's.
    Mismatch,
}

impl CertificateCheck {
    pub(crate) fn new(binding: &CertificateBinding) -> Result<Self, StartError> {
        let header = match &binding.proxy_header {
            None => None,
            Some(name) => Some(
                HeaderName::try_from(name.as_str())
                    .map_err(|_| StartError::Config(format!("{name:?} is not a header name")))?,
            ),
        };
        if header.is_some() && binding.trusted_proxies.is_empty() {
            return Err(StartError::Config(
                "a client certificate header needs the addresses of the proxies that set it".into(),
            ));
        }
        Ok(CertificateCheck {
            header,
            // IPv4 as IPv4 even when a dual-stack listener sees it as ::ffff:a.b.c.d.
            trusted: binding
                .trusted_proxies
                .iter()
                .map(IpAddr::to_canonical)
                .collect(),
        })
    }

    /// The 401 for a request whose certificate does not match the certificate-bound
    /// `principal`; `None` when the token is not bound or the certificate matches.
    pub(crate) fn refusal(
        &self,
        request: &Request<Body>,
        principal: &Principal,
    ) -> Option<Response<Body>> {
        let expected = principal.certificate_thumbprint()?;
        let refusal = match self.presented(request) {
            None => Refusal::Missing,
            // Thumbprints of certificates are public: compared plainly.
            Some(presented) if presented == expected => return None,
            Some(_) => Refusal::Mismatch,
        };
        let (reason, description) = match refusal {
            Refusal::Missing => (
                "certificate_missing",
                "The access token is bound to a client certificate (RFC 8705); send the request over mutual TLS with it.",
            ),
            Refusal::Mismatch => (
                "certificate_mismatch",
                "The access token is bound to another client certificate than the one presented (RFC 8705).",
            ),
        };
        tracing::debug!(reason, "request refused");
        crate::trace::refused(reason);
        metrics::counter!(crate::metrics::VALIDATIONS, "outcome" => "rejected", "reason" => reason)
            .increment(1);
        Some(challenge::invalid_token(description))
    }

    /// The thumbprint of the request's client certificate: its TLS connection's, else a
    /// trusted proxy's header's.
    fn presented(&self, request: &Request<Body>) -> Option<String> {
        if let Some(certificate) = request.extensions().get::<ClientCertificate>() {
            return Some(certificate.thumbprint());
        }
        let header = self.header.as_ref()?;
        let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
        if !self.trusted.contains(&peer.ip().to_canonical()) {
            return None;
        }
        let mut values = request.headers().get_all(header).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return None;
        };
        header_certificate(value.to_str().ok()?).map(|der| thumbprint(&der))
    }
}

/// The DER of a proxy's certificate header: RFC 9440 (`:base64:`), or a URL-encoded PEM.
fn header_certificate(value: &str) -> Option<Vec<u8>> {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
        return base64::engine::general_purpose::STANDARD.decode(inner).ok();
    }
    let pem = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()?;
    // One certificate and nothing else: a proxy that appends to a header the client sent
    // (values joined by a comma) must not let the client's copy come first.
    if pem.contains(',') || pem.matches("-----BEGIN").count() != 1 {
        return None;
    }
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_header_shapes_give_the_certificate() {
        let der = b"\x30\x03\x02\x01\x01".to_vec();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(header_certificate(&format!(":{b64}:")), Some(der.clone()));
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        let escaped: String =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(header_certificate(&escaped), Some(der));
        assert_eq!(header_certificate("garbage"), None);
        let appended = format!("{pem},{pem}");
        assert_eq!(header_certificate(&appended), None);
        assert_eq!(header_certificate(&format!("{pem}{pem}")), None);
        assert_eq!(header_certificate(":not base64!:"), None);
    }

    #[test]
    fn the_header_counts_from_a_trusted_peer_only_and_once() {
        let der = b"\x30\x03\x02\x01\x01".to_vec();
        let value = format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let check = CertificateCheck::new(&CertificateBinding::from_proxy(
            "client-cert",
            ["127.0.0.2".parse().unwrap()],
        ))
        .unwrap();
        let request = |peer: Option<&str>, values: &[&str]| {
            let mut builder = Request::get("/");
            for v in values {
                builder = builder.header("client-cert", *v);
            }
            let mut request = builder.body(Body::empty()).unwrap();
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            }
            request
        };
        let expected = Some(thumbprint(&der));
        assert_eq!(
            check.presented(&request(Some("127.0.0.2:9"), &[&value])),
            expected
        );
        // The same proxy seen by a dual-stack listener.
        assert_eq!(
            check.presented(&request(Some("[::ffff:127.0.0.2]:9"), &[&value])),
            expected
        );
        assert_eq!(
            check.presented(&request(Some("127.0.0.1:9"), &[&value])),
            None
        );
        assert_eq!(
            check.presented(&request(None, &[&value])),
            None,
            "no peer address"
        );
        assert_eq!(
            check.presented(&request(Some("127.0.0.2:9"), &[&value, &value])),
            None
        );
        // The TLS connection's certificate wins over any header.
        let mut tls = request(Some("127.0.0.1:9"), &[&value]);
        tls.extensions_mut()
            .insert(ClientCertificate::from_der(b"other".to_vec()));
        assert_eq!(check.presented(&tls), Some(thumbprint(b"other")));
    }

    #[test]
    fn a_header_needs_trusted_proxies() {
        let binding = CertificateBinding {
            proxy_header: Some("client-cert".into()),
            trusted_proxies: vec![],
        };
        assert!(CertificateCheck::new(&binding).is_err());
        let binding = CertificateBinding {
            proxy_header: Some("bad header".into()),
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        };
        assert!(CertificateCheck::new(&binding).is_err());
    }
}
