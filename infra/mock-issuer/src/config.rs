//! Issuer configuration: a TOML file parsed once at start into typed values.
//!
//! The model follows AWS Cognito: *resource servers* own scopes (`MyService` owns
//! `weather_read`, giving the scope `MyService/weather_read`), and *clients* have a secret
//! and a list of scopes they may ask for. A client that asks for no scope gets all of its
//! allowed scopes (Cognito's behaviour). Every validation error names the TOML key that is
//! wrong, so a broken file stops the issuer with a message that says where to look.
//!
//! ```toml
//! profile = "cognito"            # or "rfc9068"
//! algorithm = "RS256"            # or "ES256"
//! token_lifetime_secs = 3600
//! cors_allowed_origins = ["http://127.0.0.1:7062"]
//! dpop_nonce = false             # true: DPoP proofs must carry the issuer's nonce
//! trust_domain = "https://trust.example"   # run a Transaction Token Service for it
//! txn_token_lifetime_secs = 60
//! mtls = true                    # an mTLS token endpoint (RFC 8705) with a local CA
//!                                # (library only: tests get client certificates from it)
//!
//! [[resource_servers]]
//! identifier = "MyService"
//! scopes = ["weather_read", "weather_write"]
//!
//! [[clients]]
//! client_id = "my-bff"
//! client_secret_env = "AUTH_SERVER_MYBFF_CLIENT_SECRET"   # or client_secret = "..."
//! allowed_scopes = ["MyService/weather_read"]
//!
//! # private_key_jwt (RFC 7523 section 2.2): the client's public keys, as a JWKS in a JSON
//! # string (`jwks`) or a JWKS JSON file read at start (`jwks_file`, relative to this file).
//! [[clients]]
//! client_id = "signing-client"
//! jwks_file = "signing-client.jwks.json"
//! allowed_scopes = ["MyService/weather_read"]
//! dpop_bound_access_tokens = true   # refuse token requests without a DPoP proof
//! opaque_access_tokens = true       # random opaque tokens, checked at /introspect
//!
//! # Federated client authentication: the client presents a JWT another issuer minted for
//! # it (a Kubernetes service-account token, a SPIFFE JWT-SVID), with `client_id`.
//! [[clients]]
//! client_id = "platform-client"
//! allowed_scopes = ["MyService/weather_read"]
//! federated = { issuer = "https://platform.example", jwks_uri = "https://platform.example/jwks", subject = "system:serviceaccount:ns:my-bff" }
//! # optional in `federated`: assertion_type (default
//! # "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", or
//! # "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"), single_use (default false)
//!
//! # A web application (the BFF) whose users log in: the authorization code grant with
//! # PKCE, refresh tokens, and RP-initiated logout. Redirect URIs match exactly.
//! [[clients]]
//! client_id = "web-bff"
//! client_secret = "..."
//! allowed_scopes = ["MyService/weather_read"]
//! allowed_grant_types = ["authorization_code", "refresh_token", "client_credentials"]
//! redirect_uris = ["http://127.0.0.1:7248/bff/callback"]
//! post_logout_redirect_uris = ["http://127.0.0.1:7248/"]
//!
//! # Users who can sign in at the login page (see `crate::users`).
//! [[users]]
//! username = "alice"
//! password_env = "MOCK_ISSUER_ALICE_PASSWORD"   # or password = "..."
//! ```
//!
//! A client needs at least one way to authenticate: a secret, keys, a federated trust, or
//! several. `dpop_nonce = true` at the top level makes every DPoP proof carry a nonce the
//! issuer handed out (RFC 9449 section 8).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keys::Algorithm;
use crate::users::{RawUser, UserConfig};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 section 2.2).
pub const ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `client_assertion_type` of a SPIFFE JWT-SVID, as Keycloak's federated client
/// authentication names it.
pub const ASSERTION_TYPE_JWT_SPIFFE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";

/// JWK members that only a private (or symmetric) key has (RFC 7518 section 6). A public
/// key set that contains one is refused: the key was pasted from the wrong place.
pub(crate) const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The shape of the access tokens the issuer mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenProfile {
    /// AWS Cognito access tokens: header `{alg, kid}`, `token_use: "access"`, no `aud`.
    #[default]
    Cognito,
    /// RFC 9068 JWT access tokens: header `typ: at+jwt`, `aud` = the resource server.
    Rfc9068,
}

/// How the `scope` claim is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeFormat {
    /// One space-separated string (RFC 9068, Cognito).
    #[default]
    String,
    /// A JSON array of strings (IdentityServer / Duende's default).
    Array,
}

/// Why the configuration was refused. Every variant names the key that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read issuer config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not have the expected shape.
    #[error("invalid issuer config {origin}: {message}")]
    Syntax {
        /// The file (or "inline").
        origin: String,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value is present but not acceptable.
    #[error("invalid issuer config: `{key}`: {reason}")]
    Invalid {
        /// The TOML key, e.g. `clients[0].allowed_scopes[1]`.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    issuer: Option<String>,
    path_prefix: Option<String>,
    #[serde(default)]
    scope_format: ScopeFormat,
    #[serde(default)]
    profile: TokenProfile,
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default = "default_lifetime_secs")]
    token_lifetime_secs: u64,
    key_file: Option<PathBuf>,
    #[serde(default)]
    cors_allowed_origins: Vec<String>,
    #[serde(default)]
    dpop_nonce: bool,
    #[serde(default)]
    resource_servers: Vec<RawResourceServer>,
    #[serde(default)]
    clients: Vec<RawClient>,
    #[serde(default)]
    users: Vec<RawUser>,
    trust_domain: Option<String>,
    #[serde(default = "default_txn_token_lifetime_secs")]
    txn_token_lifetime_secs: u64,
    #[serde(default)]
    mtls: bool,
}

fn default_lifetime_secs() -> u64 {
    3600
}

fn default_txn_token_lifetime_secs() -> u64 {
    60
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResourceServer {
    identifier: String,
    audience: Option<String>,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    client_id: String,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    /// A JWKS as a JSON string.
    jwks: Option<String>,
    jwks_file: Option<PathBuf>,
    federated: Option<RawFederated>,
    #[serde(default)]
    dpop_bound_access_tokens: bool,
    #[serde(default)]
    opaque_access_tokens: bool,
    #[serde(default)]
    allowed_scopes: Vec<String>,
    #[serde(default = "default_grant_types")]
    allowed_grant_types: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFederated {
    issuer: String,
    jwks_uri: String,
    subject: String,
    #[serde(default = "default_assertion_type")]
    assertion_type: String,
    #[serde(default)]
    single_use: bool,
}

fn default_assertion_type() -> String {
    ASSERTION_TYPE_JWT_BEARER.to_owned()
}

/// Parses a JWKS given as JSON text, refusing private key members. `key` names the TOML key
/// in errors.
fn parse_jwks(text: &str, key: &str) -> Result<JwkSet, ConfigError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| invalid(key, format!("not a JSON Web Key Set: {e}")))?;
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(key, "not a JSON Web Key Set: no \"keys\" array"))?;
    for (j, k) in keys.iter().enumerate() {
        if let Some(member) = PRIVATE_JWK_MEMBERS.iter().find(|m| k.get(**m).is_some()) {
            return Err(invalid(
                format!("{key}.keys[{j}]"),
                format!("has the private member {member:?}: register public keys only"),
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| invalid(key, format!("not a JSON Web Key Set: {e}")))
}

fn default_grant_types() -> Vec<String> {
    vec!["client_credentials".to_owned()]
}

/// The grant types the token endpoint serves, and so the values `allowed_grant_types` may
/// hold.
pub const GRANT_TYPES: [&str; 4] = [
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:token-exchange",
];

/// A resource server (an API) and the scopes it defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer {
    /// Identifier, the prefix of its scopes (e.g. `MyService`).
    pub identifier: String,
    /// The `aud` of rfc9068 tokens that carry its scopes (default: the identifier), e.g.
    /// `api1` for an IdentityServer-style API resource.
    pub audience: Option<String>,
    /// Scope names without the identifier prefix (e.g. `weather_read`).
    pub scopes: Vec<String>,
}

impl ResourceServer {
    /// The `aud` value for this server.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.identifier)
    }

    /// The full scope values this server defines (`MyService/weather_read`, ...).
    pub fn full_scopes(&self) -> impl Iterator<Item = String> + '_ {
        self.scopes
            .iter()
            .map(move |s| format!("{}/{}", self.identifier, s))
    }
}

/// A client allowed to use the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client id.
    pub client_id: String,
    /// The client secret (never printed by `Debug`), for `client_secret_basic` and
    /// `client_secret_post`. `None`: the client authenticates otherwise.
    pub client_secret: Option<String>,
    /// The client's public keys for `private_key_jwt` (RFC 7523 section 2.2).
    pub jwks: Option<JwkSet>,
    /// Another issuer whose JWTs authenticate this client (federated client assertions).
    pub federated: Option<FederatedTrust>,
    /// RFC 9449 section 5.2: refuse token requests from this client without a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    /// Issue opaque access tokens (random, high-entropy, not a JWS) instead of JWTs: the
    /// issuer keeps their contents, and a resource server checks them at `/introspect`
    /// (RFC 7662).
    pub opaque_access_tokens: bool,
    /// Full scope values the client may request.
    pub allowed_scopes: Vec<String>,
    /// Grant types the client may use: `client_credentials` (the default),
    /// `authorization_code` (users log in; needs `redirect_uris`), `refresh_token`.
    pub allowed_grant_types: Vec<String>,
    /// Where `/authorize` may send the user back (compared exactly, RFC 6749 section
    /// 3.1.2, as OAuth 2.1 requires).
    pub redirect_uris: Vec<String>,
    /// Where `/end_session` may send the user after logout (OpenID Connect RP-Initiated
    /// Logout 1.0), compared exactly.
    pub post_logout_redirect_uris: Vec<String>,
}

/// Trust in JWTs minted by another issuer (a platform) for a client: a Kubernetes
/// service-account token, a SPIFFE JWT-SVID, a workload identity token. The client sends
/// the JWT as `client_assertion` together with its `client_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedTrust {
    /// The platform's issuer: the assertion's `iss` must equal it.
    pub issuer: String,
    /// Where the platform publishes its keys (fetched over HTTP, cached).
    pub jwks_uri: String,
    /// The assertion's `sub` must equal it (e.g. `system:serviceaccount:ns:my-bff`).
    pub subject: String,
    /// The `client_assertion_type` the client must send ([`ASSERTION_TYPE_JWT_BEARER`] by
    /// default, or [`ASSERTION_TYPE_JWT_SPIFFE`]).
    pub assertion_type: String,
    /// Refuse an assertion whose `jti` was already used (and require `jti`). Off by
    /// default: a platform token is re-read from its file and sent many times until the
    /// platform rotates it, so single use would break every client after its first token.
    pub single_use: bool,
}

impl FederatedTrust {
    /// Trust JWTs from `issuer` (keys at `jwks_uri`) whose `sub` is `subject`, sent as
    /// `jwt-bearer` assertions, reusable until they expire.
    pub fn new(
        issuer: impl Into<String>,
        jwks_uri: impl Into<String>,
        subject: impl Into<String>,
    ) -> Self {
        FederatedTrust {
            issuer: issuer.into(),
            jwks_uri: jwks_uri.into(),
            subject: subject.into(),
            assertion_type: ASSERTION_TYPE_JWT_BEARER.to_owned(),
            single_use: false,
        }
    }
}

impl ClientConfig {
    /// A client that may use client credentials with the given scopes.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        allowed_scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ClientConfig {
            client_secret: Some(client_secret.into()),
            ..Self::without_secret(client_id, allowed_scopes)
        }
    }

    /// A client without a secret: give it keys ([`Self::with_jwks`]) or a federated trust
    /// ([`Self::with_federated`]) before use.
    pub fn without_secret(
        client_id: impl Into<String>,
        allowed_scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ClientConfig {
            client_id: client_id.into(),
            client_secret: None,
            jwks: None,
            federated: None,
            dpop_bound_access_tokens: false,
            opaque_access_tokens: false,
            allowed_scopes: allowed_scopes.into_iter().map(Into::into).collect(),
            allowed_grant_types: default_grant_types(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
        }
    }

    /// Sets the grant types the client may use (see [`GRANT_TYPES`] for the values).
    pub fn with_grant_types(
        mut self,
        grant_types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_grant_types = grant_types.into_iter().map(Into::into).collect();
        self
    }

    /// Registers the redirect URIs of the authorization code flow.
    pub fn with_redirect_uris(mut self, uris: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// Registers the post-logout redirect URIs of RP-initiated logout.
    pub fn with_post_logout_redirect_uris(
        mut self,
        uris: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.post_logout_redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// Registers public keys for `private_key_jwt`.
    pub fn with_jwks(mut self, jwks: JwkSet) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Trusts another issuer's JWTs for this client.
    pub fn with_federated(mut self, trust: FederatedTrust) -> Self {
        self.federated = Some(trust);
        self
    }

    /// Requires (or not) a DPoP proof on every token request of this client.
    pub fn with_dpop_bound_access_tokens(mut self, required: bool) -> Self {
        self.dpop_bound_access_tokens = required;
        self
    }

    /// Issues opaque access tokens (checked by introspection) instead of JWTs.
    pub fn with_opaque_access_tokens(mut self, opaque: bool) -> Self {
        self.opaque_access_tokens = opaque;
        self
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("jwks", &self.jwks)
            .field("federated", &self.federated)
            .field("dpop_bound_access_tokens", &self.dpop_bound_access_tokens)
            .field("opaque_access_tokens", &self.opaque_access_tokens)
            .field("allowed_scopes", &self.allowed_scopes)
            .field("allowed_grant_types", &self.allowed_grant_types)
            .field("redirect_uris", &self.redirect_uris)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .finish()
    }
}

/// The issuer's whole configuration.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The `iss` value and base URL of every endpoint. `None`: `http://{bound address}`.
    pub issuer: Option<String>,
    /// Serve discovery and the JWKS under this path (e.g. `/eu-west-1_AbCdEf123`, as
    /// Cognito serves them under the user pool id); the default issuer is then
    /// `http://{bound address}{path_prefix}`. The token endpoint stays at the root, as
    /// Cognito's lives on the pool's domain.
    pub path_prefix: Option<String>,
    /// How the `scope` claim is written.
    pub scope_format: ScopeFormat,
    /// Token shape.
    pub profile: TokenProfile,
    /// Signing algorithm.
    pub algorithm: Algorithm,
    /// Access token lifetime.
    pub token_lifetime: Duration,
    /// PEM private key; `None`: a key is generated at start.
    pub key_file: Option<PathBuf>,
    /// Browser origins allowed to call the endpoints (Swagger UI's "Authorize").
    pub cors_allowed_origins: Vec<String>,
    /// Require a server-provided nonce in every DPoP proof (RFC 9449 section 8) from the
    /// start; tests can switch it at run time with `IssuerHandle::require_dpop_nonce`.
    pub dpop_nonce: bool,
    /// APIs and their scopes.
    pub resource_servers: Vec<ResourceServer>,
    /// Clients.
    pub clients: Vec<ClientConfig>,
    /// Users who can sign in at the login page (the authorization code flow).
    pub users: Vec<UserConfig>,
    /// The trust domain of the Transaction Token Service (see `crate::txn_tokens`):
    /// `None` (the default) issues no Transaction Tokens.
    pub trust_domain: Option<String>,
    /// Lifetime of a Transaction Token (default 60 s; never beyond the subject token's).
    pub txn_token_lifetime: Duration,
    /// Serve an mTLS token endpoint (RFC 8705) with a local CA made at start (see
    /// `crate::mtls`).
    pub mtls: bool,
}

impl IssuerConfig {
    /// A configuration with no clients or resource servers, default profile and lifetime.
    pub fn new(profile: TokenProfile) -> Self {
        IssuerConfig {
            issuer: None,
            path_prefix: None,
            scope_format: ScopeFormat::default(),
            profile,
            algorithm: Algorithm::default(),
            token_lifetime: Duration::from_secs(default_lifetime_secs()),
            key_file: None,
            cors_allowed_origins: Vec::new(),
            dpop_nonce: false,
            resource_servers: Vec::new(),
            clients: Vec::new(),
            users: Vec::new(),
            trust_domain: None,
            txn_token_lifetime: Duration::from_secs(default_txn_token_lifetime_secs()),
            mtls: false,
        }
    }

    /// Serves the mTLS token endpoint (see [`IssuerConfig::mtls`]).
    pub fn with_mtls(mut self) -> Self {
        self.mtls = true;
        self
    }

    /// Runs a Transaction Token Service for `trust_domain` (see
    /// [`IssuerConfig::trust_domain`]).
    pub fn with_trust_domain(mut self, trust_domain: impl Into<String>) -> Self {
        self.trust_domain = Some(trust_domain.into());
        self
    }

    /// Adds a resource server.
    pub fn with_resource_server(
        mut self,
        identifier: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.resource_servers.push(ResourceServer {
            audience: None,
            identifier: identifier.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Serves discovery and the JWKS under `prefix` (see [`IssuerConfig::path_prefix`]).
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Writes the `scope` claim as `format`.
    pub fn with_scope_format(mut self, format: ScopeFormat) -> Self {
        self.scope_format = format;
        self
    }

    /// Requires a DPoP nonce from the start (see [`IssuerConfig::dpop_nonce`]).
    pub fn with_dpop_nonce(mut self, required: bool) -> Self {
        self.dpop_nonce = required;
        self
    }

    /// Adds a client.
    pub fn with_client(mut self, client: ClientConfig) -> Self {
        self.clients.push(client);
        self
    }

    /// Adds a user who can sign in at the login page.
    pub fn with_user(mut self, user: UserConfig) -> Self {
        self.users.push(user);
        self
    }

    /// Reads and validates a TOML file; `client_secret_env` is looked up in the process
    /// environment. Relative `key_file` and `jwks_file` paths are relative to the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text, &path.display().to_string(), path.parent(), |name| {
            std::env::var(name).ok()
        })?;
        // A relative key file is relative to the config file, not to the working directory.
        if let (Some(key), Some(dir)) = (&config.key_file, path.parent())
            && key.is_relative()
        {
            config.key_file = Some(dir.join(key));
        }
        Ok(config)
    }

    /// Parses and validates TOML text. `env` resolves `client_secret_env` names; a relative
    /// `jwks_file` is relative to the working directory.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::parse(text, origin, None, env)
    }

    fn parse(
        text: &str,
        origin: &str,
        base_dir: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut clients = Vec::with_capacity(raw.clients.len());
        for (i, c) in raw.clients.into_iter().enumerate() {
            let secret = match (c.client_secret, c.client_secret_env) {
                (Some(s), None) => Some(s),
                (None, Some(var)) => {
                    Some(env(&var).filter(|v| !v.is_empty()).ok_or_else(|| {
                        invalid(
                            format!("clients[{i}].client_secret_env"),
                            format!("environment variable {var} is not set or empty"),
                        )
                    })?)
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("clients[{i}]"),
                        "set either client_secret or client_secret_env, not both",
                    ));
                }
                (None, None) => None,
            };
            let jwks = match (c.jwks, c.jwks_file) {
                (Some(text), None) => Some(parse_jwks(&text, &format!("clients[{i}].jwks"))?),
                (None, Some(file)) => {
                    let key = format!("clients[{i}].jwks_file");
                    let file = match base_dir {
                        Some(dir) if file.is_relative() => dir.join(file),
                        _ => file,
                    };
                    let text = std::fs::read_to_string(&file).map_err(|e| {
                        invalid(&key, format!("cannot read {}: {e}", file.display()))
                    })?;
                    Some(parse_jwks(&text, &key)?)
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("clients[{i}]"),
                        "set either jwks or jwks_file, not both",
                    ));
                }
                (None, None) => None,
            };
            clients.push(ClientConfig {
                client_id: c.client_id,
                client_secret: secret,
                jwks,
                federated: c.federated.map(|f| FederatedTrust {
                    issuer: f.issuer,
                    jwks_uri: f.jwks_uri,
                    subject: f.subject,
                    assertion_type: f.assertion_type,
                    single_use: f.single_use,
                }),
                dpop_bound_access_tokens: c.dpop_bound_access_tokens,
                opaque_access_tokens: c.opaque_access_tokens,
                allowed_scopes: c.allowed_scopes,
                allowed_grant_types: c.allowed_grant_types,
                redirect_uris: c.redirect_uris,
                post_logout_redirect_uris: c.post_logout_redirect_uris,
            });
        }
        let users = raw
            .users
            .into_iter()
            .enumerate()
            .map(|(i, u)| u.resolve(i, &env))
            .collect::<Result<Vec<_>, _>>()?;
        let config = IssuerConfig {
            issuer: raw.issuer,
            path_prefix: raw.path_prefix,
            scope_format: raw.scope_format,
            profile: raw.profile,
            algorithm: raw.algorithm,
            token_lifetime: Duration::from_secs(raw.token_lifetime_secs),
            key_file: raw.key_file,
            cors_allowed_origins: raw.cors_allowed_origins,
            dpop_nonce: raw.dpop_nonce,
            resource_servers: raw
                .resource_servers
                .into_iter()
                .map(|r| ResourceServer {
                    audience: r.audience,
                    identifier: r.identifier,
                    scopes: r.scopes,
                })
                .collect(),
            clients,
            users,
            trust_domain: raw.trust_domain,
            txn_token_lifetime: Duration::from_secs(raw.txn_token_lifetime_secs),
            mtls: raw.mtls,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the cross-field rules. Called by the parsers; call it after building a
    /// configuration in code (the issuer's start does).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            let ok = (issuer.starts_with("http://") || issuer.starts_with("https://"))
                && !issuer.ends_with('/');
            if !ok {
                return Err(invalid(
                    "issuer",
                    "must be an http(s) URL without a trailing slash",
                ));
            }
        }
        if let Some(prefix) = &self.path_prefix {
            let ok = prefix.len() > 1
                && prefix.starts_with('/')
                && !prefix.ends_with('/')
                && prefix[1..].split('/').all(|segment| {
                    !segment.is_empty()
                        && segment
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                });
            if !ok {
                return Err(invalid(
                    "path_prefix",
                    "must be a path such as /eu-west-1_AbCdEf123 (leading slash, no trailing \
                     slash, letters, digits and -._~ only)",
                ));
            }
        }
        let secs = self.token_lifetime.as_secs();
        if !(1..=86_400).contains(&secs) {
            return Err(invalid(
                "token_lifetime_secs",
                "must be between 1 and 86400 seconds",
            ));
        }
        for (i, origin) in self.cors_allowed_origins.iter().enumerate() {
            if origin == "*" || origin.ends_with('/') || !origin.starts_with("http") {
                return Err(invalid(
                    format!("cors_allowed_origins[{i}]"),
                    "must be an exact origin such as http://127.0.0.1:7062 (no wildcard, no path)",
                ));
            }
        }
        let mut defined = BTreeSet::new();
        for (i, rs) in self.resource_servers.iter().enumerate() {
            if rs.identifier.is_empty() || rs.identifier.contains(char::is_whitespace) {
                return Err(invalid(
                    format!("resource_servers[{i}].identifier"),
                    "must be non-empty and contain no whitespace",
                ));
            }
            for (j, s) in rs.scopes.iter().enumerate() {
                if s.is_empty() || s.contains(char::is_whitespace) || s.contains('/') {
                    return Err(invalid(
                        format!("resource_servers[{i}].scopes[{j}]"),
                        "must be non-empty, without whitespace or '/'",
                    ));
                }
            }
            defined.extend(rs.full_scopes());
        }
        let mut ids = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            if c.client_id.is_empty() || c.client_id.chars().any(char::is_control) {
                return Err(invalid(
                    format!("clients[{i}].client_id"),
                    "must be non-empty and printable",
                ));
            }
            if !ids.insert(c.client_id.as_str()) {
                return Err(invalid(
                    format!("clients[{i}].client_id"),
                    format!("duplicate client id {:?}", c.client_id),
                ));
            }
            if c.client_secret.is_none() && c.jwks.is_none() && c.federated.is_none() {
                return Err(invalid(
                    format!("clients[{i}].client_secret"),
                    "missing: set client_secret or client_secret_env, jwks or jwks_file, or \
                     federated (at least one way to authenticate)",
                ));
            }
            if c.client_secret.as_ref().is_some_and(|s| s.len() < 8) {
                return Err(invalid(
                    format!("clients[{i}].client_secret"),
                    "must be at least 8 characters",
                ));
            }
            if let Some(jwks) = &c.jwks {
                if jwks.keys.is_empty() {
                    return Err(invalid(format!("clients[{i}].jwks"), "has no keys"));
                }
                for (j, k) in jwks.keys.iter().enumerate() {
                    let asymmetric = matches!(
                        k.algorithm,
                        AlgorithmParameters::RSA(_)
                            | AlgorithmParameters::EllipticCurve(_)
                            | AlgorithmParameters::OctetKeyPair(_)
                    );
                    if !asymmetric {
                        return Err(invalid(
                            format!("clients[{i}].jwks.keys[{j}]"),
                            "must be an RSA, EC or OKP (Ed25519) public key",
                        ));
                    }
                }
            }
            if let Some(f) = &c.federated {
                let key = |k: &str| format!("clients[{i}].federated.{k}");
                if !is_http_url(&f.issuer) {
                    return Err(invalid(key("issuer"), "must be an http(s) URL"));
                }
                if !is_http_url(&f.jwks_uri) {
                    return Err(invalid(key("jwks_uri"), "must be an http(s) URL"));
                }
                if f.subject.is_empty() {
                    return Err(invalid(key("subject"), "must be non-empty"));
                }
                if f.assertion_type != ASSERTION_TYPE_JWT_BEARER
                    && f.assertion_type != ASSERTION_TYPE_JWT_SPIFFE
                {
                    return Err(invalid(
                        key("assertion_type"),
                        format!(
                            "must be {ASSERTION_TYPE_JWT_BEARER} or {ASSERTION_TYPE_JWT_SPIFFE}"
                        ),
                    ));
                }
            }
            for (j, s) in c.allowed_scopes.iter().enumerate() {
                if !defined.contains(s) {
                    return Err(invalid(
                        format!("clients[{i}].allowed_scopes[{j}]"),
                        format!("scope {s:?} is not defined by any resource server"),
                    ));
                }
            }
            for (j, g) in c.allowed_grant_types.iter().enumerate() {
                if !GRANT_TYPES.contains(&g.as_str()) {
                    return Err(invalid(
                        format!("clients[{i}].allowed_grant_types[{j}]"),
                        format!(
                            "grant type {g:?} is not served (use {})",
                            GRANT_TYPES.join(", ")
                        ),
                    ));
                }
            }
            let uri_lists = [
                ("redirect_uris", &c.redirect_uris),
                ("post_logout_redirect_uris", &c.post_logout_redirect_uris),
            ];
            for (name, uris) in uri_lists {
                for (j, uri) in uris.iter().enumerate() {
                    if !is_redirect_uri(uri) {
                        return Err(invalid(
                            format!("clients[{i}].{name}[{j}]"),
                            "must be an absolute http(s) URL without a fragment (compared \
                             exactly, as the client sends it)",
                        ));
                    }
                }
            }
        }
        crate::users::validate(&self.users)?;
        Ok(())
    }

    /// The client with this id.
    pub(crate) fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Every scope the resource servers define, in configuration order.
    pub fn all_scopes(&self) -> Vec<String> {
        self.resource_servers
            .iter()
            .flat_map(ResourceServer::full_scopes)
            .collect()
    }
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// RFC 6749 section 3.1.2: absolute, no fragment. Only http(s): the mock serves web
/// applications, not native apps with custom schemes.
fn is_redirect_uri(s: &str) -> bool {
    is_http_url(s) && !s.contains('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        profile = "rfc9068"
        [[resource_servers]]
        identifier = "MyService"
        scopes = ["weather_read"]
        [[clients]]
        client_id = "a"
        client_secret_env = "SECRET_A"
        allowed_scopes = ["MyService/weather_read"]
    "#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn secret_from_environment() {
        let c = IssuerConfig::from_toml(GOOD, "t", |n| {
            (n == "SECRET_A").then(|| "s3cret-value".to_owned())
        })
        .unwrap();
        assert_eq!(c.clients[0].client_secret.as_deref(), Some("s3cret-value"));
        assert_eq!(c.profile, TokenProfile::Rfc9068);
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (GOOD, "clients[0].client_secret_env"),
            (
                "[[clients]]\nclient_id = \"a\"\nclient_secret = \"long-enough\"\nallowed_scopes = [\"X/y\"]",
                "clients[0].allowed_scopes[0]",
            ),
            ("token_lifetime_secs = 0", "token_lifetime_secs"),
            ("issuer = \"http://x/\"", "issuer"),
            ("path_prefix = \"pool\"", "path_prefix"),
            ("path_prefix = \"/pool/\"", "path_prefix"),
            ("path_prefix = \"/a b\"", "path_prefix"),
            ("scope_format = \"list\"", "scope_format"),
            ("cors_allowed_origins = [\"*\"]", "cors_allowed_origins[0]"),
        ];
        for (text, key) in cases {
            let text: &str = text;
            let err = IssuerConfig::from_toml(text, "t", no_env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err:?} should name {key}");
        }
        let err = IssuerConfig::from_toml("bogus = 1", "t", no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        let err = IssuerConfig::from_toml("profile = \"azure\"", "t", no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("profile"), "{err}");
    }

    const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn client_toml(extra: &str) -> String {
        format!(
            "[[resource_servers]]\nidentifier = \"MyService\"\nscopes = [\"weather_read\"]\n\
             [[clients]]\nclient_id = \"c\"\nallowed_scopes = [\"MyService/weather_read\"]\n{extra}"
        )
    }

    #[test]
    fn users_redirect_uris_and_grant_types_parse() {
        let text = client_toml(
            "client_secret = \"long-enough\"\n\
             allowed_grant_types = [\"authorization_code\", \"refresh_token\"]\n\
             redirect_uris = [\"http://127.0.0.1:7248/bff/callback\"]\n\
             post_logout_redirect_uris = [\"http://127.0.0.1:7248/\"]\n\
             [[users]]\nusername = \"alice\"\npassword_env = \"ALICE_PW\"\nname = \"Alice\"",
        );
        let c = IssuerConfig::from_toml(&text, "t", |n| {
            (n == "ALICE_PW").then(|| "alice-dev-password".to_owned())
        })
        .unwrap();
        assert_eq!(
            c.clients[0].redirect_uris,
            ["http://127.0.0.1:7248/bff/callback"]
        );
        assert_eq!(
            c.clients[0].post_logout_redirect_uris,
            ["http://127.0.0.1:7248/"]
        );
        assert_eq!(c.users[0].sub, "alice", "sub defaults to the username");
        assert_eq!(c.users[0].password, "alice-dev-password");
        assert!(!format!("{c:?}").contains("alice-dev-password"));

        let cases = [
            (
                "client_secret = \"long-enough\"\nallowed_grant_types = [\"password\"]",
                "clients[0].allowed_grant_types[0]",
            ),
            (
                "client_secret = \"long-enough\"\nredirect_uris = [\"/callback\"]",
                "clients[0].redirect_uris[0]",
            ),
            (
                "client_secret = \"long-enough\"\nredirect_uris = [\"http://a/cb#x\"]",
                "clients[0].redirect_uris[0]",
            ),
            (
                "client_secret = \"long-enough\"\npost_logout_redirect_uris = [\"x\"]",
                "clients[0].post_logout_redirect_uris[0]",
            ),
            (
                "client_secret = \"long-enough\"\n[[users]]\nusername = \"a\"",
                "users[0].password",
            ),
            (
                "client_secret = \"long-enough\"\n[[users]]\nusername = \"a\"\npassword_env = \"NOPE\"",
                "users[0].password_env",
            ),
        ];
        for (extra, key) in cases {
            let err = IssuerConfig::from_toml(&client_toml(extra), "t", no_env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{extra}: {err:?} should name {key}");
        }
    }

    #[test]
    fn keys_federation_and_dpop_settings_parse() {
        let text = client_toml(&format!(
            "jwks = '{{\"keys\":[{EC_JWK}]}}'\ndpop_bound_access_tokens = true\n\
             federated = {{ issuer = \"https://platform.example\", jwks_uri = \
             \"http://127.0.0.1:1/jwks\", subject = \"spiffe://example/bff\", assertion_type = \
             \"{ASSERTION_TYPE_JWT_SPIFFE}\" }}"
        ));
        let c =
            IssuerConfig::from_toml(&format!("dpop_nonce = true\n{text}"), "t", no_env).unwrap();
        assert!(c.dpop_nonce);
        let client = &c.clients[0];
        assert_eq!(client.client_secret, None);
        assert_eq!(
            client.jwks.as_ref().unwrap().keys[0]
                .common
                .key_id
                .as_deref(),
            Some("k1")
        );
        assert!(client.dpop_bound_access_tokens);
        let trust = client.federated.as_ref().unwrap();
        assert_eq!(trust.subject, "spiffe://example/bff");
        assert_eq!(trust.assertion_type, ASSERTION_TYPE_JWT_SPIFFE);
        assert!(
            !trust.single_use,
            "federated assertions are reusable by default"
        );
    }

    #[test]
    fn a_relative_jwks_file_is_read_next_to_the_config() {
        let dir = std::env::temp_dir().join(format!("mock-issuer-jwks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keys.json"), format!("{{\"keys\":[{EC_JWK}]}}")).unwrap();
        let path = dir.join("issuer.toml");
        std::fs::write(&path, client_toml("jwks_file = \"keys.json\"")).unwrap();
        let c = IssuerConfig::load(&path).unwrap();
        assert_eq!(c.clients[0].jwks.as_ref().unwrap().keys.len(), 1);
        std::fs::write(&path, client_toml("jwks_file = \"missing.json\"")).unwrap();
        let err = IssuerConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("clients[0].jwks_file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_and_federation_errors_name_the_key() {
        let private = EC_JWK.replace("\"kid\"", "\"d\":\"AAAA\",\"kid\"");
        let cases = [
            (String::new(), "clients[0].client_secret"),
            (
                format!("jwks = '{{\"keys\":[{private}]}}'"),
                "clients[0].jwks.keys[0]",
            ),
            ("jwks = 'not json'".to_owned(), "clients[0].jwks"),
            (
                "jwks = '{\"keys\":[{\"kty\":\"oct\",\"x\":\"\"}]}'".to_owned(),
                "clients[0].jwks.keys[0]",
            ),
            ("jwks = '{\"keys\":[]}'".to_owned(), "clients[0].jwks"),
            (
                "jwks = '{\"keys\":[]}'\njwks_file = \"x.json\"".to_owned(),
                "clients[0]",
            ),
            (
                "federated = { issuer = \"platform\", jwks_uri = \"http://p/jwks\", subject = \"s\" }"
                    .to_owned(),
                "clients[0].federated.issuer",
            ),
            (
                "federated = { issuer = \"http://p\", jwks_uri = \"file:///jwks\", subject = \"s\" }"
                    .to_owned(),
                "clients[0].federated.jwks_uri",
            ),
            (
                "federated = { issuer = \"http://p\", jwks_uri = \"http://p/jwks\", subject = \"\" }"
                    .to_owned(),
                "clients[0].federated.subject",
            ),
            (
                "federated = { issuer = \"http://p\", jwks_uri = \"http://p/jwks\", subject = \"s\", \
                 assertion_type = \"saml\" }"
                    .to_owned(),
                "clients[0].federated.assertion_type",
            ),
        ];
        for (extra, key) in cases {
            let err = IssuerConfig::from_toml(&client_toml(&extra), "t", no_env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{extra}: {err:?} should name {key}");
        }
    }
}
