//! `mock-issuer`: run the local authorization server, or use it from the command line.
//!
//! A command-line program prints its results, hence the allowed print lints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use clap::{Parser, Subcommand};
use mock_issuer::{AdminToken, IssuerConfig, MockIssuer};

/// A small, honest OAuth 2.0 authorization server (client credentials) for local runs and
/// tests. Not for production.
///
/// Without a subcommand it serves: discovery at /.well-known/openid-configuration, keys at
/// /.well-known/jwks.json, tokens at /oauth2/token (alias /connect/token), /healthz.
#[derive(Parser)]
#[command(name = "mock-issuer", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Issuer configuration file (TOML: profile, clients, resource servers, scopes).
    #[arg(long, env = "MOCK_ISSUER_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Listen address. Loopback by default: this server is for local use.
    #[arg(
        long = "bind",
        env = "BIND_ADDR",
        value_name = "BIND_ADDR",
        default_value = "127.0.0.1:7000"
    )]
    bind: SocketAddr,

    /// The issuer URL (`iss`, and the base of every endpoint) when clients reach the server
    /// under another address than BIND_ADDR (in a container, behind a proxy). Overrides the
    /// config file's `issuer`.
    #[arg(long, env = "MOCK_ISSUER_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,

    /// Serve GET /admin/stats and POST /admin/rotate-key (refused unless bound to loopback).
    /// They answer only requests to a loopback Host that carry `Authorization: Bearer
    /// <admin token>`; without --admin-token a random token is made and printed at start.
    #[arg(long)]
    admin: bool,

    /// The admin token (at least 16 characters of A-Z a-z 0-9 - . _ ~ + /). Default: 32
    /// random bytes, hex-encoded, printed to stderr at start. Ignored without --admin (so
    /// an exported variable does not stop a plain run).
    #[arg(
        long,
        env = "MOCK_ISSUER_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,

    /// Also write the admin token to this file (mode 0600, no trailing newline) before
    /// serving, for scripts: `curl -H "Authorization: Bearer $(cat PATH)" ...`.
    #[arg(long, value_name = "PATH", requires = "admin")]
    admin_token_file: Option<PathBuf>,

    /// Serve an mTLS token endpoint too (RFC 8705: a local CA made at start, tokens bound
    /// to the client's certificate), and write to this directory the CA (`ca.pem`), a
    /// client certificate for every configured client (`CLIENT_ID.pem`, its key
    /// `CLIENT_ID.key`, mode 0600) and the endpoint's URL (`token_endpoint`). Created if
    /// missing. Needed by `mtls = true` in the configuration.
    #[arg(long, env = "MOCK_ISSUER_MTLS_DIR", value_name = "DIR")]
    mtls_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Get an access token from a running issuer with client credentials and print it
    /// (with --count, that many distinct tokens, one per line).
    Token {
        /// The issuer (its discovery document gives the token endpoint).
        #[arg(long, env = "MOCK_ISSUER_URL", default_value = "http://127.0.0.1:7000")]
        issuer: String,
        /// Client id.
        #[arg(long, env = "AUTH_SERVER_MYBFF_CLIENT_ID")]
        client_id: String,
        /// Client secret.
        #[arg(long, env = "AUTH_SERVER_MYBFF_CLIENT_SECRET", hide_env_values = true)]
        client_secret: String,
        /// Space-separated scopes (default: all the client may have).
        #[arg(long, env = "AUTH_SERVER_MYBFF_SCOPE")]
        scope: Option<String>,
        /// How many tokens to get, one request each over one connection, printed one per
        /// line as they arrive. Each is distinct (its own `jti`; a repeat is an error), for
        /// load tests that need many valid tokens. Progress goes to stderr.
        #[arg(long, default_value_t = NonZeroU32::MIN, value_name = "N")]
        count: NonZeroU32,
    },
    /// Print a JWT's header and claims. Does NOT verify the signature.
    Decode {
        /// The compact JWT.
        token: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Token {
            issuer,
            client_id,
            client_secret,
            scope,
            count,
        }) => {
            let client = TokenClient {
                client_id: &client_id,
                secret: &client_secret,
                scope: scope.as_deref(),
            };
            fetch_tokens(&issuer, &client, count).await
        }
        Some(Command::Decode { token }) => decode(&token),
        None => match cli
            .admin
            .then(|| Admin::new(cli.admin_token, cli.admin_token_file))
            .transpose()
        {
            Ok(admin) => serve(cli.config, cli.bind, cli.public_url, admin, cli.mtls_dir).await,
            Err(message) => Err(message),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mock-issuer: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `--admin` with its token, checked (or generated) before anything is bound.
struct Admin {
    token: AdminToken,
    /// Made here rather than given by the operator, who then needs to be shown it.
    generated: bool,
    token_file: Option<PathBuf>,
}

impl Admin {
    fn new(token: Option<String>, token_file: Option<PathBuf>) -> Result<Self, String> {
        let (token, generated) = match token {
            Some(value) => (
                AdminToken::new(value)
                    .map_err(|e| format!("MOCK_ISSUER_ADMIN_TOKEN (--admin-token): {e}"))?,
                false,
            ),
            None => (AdminToken::generate().map_err(|e| e.to_string())?, true),
        };
        Ok(Admin {
            token,
            generated,
            token_file,
        })
    }

    /// Shows a generated token on stderr (outside the log on purpose: it is shown once, to
    /// whoever started the server) and writes the token file. Called once the listener is
    /// bound and before the first request is served, so a script that waits for the server
    /// finds the file.
    fn publish(&self) -> Result<(), String> {
        if self.generated {
            eprintln!("mock-issuer: admin token: {}", self.token.expose_secret());
        } else {
            eprintln!(
                "mock-issuer: admin token: as given by --admin-token / MOCK_ISSUER_ADMIN_TOKEN"
            );
        }
        if let Some(path) = &self.token_file {
            write_secret_file(path, self.token.expose_secret())
                .map_err(|e| format!("cannot write --admin-token-file {}: {e}", path.display()))?;
            eprintln!("mock-issuer: admin token written to {}", path.display());
        }
        Ok(())
    }
}

/// Writes `secret` to `path` readable by the owner only, atomically: a script polling for
/// the file never reads half a token.
fn write_secret_file(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // A leftover from a crashed run (or a planted symlink) is removed, and the file is
    // created new, so the 0600 mode below always applies.
    let _ = std::fs::remove_file(&partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

async fn serve(
    config: Option<PathBuf>,
    bind: SocketAddr,
    public_url: Option<String>,
    admin: Option<Admin>,
    mtls_dir: Option<PathBuf>,
) -> Result<(), String> {
    // Held to the end: its drop flushes the trace export.
    let _telemetry = service_kit::init_tracing("mock-issuer")?;
    let path = config.ok_or("no configuration: pass --config PATH or set MOCK_ISSUER_CONFIG")?;
    if admin.is_some() && !bind.ip().is_loopback() {
        return Err(format!(
            "--admin is refused on {bind}: the admin endpoints are for local scripts only, bind to loopback (BIND_ADDR=127.0.0.1:PORT)"
        ));
    }
    let mut config = IssuerConfig::load(&path).map_err(|e| e.to_string())?;
    // The directory turns the mTLS endpoint on; `mtls = true` alone would serve an
    // endpoint no client has a certificate for. Its certificate names 127.0.0.1 and
    // localhost, the URL it publishes is 127.0.0.1's: loopback only.
    if mtls_dir.is_some() && !bind.ip().is_loopback() {
        return Err(format!(
            "--mtls-dir (MOCK_ISSUER_MTLS_DIR) is refused on {bind}: the mTLS endpoint is \
             served on loopback only (BIND_ADDR=127.0.0.1:PORT)"
        ));
    }
    if mtls_dir.is_some() {
        config.mtls = true;
    } else if config.mtls {
        return Err(format!(
            "{}: mtls = true needs MOCK_ISSUER_MTLS_DIR (--mtls-dir), where the client \
             certificates are written",
            path.display()
        ));
    }
    let client_ids: Vec<String> = config.clients.iter().map(|c| c.client_id.clone()).collect();
    if let Some(url) = public_url {
        config.issuer = Some(url);
        config
            .validate()
            .map_err(|e| format!("MOCK_ISSUER_PUBLIC_URL: {e}"))?;
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (BIND_ADDR): {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let issuer = MockIssuer::new(config, bound).map_err(|e| e.to_string())?;
    if let Some(admin) = &admin {
        admin.publish()?;
    }
    let app = issuer.router(admin.as_ref().map(|a| a.token.clone()));
    let mtls = issuer
        .serve_mtls(bound, app.clone())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(dir) = &mtls_dir {
        write_mtls_files(&issuer, dir, &client_ids)?;
    }
    tracing::info!(
        issuer = issuer.issuer(),
        admin = admin.is_some(),
        mtls = issuer.mtls_token_endpoint(),
        "mock-issuer ready on http://{bound}"
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(service_kit::shutdown_signal())
        .await;
    if let Some(task) = mtls {
        task.abort();
    }
    served.map_err(|e| format!("server error: {e}"))?;
    tracing::info!("mock-issuer stopped");
    Ok(())
}

/// The mTLS endpoint's files (`--mtls-dir`): the CA, a certificate and key per client,
/// the endpoint's URL. A client id that is not a plain file name gets no certificate.
fn write_mtls_files(
    issuer: &MockIssuer,
    dir: &std::path::Path,
    client_ids: &[String],
) -> Result<(), String> {
    let failed = |what: &str, e: std::io::Error| {
        format!(
            "cannot write {what} in MOCK_ISSUER_MTLS_DIR (--mtls-dir) {}: {e}",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| failed("the directory", e))?;
    let (Some(ca), Some(endpoint)) = (issuer.mtls_ca_pem(), issuer.mtls_token_endpoint()) else {
        return Err("the mTLS endpoint did not start".into());
    };
    // Each file whole or not at all (a script may still read the last run's), the
    // owner's only.
    write_secret_file(&dir.join("ca.pem"), &ca).map_err(|e| failed("ca.pem", e))?;
    write_secret_file(&dir.join("token_endpoint"), &endpoint)
        .map_err(|e| failed("token_endpoint", e))?;
    // `ca` would overwrite the CA's file.
    let plain = |id: &str| {
        !id.is_empty()
            && id != "ca"
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    };
    for id in client_ids {
        if !plain(id) {
            tracing::warn!(client_id = %id, "no client certificate written: not a plain file name");
            continue;
        }
        let Some(pair) = issuer.issue_client_certificate(id) else {
            return Err(format!("no client certificate for {id}"));
        };
        write_secret_file(&dir.join(format!("{id}.pem")), &pair.certificate)
            .map_err(|e| failed(&format!("{id}.pem"), e))?;
        write_secret_file(&dir.join(format!("{id}.key")), &pair.key)
            .map_err(|e| failed(&format!("{id}.key"), e))?;
    }
    eprintln!(
        "mock-issuer: mTLS token endpoint {endpoint}; CA and client certificates in {}",
        dir.display()
    );
    Ok(())
}

/// Who asks for tokens, as the `token` subcommand was told.
struct TokenClient<'a> {
    client_id: &'a str,
    secret: &'a str,
    scope: Option<&'a str>,
}

/// How often `token --count` reports progress on stderr.
const PROGRESS_EVERY: u32 = 1000;

/// Finds the token endpoint once, then asks it for `count` tokens one after the other with
/// one HTTP client (one kept-alive connection), printing each as it arrives.
async fn fetch_tokens(
    issuer: &str,
    client: &TokenClient<'_>,
    count: NonZeroU32,
) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let endpoint = token_endpoint(&http, issuer).await?;
    let count = count.get();
    // Only the many-token case reports progress and keeps tokens to check: a single token
    // prints exactly as before.
    let mut seen = HashSet::new();
    for n in 1..=count {
        let token = request_token(&http, &endpoint, client).await?;
        if count > 1 {
            if !seen.insert(token.clone()) {
                return Err(format!(
                    "token {n} of {count} repeats an earlier one: the issuer does not make distinct tokens"
                ));
            }
            if n % PROGRESS_EVERY == 0 || n == count {
                eprintln!("mock-issuer: {n}/{count} tokens");
            }
        }
        println!("{token}");
    }
    Ok(())
}

async fn token_endpoint(http: &reqwest::Client, issuer: &str) -> Result<String, String> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery: serde_json::Value = http
        .get(&discovery_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| {
            format!("cannot read {discovery_url} (is the issuer running? `just issuer`): {e}")
        })?
        .json()
        .await
        .map_err(|e| format!("{discovery_url}: {e}"))?;
    discovery["token_endpoint"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "discovery document has no token_endpoint".to_owned())
}

async fn request_token(
    http: &reqwest::Client,
    endpoint: &str,
    client: &TokenClient<'_>,
) -> Result<String, String> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = client.scope {
        form.push(("scope", scope));
    }
    let response = http
        .post(endpoint)
        .basic_auth(
            form_urlencoded::byte_serialize(client.client_id.as_bytes()).collect::<String>(),
            Some(form_urlencoded::byte_serialize(client.secret.as_bytes()).collect::<String>()),
        )
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("token request to {endpoint} failed: {e}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("token response is not JSON: {e}"))?;
    match body["access_token"].as_str() {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => Err(format!(
            "token request refused ({status}): {} {}",
            body["error"].as_str().unwrap_or("?"),
            body["error_description"].as_str().unwrap_or("")
        )),
    }
}

fn decode(token: &str) -> Result<(), String> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(format!(
            "not a compact JWS: expected 3 dot-separated parts, found {}",
            parts.len()
        ));
    }
    for (name, part) in [("header", parts[0]), ("claims", parts[1])] {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("{name} is not base64url: {e}"))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{name} is not JSON: {e}"))?;
        let pretty = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        println!("{name}: {pretty}");
    }
    println!("(signature not verified)");
    Ok(())
}
