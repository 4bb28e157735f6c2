//! The `mock-issuer` binary as a user runs it: configuration errors name what is wrong,
//! `--admin` is loopback-only, the admin endpoints work with the token it prints and writes
//! (and not without it), `token` and `decode` print what they say, and SIGTERM stops the
//! server cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mock-issuer");

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("issuer.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mock-issuer-cli-{}-{name}", std::process::id()))
}

const CONFIG: &str = r#"
[[resource_servers]]
identifier = "MyService"
scopes = ["weather_read"]
[[clients]]
client_id = "cli-client"
client_secret_env = "CLI_TEST_SECRET"
allowed_scopes = ["MyService/weather_read"]
"#;

/// Kills the child if the test fails before it is stopped on purpose, so a failed assertion
/// never leaves a server holding a port or the test runner's output pipe.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_failing(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("MOCK_ISSUER_CONFIG")
        .env_remove("BIND_ADDR")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The container image is `FROM scratch`: no TLS roots. An issuer without federated
/// clients needs none, so it must start without them (it once built its platform-JWKS
/// HTTP client at start and exited with "cannot build the HTTP client").
#[test]
fn starts_without_tls_roots_when_no_client_is_federated() {
    let dir = scratch("no-roots");
    let config = write_config(&dir, CONFIG);
    let child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("CLI_TEST_SECRET", "cli-secret-123")
        .env("RUST_LOG", "info")
        // Where rustls looks for roots: nowhere, as in the image.
        .env("SSL_CERT_FILE", dir.join("no-such-bundle.pem"))
        .env("SSL_CERT_DIR", dir.join("no-such-dir"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let ready = BufReader::new(child.0.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("ready on "));
    let mut stderr = String::new();
    if !ready {
        use std::io::Read as _;
        let _ = child.0.stderr.take().unwrap().read_to_string(&mut stderr);
    }
    assert!(ready, "the issuer exited before it was ready: {stderr}");
}

#[test]
fn configuration_errors_name_the_variable_or_key() {
    let dir = scratch("errors");
    assert!(run_failing(&[], &[]).contains("MOCK_ISSUER_CONFIG"));
    let bad = write_config(&dir, "token_lifetime_secs = -5\n");
    let err = run_failing(&["--config", bad.to_str().unwrap()], &[]);
    assert!(err.contains("token_lifetime_secs"), "{err}");
    let good = write_config(&dir.join("good"), CONFIG);
    let err = run_failing(&["--config", good.to_str().unwrap()], &[]);
    assert!(err.contains("CLI_TEST_SECRET"), "{err}");
    let err = run_failing(
        &["--config", good.to_str().unwrap()],
        &[("BIND_ADDR", "not-an-address")],
    );
    assert!(err.contains("BIND_ADDR"), "{err}");
    let err = run_failing(
        &["--config", good.to_str().unwrap(), "--admin"],
        &[
            ("BIND_ADDR", "0.0.0.0:0"),
            ("CLI_TEST_SECRET", "cli-secret-123"),
        ],
    );
    assert!(err.contains("--admin is refused"), "{err}");
    let err = run_failing(
        &["--config", good.to_str().unwrap(), "--admin"],
        &[
            ("BIND_ADDR", "127.0.0.1:0"),
            ("CLI_TEST_SECRET", "cli-secret-123"),
            ("MOCK_ISSUER_ADMIN_TOKEN", "too-short"),
        ],
    );
    assert!(err.contains("MOCK_ISSUER_ADMIN_TOKEN"), "{err}");
    let err = run_failing(
        &[
            "--config",
            good.to_str().unwrap(),
            "--admin-token-file",
            "/dev/null",
        ],
        &[],
    );
    assert!(err.contains("--admin"), "{err}");
    let err = run_failing(&["decode", "abc"], &[]);
    assert!(err.contains("3 dot-separated parts"), "{err}");
}

/// Starts the issuer on a free loopback port with `config` and `args`, and returns it with
/// its base URL (from the ready line). Its stderr is left piped for the caller to read.
fn serve(config: &std::path::Path, args: &[&std::ffi::OsStr]) -> (KillOnDrop, String) {
    let child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("CLI_TEST_SECRET", "cli-secret-123")
        .env("RUST_LOG", "info")
        .env_remove("MOCK_ISSUER_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("issuer exited before it was ready")
            .unwrap();
        if let Some(rest) = line.split("ready on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    (child, base)
}

#[tokio::test]
async fn serves_admin_endpoints_token_and_decode_then_stops_on_sigterm() {
    let dir = scratch("serve");
    let config = write_config(&dir, CONFIG);
    let token_file = dir.join("admin-token");
    let _ = std::fs::remove_file(&token_file);
    let (mut child, base) = serve(
        &config,
        &[
            "--admin".as_ref(),
            "--admin-token-file".as_ref(),
            token_file.as_ref(),
        ],
    );
    // The generated admin token is printed to stderr; the rest of stderr is drained so the
    // server never blocks on a full pipe.
    let (printed_tx, printed_token) = std::sync::mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(token) = line.strip_prefix("mock-issuer: admin token: ") {
                let _ = printed_tx.send(token.to_owned());
            }
        }
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let out = tokio::process::Command::new(BIN)
        .args([
            "token",
            "--issuer",
            &base,
            "--client-id",
            "cli-client",
            "--client-secret",
            "cli-secret-123",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    let out = tokio::process::Command::new(BIN)
        .args(["decode", &token])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("\"token_use\": \"access\""), "{printed}");
    assert!(
        printed.contains("\"client_id\": \"cli-client\""),
        "{printed}"
    );

    let out = tokio::process::Command::new(BIN)
        .args([
            "token",
            "--issuer",
            &base,
            "--client-id",
            "cli-client",
            "--client-secret",
            "wrong",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_client"));

    let printed = printed_token.recv_timeout(Duration::from_secs(10)).unwrap();
    let admin_token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(
        printed, admin_token,
        "printed and written tokens are the same"
    );
    assert_eq!(admin_token.len(), 64, "32 random bytes, hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "token file readable by its owner only");
    }
    let refused = http
        .post(format!("{base}/admin/rotate-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let stats: serde_json::Value = http
        .get(format!("{base}/admin/stats"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["tokens_issued"]["cli-client"], 1);
    assert_eq!(stats["token_errors"], 1);
    let rotated: serde_json::Value = http
        .post(format!("{base}/admin/rotate-key"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks: serde_json::Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(jwks["keys"][0]["kid"], rotated["kid"]);

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

/// `token --count N` (for load tests) prints N distinct valid tokens, one per line, and its
/// progress on stderr; `--count 0` is refused.
#[tokio::test]
async fn token_count_prints_that_many_distinct_tokens() {
    let dir = scratch("count");
    let config = write_config(&dir, CONFIG);
    let (_child, base) = serve(&config, &[]);
    let token = |count: &str| {
        tokio::process::Command::new(BIN)
            .args(["token", "--issuer", &base, "--count", count])
            .args([
                "--client-id",
                "cli-client",
                "--client-secret",
                "cli-secret-123",
            ])
            .output()
    };

    let out = token("5").await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("5/5 tokens"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let tokens: Vec<&str> = stdout.lines().collect();
    assert_eq!(tokens.len(), 5, "{stdout}");
    assert!(tokens.iter().all(|t| t.split('.').count() == 3), "{stdout}");
    let distinct: std::collections::HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), 5, "every token is distinct");

    let out = token("0").await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--count"));
}

/// `--mtls-dir`: the mTLS endpoint (RFC 8705) of the binary, as `just up` runs it. The
/// written CA, certificate and key are all a client needs: its token is bound to that
/// certificate. The key is the owner's only; `mtls = true` without the directory is
/// refused, naming the variable.
#[tokio::test]
async fn mtls_dir_hands_out_certificates_whose_tokens_are_bound_to_them() {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt as _;

    let dir = scratch("mtls");
    let config = write_config(&dir, &format!("mtls = true\n{CONFIG}"));
    let err = run_failing(
        &["--config", config.to_str().unwrap()],
        &[
            ("BIND_ADDR", "127.0.0.1:0"),
            ("CLI_TEST_SECRET", "cli-secret-123"),
        ],
    );
    assert!(err.contains("MOCK_ISSUER_MTLS_DIR"), "{err}");

    let config = write_config(&dir, CONFIG);
    let certs = dir.join("certs");
    let (_issuer, base) = serve(&config, &["--mtls-dir".as_ref(), certs.as_os_str()]);
    let read = |name: &str| std::fs::read_to_string(certs.join(name)).unwrap();
    let endpoint = read("token_endpoint");
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let mode = std::fs::metadata(certs.join("cli-client.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let discovery =
        test_support::get_json(format!("{base}/.well-known/openid-configuration")).await;
    assert_eq!(
        discovery["mtls_endpoint_aliases"]["token_endpoint"],
        endpoint.as_str()
    );

    let (certificate, key) = (read("cli-client.pem"), read("cli-client.key"));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(read("ca.pem").as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(format!("{certificate}{key}").as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer: serde_json::Value = client
        .post(&endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "cli-client"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"].as_str().expect("a token");
    let claims = test_support::decode_part(token, 1);
    let der: String = certificate
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der));
    assert_eq!(claims["cnf"]["x5t#S256"], thumbprint.as_str());
}
