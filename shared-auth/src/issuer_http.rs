//! HTTP to the issuer: the one policy for every trust channel (discovery, JWKS, token
//! endpoint), used by both halves.
//!
//! What these requests carry or return decides who is trusted, so:
//! - **https only**, except to loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`: a
//!   local issuer, or TLS terminated by a sidecar; no other name is trusted to resolve to
//!   loopback), unless the operator opts in by name
//!   ([`check_url`]'s `allow_insecure_http`). This holds for configured URLs and for URLs
//!   that a discovery document hands over.
//! - **No redirects.** A 307/308 from a token endpoint would make the client send the form
//!   body, with a `client_secret_post` secret, to wherever it points; a redirected JWKS
//!   would trust keys from another host. A redirect is an error that names the status.
//! - **Bodies are read with a cap while streaming** ([`read_capped`]): a hostile or broken
//!   endpoint cannot make us buffer more than the cap, whatever its `Content-Length` says.

use std::time::Duration;

/// The largest discovery document or JWKS read (1 MiB; real ones are a few KiB).
pub(crate) const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// Builds a client for trust channels: no redirects, the given timeouts, rustls.
pub(crate) fn client(
    timeout: Option<Duration>,
    connect_timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout);
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build()
}

/// Why a URL may not be used for a trust channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute http(s) URL.
    #[error("{url:?} is not an absolute http:// or https:// URL")]
    NotHttp {
        /// The URL.
        url: String,
    },
    /// Plain HTTP to a host that is not loopback, without the opt-in.
    #[error(
        "{url}: plain http to a host that is not loopback is refused (credentials and keys would cross the network unprotected); use https"
    )]
    Insecure {
        /// The URL.
        url: String,
    },
}

/// Whether `url` may be used for a trust channel: `https`, or `http` to a loopback host,
/// or `http` anywhere when `allow_insecure_http` is set.
pub(crate) fn check_url(url: &str, allow_insecure_http: bool) -> Result<(), UrlError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| UrlError::NotHttp { url: url.into() })?;
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if parsed.host().is_some() => {
            if allow_insecure_http || is_loopback(&parsed) {
                Ok(())
            } else {
                Err(UrlError::Insecure { url: url.into() })
            }
        }
        _ => Err(UrlError::NotHttp { url: url.into() }),
    }
}

pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        // Only the one name that resolvers map to loopback by convention (RFC 6761, and
        // /etc/hosts); `*.localhost` is left to DNS in many resolvers.
        Some(url::Host::Domain(name)) => {
            name.trim_end_matches('.').eq_ignore_ascii_case("localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether an authorization server that a protected resource names is a downgrade of the
/// resource's own transport (RFC 9728 section 7): a loopback server named by a
/// non-loopback resource (a process on the client's own host answering for a remote API),
/// or plain http named by an https resource. `Some(reason)` when it is.
pub(crate) fn downgrade(resource: &str, server: &str) -> Option<&'static str> {
    let (Ok(resource), Ok(server)) = (reqwest::Url::parse(resource), reqwest::Url::parse(server))
    else {
        return Some("it is not an absolute URL");
    };
    if is_loopback(&server) && !is_loopback(&resource) {
        Some("it is a loopback address and the resource is not")
    } else if server.scheme() == "http" && resource.scheme() == "https" {
        Some("it is plain http and the resource is https")
    } else {
        None
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The body is larger than the cap.
    TooLarge(usize),
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge(cap) => write!(f, "response body larger than {cap} bytes"),
            ReadError::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// Reads the body chunk by chunk and stops as soon as it passes `cap` bytes.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends a request to the issuer. With the `opentelemetry` feature, through
/// [`crate::trace::TracingMiddleware`]: an HTTP client span carrying its trace context
/// (`traceparent`) when this crate's spans are recorded (a request being traced), else the
/// current trace context, if any (a request not sampled: the flag off); without it, a
/// plain send.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest_middleware::Error> {
    #[cfg(feature = "opentelemetry")]
    {
        let (client, request) = request.build_split();
        reqwest_middleware::ClientBuilder::new(client)
            .with(crate::trace::TracingMiddleware::default())
            .build()
            .execute(request?)
            .await
    }
    #[cfg(not(feature = "opentelemetry"))]
    {
        request.send().await.map_err(Into::into)
    }
}

/// GETs `url` on a trust channel (discovery, JWKS): a redirect is refused, anything but a
/// success is an error, and the body is read under `cap`. The error says what went wrong,
/// without the URL (the caller names it).
pub(crate) async fn get_capped(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    cap: usize,
) -> Result<Vec<u8>, String> {
    let response = send(
        http.get(url)
            .timeout(timeout)
            .header(reqwest::header::ACCEPT, "application/json"),
    )
    .await
    .map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_redirection() {
        return Err(redirect_refused(status));
    }
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    read_capped(response, cap).await.map_err(|e| e.to_string())
}

/// The error for a redirect answer on a trust channel.
pub(crate) fn redirect_refused(status: reqwest::StatusCode) -> String {
    format!(
        "HTTP {status}: redirects are not followed on issuer requests (configure the final URL)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_cannot_name_a_server_weaker_than_itself() {
        let refused = |resource, server| downgrade(resource, server).is_some();
        assert!(refused("https://api.example", "http://127.0.0.1:9000"));
        assert!(refused("https://api.example", "https://localhost"));
        assert!(refused("http://api.internal", "http://[::1]:9000"));
        assert!(refused("https://api.example", "http://issuer.example"));
        assert!(refused("https://api.example", "not a url"));
        assert!(!refused("https://api.example", "https://issuer.example"));
        assert!(!refused("http://127.0.0.1:8080", "http://127.0.0.1:9000"));
        assert!(!refused("http://api.internal", "http://issuer.internal"));
        assert!(!refused("http://127.0.0.1:8080", "https://issuer.example"));
    }

    #[test]
    fn https_everywhere_but_loopback_unless_opted_in() {
        assert!(check_url("https://issuer.example/x", false).is_ok());
        assert!(check_url("http://127.0.0.1:7000", false).is_ok());
        assert!(check_url("http://127.9.0.1:7000", false).is_ok());
        assert!(check_url("http://localhost:7000/token", false).is_ok());
        assert!(check_url("http://[::1]:7000/token", false).is_ok());
        assert!(matches!(
            check_url("http://issuer.example/token", false),
            Err(UrlError::Insecure { .. })
        ));
        assert!(matches!(
            check_url("http://localhost.evil.example/", false),
            Err(UrlError::Insecure { .. })
        ));
        assert!(matches!(
            check_url("http://api.localhost/", false),
            Err(UrlError::Insecure { .. })
        ));
        assert!(matches!(
            check_url("http://10.0.0.1/", false),
            Err(UrlError::Insecure { .. })
        ));
        assert!(check_url("http://issuer.example/token", true).is_ok());
        assert!(matches!(
            check_url("ftp://issuer.example/", true),
            Err(UrlError::NotHttp { .. })
        ));
        assert!(matches!(
            check_url("issuer.example", true),
            Err(UrlError::NotHttp { .. })
        ));
    }
}
