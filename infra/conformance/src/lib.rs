//! A black-box conformance kit for OAuth 2.0 resource servers.
//!
//! The kit runs its own issuer (the workspace's mock issuer, in process) and holds its keys,
//! so it can mint tokens that are wrong in exactly one way: another algorithm, a tricked
//! `kid`, a claim of the wrong type, an expired or future token, a wrong `iss`/`aud`/`typ`,
//! an unknown `crit`, oversized parts, odd scope shapes, broken DPoP proofs. It sends them to
//! a target URL of any resource server configured to trust that issuer (any language, any
//! framework: only HTTP is seen) and judges each answer: the status, the `WWW-Authenticate`
//! challenges (RFC 6750 section 3, RFC 9449 section 7.1), no echo of the token, and the
//! RFC 9728 protected resource metadata.
//!
//! The [`catalogue`] is the one copy of the cases; the system suite `tests/attacks.rs`
//! drives my-service through it with the strict expectations, and the `conformance` binary
//! drives any server through it and writes a table and JUnit XML ([`report`]).
//!
//! Each case has a [`Severity`]: a `must` case fails as `must` only when the server
//! accepts what it must refuse (or refuses the one thing it must accept, a valid token);
//! any other difference (400 instead of 401, a missing challenge parameter) fails as
//! `should`, so a report separates holes from style. Each case names the standard its
//! verdict rests on ([`Case::basis`]); where the standards allow more than one answer
//! ([`Check::AnyOf`]), each passes. A run in which the valid token (or the valid DPoP
//! proof) is refused proves nothing about the refusals: [`Report::inconclusive`] says so.

pub mod catalogue;
pub mod challenge;
pub mod dpop;
pub mod report;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_issuer::keys::{Algorithm, SigningKey};
use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::{Value, json};

pub use catalogue::{CASES, Case, Check, Fault, Group, Want};

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A case's request could not be built (a key operation failed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

impl From<mock_issuer::KeyError> for KitError {
    fn from(e: mock_issuer::KeyError) -> Self {
        KitError::Build(e.into())
    }
}

impl From<mock_issuer::KeyError> for BuildError {
    fn from(e: mock_issuer::KeyError) -> Self {
        BuildError(e.to_string())
    }
}

/// Why the kit could not run (as opposed to a target failing cases).
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The issuer did not start.
    #[error("the kit's issuer did not start: {0}")]
    Issuer(#[from] mock_issuer::StartError),
    /// Setting up keys or tokens failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A setting is unusable.
    #[error("{0}")]
    Setting(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
}

/// Whether a failure is a security hole or a difference of shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Accepting this request is a security failure (or, for a valid token, refusing it
    /// makes the server unusable).
    Must,
    /// The exact status or challenge shape (interoperability, RFC conformance).
    Should,
}

impl Severity {
    /// `must` or `should`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Must => "must",
            Severity::Should => "should",
        }
    }
}

/// The token shape the target expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// AWS Cognito access tokens (`token_use: access`, no `aud`).
    Cognito,
    /// RFC 9068 JWT access tokens (`typ: at+jwt`, `aud`).
    Rfc9068,
    /// RFC 9068-shaped tokens, but only the profile-independent cases run: for a server that
    /// checks signature, `iss`, `aud`, times and scope and nothing profile-specific.
    Generic,
}

impl Profile {
    /// Whether a case written for `applies` runs under this profile.
    pub fn runs(self, applies: catalogue::Applies) -> bool {
        use catalogue::Applies;
        match applies {
            Applies::Any => true,
            Applies::Cognito => self == Profile::Cognito,
            Applies::Rfc9068 => self == Profile::Rfc9068,
        }
    }

    fn issuer_profile(self) -> IssuerProfile {
        match self {
            Profile::Cognito => IssuerProfile::Cognito,
            Profile::Rfc9068 | Profile::Generic => IssuerProfile::Rfc9068,
        }
    }
}

/// What the kit's tokens look like.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The token shape.
    pub profile: Profile,
    /// The scope the target requires: one RFC 6749 scope token (`MyService/weather_read`,
    /// Auth0's `read:messages`, IdentityServer's `api1`).
    pub scope: String,
    /// The `aud` of RFC 9068 and generic tokens: as given, else the resource part of a
    /// `RESOURCE/NAME` scope. `None` (generic only): the tokens carry no `aud` and the
    /// audience cases are skipped.
    pub audience: Option<String>,
    /// The client the tokens are minted for (`sub`, `client_id`).
    pub client_id: String,
}

/// Whether `scope` is one RFC 6749 section 3.3 scope token:
/// `1*( %x21 / %x23-5B / %x5D-7E )` (printable ASCII but space, `"` and `\`).
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

impl Settings {
    /// Settings for `scope` (one RFC 6749 scope token) under `profile`. The audience is
    /// `audience`, else the resource part of a `RESOURCE/NAME` scope; RFC 9068 needs one
    /// (its tokens always carry `aud`), the generic profile runs without (and skips the
    /// audience cases), Cognito tokens carry none.
    pub fn new(profile: Profile, scope: &str, audience: Option<&str>) -> Result<Self, KitError> {
        if !is_scope_token(scope) {
            return Err(KitError::Setting(format!(
                "--scope {scope:?}: expected one RFC 6749 scope token (printable ASCII without                  space, '\"' or '\\'), e.g. MyService/weather_read, read:messages or api1"
            )));
        }
        let from_scope = scope
            .rsplit_once('/')
            .filter(|(resource, name)| !resource.is_empty() && !name.is_empty())
            .map(|(resource, _)| resource);
        let audience = audience.or(from_scope).map(str::to_owned);
        if profile == Profile::Rfc9068 && audience.is_none() {
            return Err(KitError::Setting(format!(
                "--scope {scope:?} has no RESOURCE/ part to take the audience from: give                  --audience (RFC 9068 tokens always carry aud)"
            )));
        }
        Ok(Settings {
            profile,
            scope: scope.to_owned(),
            audience,
            client_id: "conformance-kit".to_owned(),
        })
    }

    /// A scope of the same resource that the target does not require (for
    /// `insufficient_scope`).
    pub fn other_scope(&self) -> String {
        match self.scope.rsplit_once('/') {
            Some((resource, _)) => format!("{resource}/conformance_other"),
            None => "conformance_other".to_owned(),
        }
    }

    /// Whether `case` runs with these settings: its profile ([`Profile::runs`]), and the
    /// audience cases also under the generic profile when there is an audience.
    pub fn runs(&self, case: &Case) -> bool {
        if case.audience {
            return self.audience.is_some()
                && matches!(self.profile, Profile::Rfc9068 | Profile::Generic);
        }
        self.profile.runs(case.applies)
    }

    /// The issuer configuration: one resource server with the required and the other
    /// scope, one client allowed both, with `client_secret`. (A scope that is not
    /// `RESOURCE/NAME` is not one the issuer's token endpoint can grant; the kit signs its
    /// tokens itself and does not need it to.)
    pub fn issuer_config(&self, client_secret: &str) -> IssuerConfig {
        let (resource, name) = self
            .scope
            .rsplit_once('/')
            .unwrap_or(("conformance", &self.scope));
        let mut config = IssuerConfig::new(self.profile.issuer_profile())
            .with_resource_server(resource, [name, "conformance_other"])
            .with_client(ClientConfig::new(
                &self.client_id,
                client_secret,
                [
                    format!("{resource}/{name}"),
                    format!("{resource}/conformance_other"),
                ],
            ));
        if let Some(rs) = config.resource_servers.first_mut() {
            rs.audience = self.audience.clone();
        }
        config
    }
}

/// The server under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// The protected URL the cases GET.
    pub url: String,
    /// Its RFC 9728 resource identifier (default: the URL's origin).
    pub resource: String,
    /// Run the DPoP group: `Some(true)`/`Some(false)` as told, `None` to detect it from the
    /// target's challenges and metadata.
    pub dpop: Option<bool>,
}

impl Target {
    /// `url` with the default resource (its origin) and DPoP detection.
    pub fn new(url: &str) -> Result<Self, KitError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| KitError::Setting(format!("--target {url:?}: {e}")))?;
        Ok(Target {
            url: url.to_owned(),
            resource: parsed.origin().ascii_serialization(),
            dpop: None,
        })
    }

    /// The RFC 9728 section 3.1 metadata URL of the resource: the well-known path inserted
    /// between the host and the resource's path (a lone `/` path dropped).
    pub fn metadata_url(&self) -> Result<String, KitError> {
        let parsed = reqwest::Url::parse(&self.resource)
            .map_err(|e| KitError::Setting(format!("--resource {:?}: {e}", self.resource)))?;
        let path = match parsed.path() {
            "/" => "",
            p => p,
        };
        let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
        Ok(format!(
            "{}/.well-known/oauth-protected-resource{path}{query}",
            parsed.origin().ascii_serialization()
        ))
    }
}

/// The kit: its issuer (keys rotated so a removed key exists), an attacker's key, DPoP
/// keys, and a listener for URLs that must never be fetched.
pub struct Kit {
    issuer: IssuerHandle,
    settings: Settings,
    client_secret: String,
    attacker: SigningKey,
    prover: dpop::Prover,
    other_prover: dpop::Prover,
    removed_key_token: String,
    sink_url: String,
    sink_hits: Arc<AtomicUsize>,
    sink_task: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
    https: Option<Https>,
}

/// The https front of the issuer ([`Kit::start_https`]).
struct Https {
    ca_pem: String,
    failures: Arc<tls::HandshakeFailures>,
    task: tokio::task::JoinHandle<()>,
}

/// A random hex secret (32 bytes).
fn random_secret() -> Result<String, KitError> {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KitError::Setting("no randomness for the client secret".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Kit {
    /// Starts the kit's issuer on `listen` (port 0: any) for `settings`.
    pub async fn start(settings: Settings, listen: SocketAddr) -> Result<Kit, KitError> {
        let secret = random_secret()?;
        let issuer = mock_issuer::start_on(settings.issuer_config(&secret), listen).await?;
        Kit::with_issuer(issuer, settings, secret).await
    }

    /// Starts the kit's issuer behind https on `listen` (port 0: any): its URL is
    /// `https://127.0.0.1:PORT` (the listen address when it is a specific one), with a
    /// certificate for that address, `::1` and `localhost` signed by a throwaway CA whose
    /// PEM is [`Kit::ca_pem`]. See the `tls` module for how it is served.
    pub async fn start_https(settings: Settings, listen: SocketAddr) -> Result<Kit, KitError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| KitError::Setting(format!("cannot listen on {listen}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| KitError::Setting(format!("cannot listen on {listen}: {e}")))?;
        // Bound to every interface, the address is no URL: loopback with the same port is
        // (as the mock issuer does for plain http).
        let specific = (!bound.ip().is_unspecified()).then_some(bound.ip());
        let host = match specific {
            Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
            None => "127.0.0.1".to_owned(),
        };
        let certificates = tls::Certificates::generate(specific)?;
        let secret = random_secret()?;
        let mut config = settings.issuer_config(&secret);
        config.issuer = Some(format!("https://{host}:{}", bound.port()));
        // The plain-http issuer behind the terminator, on loopback only.
        let issuer = mock_issuer::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let backend = issuer.addr();
        let ca_pem = certificates.ca_pem.clone();
        let failures = Arc::new(tls::HandshakeFailures::default());
        let task = tokio::spawn({
            let failures = failures.clone();
            async move { tls::terminate(listener, &certificates, backend, failures).await }
        });
        let mut kit = Kit::with_issuer(issuer, settings, secret).await?;
        kit.https = Some(Https {
            ca_pem,
            failures,
            task,
        });
        Ok(kit)
    }

    /// With [`Kit::start_https`], the PEM of the CA that signed the issuer's certificate:
    /// what the target must trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.https.as_ref().map(|h| h.ca_pem.as_str())
    }

    /// With [`Kit::start_https`], how many TLS handshakes with the issuer failed and the
    /// last error: usually a target that does not trust [`Kit::ca_pem`].
    pub fn tls_handshake_failures(&self) -> Option<(usize, String)> {
        self.https.as_ref().and_then(|h| h.failures.get())
    }

    /// Uses an issuer started elsewhere (the system suites start theirs with their own
    /// clients). Rotates its keys: the first key signs a token and is removed from the JWKS
    /// for good, the second stays published beside the third, the current one.
    pub async fn with_issuer(
        issuer: IssuerHandle,
        settings: Settings,
        client_secret: String,
    ) -> Result<Kit, KitError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(KitError::Http)?;
        let mut kit = Kit {
            removed_key_token: String::new(),
            attacker: SigningKey::generate(Algorithm::RS256).map_err(BuildError::from)?,
            prover: dpop::Prover::new()?,
            other_prover: dpop::Prover::new()?,
            sink_url: String::new(),
            sink_hits: Arc::new(AtomicUsize::new(0)),
            sink_task: tokio::spawn(async {}),
            issuer,
            settings,
            client_secret,
            http,
            https: None,
        };
        let (header, claims) = kit.template_raw(&[&kit.settings.scope]);
        kit.removed_key_token = kit.issuer.sign(&header, &claims)?;
        kit.issuer.rotate_key()?;
        kit.issuer.drop_previous_keys();
        // Signing records the key's latest `exp`: it stays published after the next rotation.
        let (header, claims) = kit.template_raw(&[&kit.settings.scope]);
        kit.issuer.sign(&header, &claims)?;
        kit.issuer.rotate_key()?;
        kit.start_sink().await?;
        Ok(kit)
    }

    async fn start_sink(&mut self) -> Result<(), KitError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| KitError::Setting(format!("cannot bind the sink listener: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| KitError::Setting(format!("sink listener: {e}")))?;
        let hits = self.sink_hits.clone();
        let app = axum::Router::new().fallback(move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "{}"
            }
        });
        self.sink_task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        self.sink_url = format!("http://{addr}");
        Ok(())
    }

    /// The issuer.
    pub fn issuer(&self) -> &IssuerHandle {
        &self.issuer
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The client's id and secret at the kit's token endpoint.
    pub fn client(&self) -> (&str, &str) {
        (&self.settings.client_id, &self.client_secret)
    }

    fn template_raw(&self, scopes: &[&str]) -> (Value, Value) {
        let (header, mut claims) = self.issuer.token_template(&self.settings.client_id, scopes);
        match (&self.settings.audience, self.settings.profile) {
            (_, Profile::Cognito) => {}
            (Some(audience), _) => claims["aud"] = json!(audience),
            (None, _) => {
                if let Some(o) = claims.as_object_mut() {
                    o.remove("aud");
                }
            }
        }
        (header, claims)
    }

    /// Whether the target speaks DPoP: its challenges to a request without credentials
    /// offer the `DPoP` scheme, or its metadata lists DPoP algorithms.
    pub async fn detect_dpop(&self, target: &Target) -> bool {
        if let Ok(r) = self.http.get(&target.url).send().await
            && let Ok(challenges) = challenge::parse_all(
                r.headers()
                    .get_all("www-authenticate")
                    .iter()
                    .map(|v| v.as_bytes()),
            )
            && challenges.iter().any(|c| c.is("DPoP"))
        {
            return true;
        }
        if let Ok(url) = target.metadata_url()
            && let Ok(r) = self.http.get(url).send().await
            && let Ok(v) = r.json::<Value>().await
        {
            return v["dpop_signing_alg_values_supported"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
        }
        false
    }

    /// Waits until the target answers any HTTP request, polling until `within` has passed.
    pub async fn wait_for(&self, target: &Target, within: Duration) -> Result<(), KitError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.http.get(&target.url).send().await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(KitError::Setting(format!(
                        "the target {} did not answer within {}s: {e}",
                        target.url,
                        within.as_secs()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Why the metadata group is skipped: `None` when the target serves something at its
    /// metadata URL (a 200, judged by the group's cases); otherwise what it answered.
    /// RFC 9728 is optional, so a server without a document is not failed for it.
    async fn metadata_absent(&self, url: &str) -> Option<String> {
        match self.http.get(url).send().await {
            Ok(r) if r.status().as_u16() == 200 => None,
            Ok(r) => Some(format!("GET {url} answered {}", r.status().as_u16())),
            Err(e) => Some(format!("GET {url} got no answer: {e}")),
        }
    }

    /// Runs every case of `cases` that applies to the settings ([`Settings::runs`]) and,
    /// for the DPoP group, to a DPoP target, and for the metadata group, to a target that
    /// publishes a document, in order, and returns their outcomes and what was skipped.
    pub async fn run(&self, target: &Target, cases: &[Case]) -> Report {
        let dpop = match target.dpop {
            Some(d) => d,
            None => self.detect_dpop(target).await,
        };
        let metadata_url = target.metadata_url().unwrap_or_default();
        let mut skipped = Vec::new();
        let wants_metadata = cases
            .iter()
            .any(|c| c.group == Group::Metadata && self.settings.runs(c));
        let metadata = if wants_metadata {
            match self.metadata_absent(&metadata_url).await {
                None => true,
                Some(why) => {
                    skipped.push(format!(
                        "metadata group skipped (no RFC 9728 document: {why})"
                    ));
                    false
                }
            }
        } else {
            true
        };
        if self.settings.audience.is_none()
            && self.settings.profile == Profile::Generic
            && cases.iter().any(|c| c.audience)
        {
            skipped
                .push("audience cases skipped (no --audience: the tokens carry no aud)".to_owned());
        }
        let ctx = Ctx {
            kit: self,
            target,
            dpop,
            metadata_url,
        };
        let mut outcomes = Vec::new();
        for case in cases {
            if !self.settings.runs(case)
                || (case.needs_dpop && !dpop)
                || (case.group == Group::Metadata && !metadata)
            {
                continue;
            }
            outcomes.push(ctx.run_case(case).await);
        }
        Report {
            outcomes,
            dpop,
            skipped,
        }
    }
}

impl Drop for Kit {
    fn drop(&mut self) {
        // The listener stops with the kit (the issuer stops with its handle).
        self.sink_task.abort();
        if let Some(https) = &self.https {
            https.task.abort();
        }
    }
}

/// What builders and judges see.
pub struct Ctx<'a> {
    kit: &'a Kit,
    target: &'a Target,
    /// Whether the DPoP group runs.
    pub dpop: bool,
    /// The target's RFC 9728 metadata URL.
    pub metadata_url: String,
}

impl Ctx<'_> {
    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.kit.settings
    }

    /// The target.
    pub fn target(&self) -> &Target {
        self.target
    }

    /// The kit's issuer.
    pub fn issuer(&self) -> &IssuerHandle {
        &self.kit.issuer
    }

    /// The URL of the listener that must never be called.
    pub fn sink(&self) -> &str {
        &self.kit.sink_url
    }

    /// The attacker's key (never published by the issuer).
    pub fn attacker(&self) -> &SigningKey {
        &self.kit.attacker
    }

    /// The client's DPoP key.
    pub fn prover(&self) -> &dpop::Prover {
        &self.kit.prover
    }

    /// Another DPoP key.
    pub fn other_prover(&self) -> &dpop::Prover {
        &self.kit.other_prover
    }

    /// A token signed by a key the issuer published once and has since removed.
    pub fn removed_key_token(&self) -> String {
        self.kit.removed_key_token.clone()
    }

    /// The issuer's normal header and claims with the required scope.
    pub fn template(&self) -> (Value, Value) {
        self.kit.template_raw(&[&self.kit.settings.scope])
    }

    /// The normal header and claims with only `scope`.
    pub fn template_with_scope(&self, scope: &str) -> (Value, Value) {
        self.kit.template_raw(&[scope])
    }

    /// A token signed by the issuer after `edit` changed header and claims.
    pub fn signed(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> Result<String, BuildError> {
        let (mut h, mut c) = self.template();
        edit(&mut h, &mut c);
        Ok(self.kit.issuer.sign(&h, &c)?)
    }

    /// A valid token whose signature the issuer's current key computed under `alg` (the
    /// header's `alg` says so) while its JWK keeps the key's own `alg`.
    pub fn signed_as(&self, alg: jsonwebtoken::Algorithm) -> Result<String, BuildError> {
        let (mut h, c) = self.template();
        h["alg"] = json!(format!("{alg:?}"));
        Ok(self.kit.issuer.sign_with_alg(alg, &h, &c)?)
    }

    /// A token signed by the issuer over raw header and payload bytes.
    pub fn signed_raw(&self, header: &[u8], payload: &[u8]) -> Result<String, BuildError> {
        Ok(self.kit.issuer.sign_raw(header, payload)?)
    }

    /// The normal header, as bytes.
    pub fn header_bytes(&self) -> Vec<u8> {
        self.template().0.to_string().into_bytes()
    }

    /// The normal claims, as text.
    pub fn claims_text(&self) -> String {
        self.template().1.to_string()
    }

    /// A token signed by the attacker's key after `edit`.
    pub fn attacker_signed(
        &self,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> Result<String, BuildError> {
        let (mut h, mut c) = self.template();
        edit(&mut h, &mut c);
        Ok(self.kit.attacker.sign_json(&h, &c)?)
    }

    /// An HS256 token keyed with `secret` that claims the issuer's kid.
    pub fn hmac(&self, secret: &[u8]) -> Result<String, BuildError> {
        let (h, c) = self.template();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = h["kid"].as_str().map(str::to_owned);
        let key = jsonwebtoken::EncodingKey::from_secret(secret)
            .map_err(|e| BuildError(format!("HS256 key: {e}")))?;
        jsonwebtoken::encode(&header, &c, &key).map_err(|e| BuildError(format!("HS256: {e}")))
    }

    /// A valid token.
    pub fn valid(&self) -> Result<String, BuildError> {
        self.signed(|_, _| {})
    }

    /// A valid token bound to the client's DPoP key (`cnf.jkt`).
    pub fn bound(&self) -> Result<String, BuildError> {
        let jkt = self.kit.prover.jkt.clone();
        self.signed(|_, c| c["cnf"] = json!({ "jkt": jkt }))
    }

    /// A proof of the client's key for GET on the target and `token`, after `edit`.
    pub fn proof_with(
        &self,
        token: &str,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> Result<String, BuildError> {
        self.kit.prover.proof_with("GET", &self.htu(), token, edit)
    }

    /// The `htu` of the target: its URL without query and fragment (RFC 9449 section 4.2).
    pub fn htu(&self) -> String {
        let url = &self.target.url;
        url.split(['?', '#']).next().unwrap_or(url).to_owned()
    }

    async fn run_case(&self, case: &Case) -> Outcome {
        let mut outcome = Outcome {
            id: case.id,
            name: case.name,
            group: case.group,
            severity: case.severity,
            http_stack: case.http_stack,
            expected: case.check.describe(),
            got: String::new(),
            verdict: Verdict::Pass,
            answer: None,
        };
        if let Check::SinkUntouched = case.check {
            let hits = self.kit.sink_hits.load(Ordering::SeqCst);
            outcome.got = format!("{hits} requests to the jku/x5u URLs");
            if hits > 0 {
                outcome.verdict = Verdict::Fail(Severity::Must);
            }
            return outcome;
        }
        if let Some(Fault::JwksDownNewKey) = case.fault {
            if let Err(e) = self.kit.issuer.rotate_key() {
                outcome.verdict = Verdict::Error;
                outcome.got = format!("cannot rotate the kit's key: {e}");
                return outcome;
            }
            self.kit.issuer.set_jwks_available(false);
        }
        let answer = match (case.build)(self) {
            Ok(req) => self.send(&req).await,
            Err(e) => Err(format!("cannot build the request: {e}")),
        };
        if case.fault.is_some() {
            self.kit.issuer.set_jwks_available(true);
        }
        match answer {
            Err(e) => {
                outcome.verdict = Verdict::Error;
                outcome.got = e;
            }
            Ok((answer, secret)) => {
                outcome.got = answer.describe();
                outcome.verdict = case.judge(self, &answer);
                if answer.echoes(&secret) {
                    outcome.got.push_str("; echoes the token");
                    outcome.verdict = Verdict::Fail(Severity::Must);
                }
                outcome.answer = Some(answer);
            }
        }
        outcome
    }

    async fn send(&self, req: &Req) -> Result<(Answer, String), String> {
        let base = req.url.as_deref().unwrap_or(&self.target.url);
        let url = match &req.query {
            Some(q) if base.contains('?') => format!("{base}&{q}"),
            Some(q) => format!("{base}?{q}"),
            None => base.to_owned(),
        };
        let times = if req.repeat { 2 } else { 1 };
        let mut last = None;
        for _ in 0..times {
            let mut builder = self.kit.http.get(&url);
            if let Some(host) = &req.host {
                builder = builder.header(reqwest::header::HOST, host);
            }
            for value in &req.authorization {
                let value = reqwest::header::HeaderValue::from_bytes(value)
                    .map_err(|e| format!("unsendable Authorization value: {e}"))?;
                builder = builder.header(reqwest::header::AUTHORIZATION, value);
            }
            for proof in &req.dpop {
                builder = builder.header("dpop", proof);
            }
            for i in 0..req.extra_headers {
                builder = builder.header(format!("x-filler-{i}"), "x");
            }
            let response = builder
                .send()
                .await
                .map_err(|e| format!("no answer: {e}"))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_vec();
            last = Some(Answer {
                status,
                headers,
                body,
            });
        }
        last.map(|a| (a, req.secret.clone()))
            .ok_or_else(|| "no request sent".to_owned())
    }
}

/// A request a case sends: GET on the target (or another URL) with raw Authorization
/// values, DPoP proofs, filler headers and a query; `secret` is the token text that must
/// not come back.
#[derive(Debug, Clone, Default)]
pub struct Req {
    /// Another URL than the target's (the metadata document).
    pub url: Option<String>,
    /// Authorization header values, raw bytes, one header each.
    pub authorization: Vec<Vec<u8>>,
    /// DPoP header values.
    pub dpop: Vec<String>,
    /// How many `x-filler-N` headers to add.
    pub extra_headers: usize,
    /// A query string.
    pub query: Option<String>,
    /// The token that must not be echoed.
    pub secret: String,
    /// Send it twice and judge the second answer (replays).
    pub repeat: bool,
    /// A `Host` header other than the target's.
    pub host: Option<String>,
}

/// A target's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Every challenge of every `WWW-Authenticate` header, or the parse error.
    pub fn challenges(&self) -> Result<Vec<challenge::Challenge>, String> {
        challenge::parse_all(
            self.headers
                .get_all("www-authenticate")
                .iter()
                .map(|v| v.as_bytes()),
        )
    }

    /// `STATUS` and the challenges, for the table.
    pub fn describe(&self) -> String {
        let challenges: Vec<String> = self
            .headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if challenges.is_empty() {
            self.status.to_string()
        } else {
            format!("{} {}", self.status, challenges.join(" | "))
        }
    }

    /// Whether a header or the body contains the token or a long piece of it.
    pub fn echoes(&self, secret: &str) -> bool {
        let text = String::from_utf8_lossy(&self.body);
        secret
            .split(['.', ' ', '\t'])
            .filter(|p| p.len() >= 16)
            .any(|piece| {
                text.contains(piece)
                    || self
                        .headers
                        .values()
                        .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(piece))
            })
    }

    /// Whether the request was accepted (2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As expected.
    Pass,
    /// Not as expected; the severity of what went wrong.
    Fail(Severity),
    /// The kit could not send the request or got no answer.
    Error,
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case id.
    pub id: &'static str,
    /// What it sends.
    pub name: &'static str,
    /// Its group.
    pub group: Group,
    /// Its severity.
    pub severity: Severity,
    /// Decided by the HTTP stack rather than the auth middleware.
    pub http_stack: bool,
    /// The expected answer, as text.
    pub expected: String,
    /// The answer, as text.
    pub got: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The answer itself, if there was one.
    pub answer: Option<Answer>,
}

/// All outcomes of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// In catalogue order.
    pub outcomes: Vec<Outcome>,
    /// Whether the DPoP group ran.
    pub dpop: bool,
    /// What was skipped and why (the metadata group, the audience cases), one line each.
    pub skipped: Vec<String>,
}

impl Report {
    /// The outcomes that did not pass.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.verdict != Verdict::Pass)
    }

    /// Why the run cannot be trusted, if it cannot: the valid token (or, when the DPoP
    /// group ran, the valid DPoP proof) was refused, so every case that expects a refusal
    /// passes whatever the server checks. A server that refuses everything is not a good
    /// server, it is a misconfigured one (issuer, audience, scope, clock).
    pub fn inconclusive(&self) -> Option<String> {
        let refused = |id: &str| {
            self.outcomes
                .iter()
                .find(|o| o.id == id)
                .filter(|o| !o.answer.as_ref().is_some_and(Answer::accepted))
                .map(|o| o.got.clone())
        };
        if let Some(got) = refused("valid-token") {
            return Some(format!(
                "the valid token was refused (got {got}), so every case that expects a \
                 refusal passes vacuously; check that the target trusts the kit's issuer and \
                 requires the --scope and --audience given"
            ));
        }
        if self.dpop
            && let Some(got) = refused("dpop-valid")
        {
            return Some(format!(
                "the valid DPoP proof was refused (got {got}), so every DPoP case that \
                 expects a refusal passes vacuously; check the target's DPoP settings (its \
                 public URL for htu, the ES256 algorithm, nonces)"
            ));
        }
        None
    }

    /// Counts: (passed, failed must, failed should, errors).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |v: Verdict| self.outcomes.iter().filter(|o| o.verdict == v).count();
        (
            count(Verdict::Pass),
            count(Verdict::Fail(Severity::Must)),
            count(Verdict::Fail(Severity::Should)),
            count(Verdict::Error),
        )
    }
}
