//! The attack catalogue: one line per case (kept so by `rustfmt::skip`). Each case has an
//! id, a group, a severity, the profile it applies to, how its request is built and what
//! the answer must be. `tests/attacks.rs` runs it against my-service with these
//! expectations; the `conformance` binary runs it against any server.
//!
//! Tokens are built with the kit issuer's real keys (so only the attacked property is
//! wrong), with an attacker's own key, or as raw bytes. A listener stands at the URLs that
//! `jku`, `x5u` and `jwk` headers point to; `jku-x5u-not-fetched` checks it got nothing.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::challenge::{Challenge, check_syntax};
use crate::{Answer, BuildError, Ctx, Req, Severity, Verdict, b64, now};

/// What a case is about (one JUnit testsuite each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// The JOSE header: `alg`, `kid`, `jku`/`x5u`/`jwk`, `crit`, `typ`.
    Header,
    /// The claims: times, `iss`, `aud`, `token_use`, `scope`, types.
    Claims,
    /// The compact serialization and the Authorization header.
    Encoding,
    /// The signature.
    Signature,
    /// DPoP (RFC 9449).
    Dpop,
    /// Statuses and challenges: 401 vs 403 vs 503, RFC 6750 section 3.
    Challenge,
    /// RFC 9728 protected resource metadata.
    Metadata,
}

impl Group {
    /// The group's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Header => "header",
            Group::Claims => "claims",
            Group::Encoding => "encoding",
            Group::Signature => "signature",
            Group::Dpop => "dpop",
            Group::Challenge => "challenge",
            Group::Metadata => "metadata",
        }
    }
}

/// The token profile a case is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Every profile.
    Any,
    /// Only Cognito targets (`token_use`).
    Cognito,
    /// Only RFC 9068 targets (`typ`, `aud`). The audience cases also run under the generic
    /// profile when an audience is given (the case's `audience` field, [`crate::Settings::runs`]).
    Rfc9068,
}

/// What the `WWW-Authenticate` challenges must say (besides being valid RFC 6750 / RFC
/// 9449 syntax, checked on every answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// No challenge at all (success, or refused before auth).
    Absent,
    /// A `Bearer` challenge, and no challenge with an `error` (no credentials).
    Bare,
    /// A `Bearer` challenge with this `error`.
    Bearer(&'static str),
    /// A `DPoP` challenge with this `error`.
    Dpop(&'static str),
    /// A `DPoP` challenge (with `algs`) is offered.
    DpopOffered,
}

impl Want {
    fn matches(self, challenges: &[Challenge]) -> bool {
        let with_error = |scheme: &str, code: &str| {
            challenges
                .iter()
                .any(|c| c.is(scheme) && c.param("error") == Some(code))
        };
        match self {
            Want::Absent => challenges.is_empty(),
            Want::Bare => {
                challenges.iter().any(|c| c.is("Bearer"))
                    && challenges.iter().all(|c| c.param("error").is_none())
            }
            Want::Bearer(code) => with_error("Bearer", code),
            Want::Dpop(code) => with_error("DPoP", code),
            Want::DpopOffered => challenges.iter().any(|c| c.is("DPoP")),
        }
    }

    fn describe(self) -> String {
        match self {
            Want::Absent => "no challenge".into(),
            Want::Bare => "Bearer (no error)".into(),
            Want::Bearer(code) => format!("Bearer error=\"{code}\""),
            Want::Dpop(code) => format!("DPoP error=\"{code}\""),
            Want::DpopOffered => "DPoP algs=\"...\"".into(),
        }
    }
}

/// How the answer is judged.
#[derive(Clone, Copy)]
pub enum Check {
    /// This status and these challenges.
    Answer(u16, Want),
    /// Any one of these answers: where the standards allow more than one (refusing or
    /// accepting within a leeway, 400 or 401 for a malformed token).
    AnyOf(&'static [(u16, Want)]),
    /// A judge of its own (the metadata document, the issuer outage), with the
    /// expectation as text.
    Custom(&'static str, fn(&Ctx<'_>, &Answer) -> Verdict),
    /// No request: the `jku`/`x5u` listener must have received nothing so far.
    SinkUntouched,
}

impl Check {
    /// The expectation as text.
    pub fn describe(&self) -> String {
        match self {
            Check::Answer(status, want) => format!("{status} {}", want.describe()),
            Check::AnyOf(answers) => answers
                .iter()
                .map(|(status, want)| format!("{status} {}", want.describe()))
                .collect::<Vec<_>>()
                .join(" or "),
            Check::Custom(text, _) => (*text).to_owned(),
            Check::SinkUntouched => "no request to the jku/x5u URLs".into(),
        }
    }
}

/// Something the kit does to its issuer around one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A new signing key (a `kid` the target has never seen) while the JWKS answers 503.
    JwksDownNewKey,
}

/// Builds a case's request.
pub type Build = fn(&Ctx<'_>) -> Result<Req, BuildError>;

/// One case.
#[derive(Clone, Copy)]
pub struct Case {
    /// Stable id (`alg-none`), unique in the catalogue.
    pub id: &'static str,
    /// What it sends.
    pub name: &'static str,
    /// Its group.
    pub group: Group,
    /// What a failure means.
    pub severity: Severity,
    /// The standard (RFC and section) the expected answer rests on (`--explain`).
    pub basis: &'static str,
    /// Decided by the HTTP stack (header size and count limits, repeated headers) rather
    /// than by the auth middleware: reported with a mark, so a team knows where to look.
    pub http_stack: bool,
    /// An audience (`aud`) case: runs under RFC 9068, and under the generic profile when an
    /// audience is given.
    pub audience: bool,
    /// The profiles it applies to.
    pub applies: Applies,
    /// Only for targets that speak DPoP.
    pub needs_dpop: bool,
    /// What the kit does to its issuer while the case runs.
    pub fault: Option<Fault>,
    /// The expected answer.
    pub check: Check,
    /// The request.
    pub build: Build,
}

impl Case {
    const fn dpop(mut self) -> Self {
        self.needs_dpop = true;
        self
    }

    const fn only(mut self, applies: Applies) -> Self {
        self.applies = applies;
        self
    }

    const fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    const fn http_stack(mut self) -> Self {
        self.http_stack = true;
        self
    }

    const fn audience(mut self) -> Self {
        self.applies = Applies::Rfc9068;
        self.audience = true;
        self
    }

    /// Judges an answer (the token echo is checked by the runner).
    pub fn judge(&self, ctx: &Ctx<'_>, answer: &Answer) -> Verdict {
        match self.check {
            Check::Custom(_, judge) => judge(ctx, answer),
            Check::SinkUntouched => Verdict::Pass,
            Check::Answer(status, want) => self.judge_any(&[(status, want)], answer),
            Check::AnyOf(answers) => self.judge_any(answers, answer),
        }
    }

    /// Passes when the answer is one of `answers` (status, and valid challenges that say
    /// what is wanted). Otherwise a `must` case fails as `must` when every allowed answer
    /// refuses and the server accepted, or every allowed answer accepts and it refused;
    /// any other difference fails as `should`.
    fn judge_any(&self, answers: &[(u16, Want)], answer: &Answer) -> Verdict {
        let challenges = answer.challenges();
        let syntax_ok = challenges
            .as_ref()
            .is_ok_and(|chs| chs.iter().all(|c| check_syntax(c).is_ok()));
        let matches = |&(status, want): &(u16, Want)| {
            answer.status == status
                && syntax_ok
                && challenges.as_ref().is_ok_and(|chs| want.matches(chs))
        };
        let success = |&(status, _): &(u16, Want)| (200..300).contains(&status);
        if answers.iter().any(matches) {
            Verdict::Pass
        } else if self.severity == Severity::Must
            && ((answer.accepted() && !answers.iter().any(success))
                || (!answer.accepted() && answers.iter().all(success)))
        {
            Verdict::Fail(Severity::Must)
        } else {
            Verdict::Fail(Severity::Should)
        }
    }
}

const fn case(
    id: &'static str,
    group: Group,
    severity: Severity,
    name: &'static str,
    basis: &'static str,
    check: Check,
    build: Build,
) -> Case {
    Case {
        id,
        name,
        group,
        severity,
        basis,
        http_stack: false,
        audience: false,
        applies: Applies::Any,
        needs_dpop: false,
        fault: None,
        check,
        build,
    }
}

fn bearer(token: String) -> Result<Req, BuildError> {
    Ok(Req {
        authorization: vec![format!("Bearer {token}").into_bytes()],
        secret: token,
        ..Req::default()
    })
}

fn raw_auth(value: &[u8], secret: String) -> Result<Req, BuildError> {
    Ok(Req {
        authorization: vec![value.to_vec()],
        secret,
        ..Req::default()
    })
}

fn none() -> Result<Req, BuildError> {
    Ok(Req::default())
}

/// `Authorization: DPoP <token>` with these proofs.
fn dpop_req(token: String, proofs: Vec<String>) -> Result<Req, BuildError> {
    Ok(Req {
        authorization: vec![format!("DPoP {token}").into_bytes()],
        dpop: proofs,
        secret: token,
        ..Req::default()
    })
}

/// A bound token and a proof edited by `edit`.
fn dpop_edited(c: &Ctx<'_>, edit: impl FnOnce(&mut Value, &mut Value)) -> Result<Req, BuildError> {
    let token = c.bound()?;
    let proof = c.proof_with(&token, edit)?;
    dpop_req(token, vec![proof])
}

/// Part `index` (0 header, 1 payload, 2 signature) of a compact token.
fn part(token: &str, index: usize) -> &str {
    token.split('.').nth(index).unwrap_or("")
}

/// Replaces part `index` of a compact token.
fn with_part(token: &str, index: usize, new: &str) -> String {
    token
        .split('.')
        .enumerate()
        .map(|(i, p)| if i == index { new } else { p })
        .collect::<Vec<_>>()
        .join(".")
}

fn decode(part: &str) -> Result<Vec<u8>, BuildError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| BuildError(format!("base64url: {e}")))
}

/// Removes `key` from an object.
fn remove(v: &mut Value, key: &str) {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
}

fn flip_payload_bit(t: &str) -> Result<String, BuildError> {
    let mut p = decode(part(t, 1))?;
    if let Some(b) = p.get_mut(5) {
        *b ^= 1;
    }
    Ok(with_part(t, 1, &b64(&p)))
}

fn metadata_req(c: &Ctx<'_>) -> Result<Req, BuildError> {
    Ok(Req {
        url: Some(c.metadata_url.clone()),
        ..Req::default()
    })
}

/// The metadata document, if the answer is a JSON object with a JSON content type.
fn metadata(answer: &Answer) -> Option<serde_json::Map<String, Value>> {
    let json_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if answer.status != 200 || !json_type {
        return None;
    }
    match serde_json::from_slice(&answer.body) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

fn pass_if(ok: bool, severity: Severity) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail(severity)
    }
}

fn judge_document(_: &Ctx<'_>, a: &Answer) -> Verdict {
    pass_if(metadata(a).is_some(), Severity::Should)
}

fn judge_resource(c: &Ctx<'_>, a: &Answer) -> Verdict {
    match metadata(a) {
        // RFC 9728 section 3.3: a client must refuse a document whose `resource` differs
        // from the identifier it used; a server that serves one breaks every such client.
        Some(m) => pass_if(
            m.get("resource").and_then(Value::as_str) == Some(&c.target().resource),
            Severity::Must,
        ),
        None => Verdict::Fail(Severity::Should),
    }
}

fn judge_authorization_servers(c: &Ctx<'_>, a: &Answer) -> Verdict {
    let issuer = c.issuer().issuer();
    let ok = metadata(a).is_some_and(|m| {
        m.get("authorization_servers")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|s| s.as_str() == Some(issuer)))
    });
    pass_if(ok, Severity::Should)
}

fn judge_bearer_methods(_: &Ctx<'_>, a: &Answer) -> Verdict {
    let ok = metadata(a).is_some_and(|m| match m.get("bearer_methods_supported") {
        None => true,
        Some(v) => v
            .as_array()
            .is_some_and(|list| list.iter().any(|s| s.as_str() == Some("header"))),
    });
    pass_if(ok, Severity::Should)
}

fn judge_dpop_algs(_: &Ctx<'_>, a: &Answer) -> Verdict {
    let ok = metadata(a).is_some_and(|m| {
        m.get("dpop_signing_alg_values_supported")
            .and_then(Value::as_array)
            .is_some_and(|list| !list.is_empty() && list.iter().all(Value::is_string))
    });
    pass_if(ok, Severity::Should)
}

fn judge_resource_metadata_param(c: &Ctx<'_>, a: &Answer) -> Verdict {
    let ok = a.status == 401
        && a.challenges().is_ok_and(|chs| {
            chs.iter().any(|ch| {
                ch.is("Bearer") && ch.param("resource_metadata") == Some(c.metadata_url.as_str())
            })
        });
    pass_if(ok, Severity::Should)
}

/// The issuer cannot answer and the token's `kid` is new: the server must not accept it.
/// my-service answers 401 `invalid_token` (it has just looked for unknown kids of the
/// earlier cases, and the on-demand refresh for unknown kids is rate-limited) or, when it
/// does try the JWKS, 503 with `Retry-After`; either is a "should" pass.
fn judge_issuer_down(_: &Ctx<'_>, a: &Answer) -> Verdict {
    if a.accepted() {
        return Verdict::Fail(Severity::Must);
    }
    let syntax_ok = a
        .challenges()
        .is_ok_and(|chs| chs.iter().all(|c| check_syntax(c).is_ok()));
    let invalid = a.status == 401
        && Want::Bearer("invalid_token").matches(&a.challenges().unwrap_or_default());
    let unavailable = a.status == 503 && a.headers.contains_key("retry-after");
    pass_if(syntax_ok && (invalid || unavailable), Severity::Should)
}

/// The compact token `t` in the JWS JSON serialization (RFC 7515 section 7.2): general
/// (a `signatures` array) or flattened.
fn jws_json(t: &str, general: bool) -> String {
    let (protected, payload, signature) = (part(t, 0), part(t, 1), part(t, 2));
    let json = if general {
        json!({"payload": payload, "signatures": [{"protected": protected, "signature": signature}]})
    } else {
        json!({"protected": protected, "payload": payload, "signature": signature})
    };
    json.to_string()
}

/// A refresh token in the shapes issuers that mint JWT refresh tokens use: typed `JWT`
/// (not `at+jwt`), Cognito's `token_use: refresh`, Keycloak's `typ: Refresh`.
fn refresh_token(header: &mut Value, claims: &mut Value) {
    if header.get("typ").is_some() {
        header["typ"] = json!("JWT");
    }
    claims["token_use"] = json!("refresh");
    claims["typ"] = json!("Refresh");
}

/// The host a spoofed `Host` header names.
const SPOOFED_HOST: &str = "conformance-spoofed.example";

/// A bound token and a correct proof for the target's path on [`SPOOFED_HOST`], sent to
/// the target with `Host: SPOOFED_HOST` (a proof captured from another server, replayed).
fn spoofed_host(c: &Ctx<'_>) -> Result<Req, BuildError> {
    let htu = reqwest::Url::parse(&c.htu()).map_err(|e| BuildError(format!("target URL: {e}")))?;
    let spoofed = format!("{}://{SPOOFED_HOST}{}", htu.scheme(), htu.path());
    let token = c.bound()?;
    let proof = c.prover().proof("GET", &spoofed, &token)?;
    Ok(Req {
        host: Some(SPOOFED_HOST.to_owned()),
        ..dpop_req(token, vec![proof])?
    })
}

/// Any refusal passes: 401 `invalid_dpop_proof`, or a server that refuses the unknown
/// host (400, 404, 421). Accepting is the failure.
fn judge_spoofed_host(_: &Ctx<'_>, a: &Answer) -> Verdict {
    pass_if(!a.accepted(), Severity::Should)
}

use Applies::{Cognito as COGNITO, Rfc9068 as RFC9068};
use Group::{
    Challenge as CH, Claims as CL, Dpop as DP, Encoding as EN, Header as HD, Metadata as MD,
    Signature as SG,
};
use Severity::{Must as MUST, Should as SHOULD};
use Want::{Absent, Bare};
const OK: Check = Check::Answer(200, Absent);
const INVALID: Check = Check::Answer(401, Want::Bearer("invalid_token"));
const SCOPE: Check = Check::Answer(403, Want::Bearer("insufficient_scope"));
const BAD_REQUEST: Check = Check::Answer(400, Want::Bearer("invalid_request"));
const NO_CREDENTIALS: Check = Check::Answer(401, Bare);
const BAD_PROOF: Check = Check::Answer(401, Want::Dpop("invalid_dpop_proof"));
/// A malformed token: RFC 6750 section 3.1 allows 401 `invalid_token` (the token is
/// malformed) and 400 `invalid_request` (the request is).
const REFUSED: Check = Check::AnyOf(&[
    (401, Want::Bearer("invalid_token")),
    (400, Want::Bearer("invalid_request")),
]);
/// An expired token within a leeway: RFC 7519 section 4.1.4 allows both.
const LEEWAY: Check = Check::AnyOf(&[(200, Absent), (401, Want::Bearer("invalid_token"))]);

/// The catalogue, in the order it runs (the issuer outage last: it rotates the kit's key).
#[rustfmt::skip]
pub const CASES: &[Case] = &[
    // --- baseline, statuses and challenges
    case("valid-token", CH, MUST, "valid token", "RFC 6750 section 2.1: a valid bearer token in the Authorization header is accepted", OK, |c| bearer(c.valid()?)),
    case("no-authorization", CH, MUST, "no Authorization header", "RFC 6750 section 3.1: a request without authentication gets a challenge without an error code", NO_CREDENTIALS, |_| none()),
    case("basic-scheme", CH, MUST, "Authorization: Basic", "RFC 6750 section 3.1: no bearer credentials, so a challenge without an error code", NO_CREDENTIALS, |_| raw_auth(b"Basic bXktYmZmOnNlY3JldA==", String::new())),
    case("other-scope-only", CH, MUST, "valid token with another scope of the same API only", "RFC 6750 section 3.1: insufficient_scope, 403, for a token without the required scope", SCOPE, |c| { let (h, cl) = c.template_with_scope(&c.settings().other_scope()); bearer(c.issuer().sign(&h, &cl)?) }),
    case("jti-reused", CH, SHOULD, "the same valid token twice, with its jti (the second is judged)", "RFC 6750 section 1.2: any holder may use a bearer token until it expires; RFC 7519 section 4.1.7 makes replay checks optional and RFC 9068 section 2.2 asks for none: a single-use jti on bearer tokens refuses legitimate retries", OK, |c| Ok(Req { repeat: true, ..bearer(c.valid()?)? })),
    // --- header
    case("alg-none", HD, MUST, "alg none, no signature", "RFC 8725 sections 2.1 and 3.1: an unsecured JWS (alg none) is refused unless explicitly expected", INVALID, |c| bearer(format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(c.claims_text().as_bytes())))),
    case("alg-none-signed", HD, MUST, "alg none, with signature", "RFC 8725 sections 2.1 and 3.1: an unsecured JWS (alg none) is refused unless explicitly expected", INVALID, |c| bearer(with_part(&c.valid()?, 0, &b64(br#"{"alg":"none"}"#)))),
    case("alg-none-mixed-case", HD, MUST, "alg None (mixed case)", "RFC 7515 section 4.1.1: alg is case-sensitive, so None is no registered algorithm; RFC 8725 section 3.1", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("None"))?)),
    case("alg-none-odd-case", HD, MUST, "alg noNE (odd case), no signature", "RFC 7515 section 4.1.1: alg is case-sensitive; draft-ietf-oauth-rfc8725bis section 3.1: algorithm names are compared exactly", INVALID, |c| bearer(format!("{}.{}.", b64(br#"{"alg":"noNE"}"#), b64(c.claims_text().as_bytes())))),
    case("alg-rs256-lower-case", HD, SHOULD, "alg rs256 (lower case), signed with RS256", "RFC 7515 section 4.1.1: alg is case-sensitive and rs256 is no registered algorithm; draft-ietf-oauth-rfc8725bis section 3.1 (exact comparison); the signature is the issuer's, hence should", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("rs256"))?)),
    case("hs256-public-pem", HD, MUST, "HS256 keyed with the public key PEM", "RFC 8725 sections 2.1 and 3.1: algorithm confusion; each key is used with its own algorithm only", INVALID, |c| bearer(c.hmac(c.issuer().current_key().public_key_pem()?.as_bytes())?)),
    case("hs256-public-der", HD, MUST, "HS256 keyed with the public key DER", "RFC 8725 sections 2.1 and 3.1: algorithm confusion; each key is used with its own algorithm only", INVALID, |c| bearer(c.hmac(&c.issuer().current_key().public_key_der()?)?)),
    case("hs256-public-jwk", HD, MUST, "HS256 keyed with the public JWK", "RFC 8725 sections 2.1 and 3.1: algorithm confusion; each key is used with its own algorithm only", INVALID, |c| bearer(c.hmac(c.issuer().current_key().public_jwk().to_string().as_bytes())?)),
    case("alg-rs384", HD, MUST, "alg RS384 on an RS256 key", "RFC 8725 section 3.1: only the expected algorithms are allowed (the signature was made with RS256)", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("RS384"))?)),
    case("alg-es256", HD, MUST, "alg ES256 on an RS256 key", "RFC 8725 section 3.1: only the expected algorithms are allowed (the signature was made with RS256)", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("ES256"))?)),
    case("alg-ps256", HD, MUST, "alg PS256 on an RS256 key", "RFC 8725 section 3.1: only the expected algorithms are allowed (the signature was made with RS256)", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("PS256"))?)),
    case("key-one-alg-ps256", HD, SHOULD, "PS256 signature made with the issuer's key, whose JWK says alg RS256", "RFC 8725 section 3.1, kept in draft-ietf-oauth-rfc8725bis: each key MUST be used with exactly one algorithm, checked when verifying; the JWK's alg names it. The signature is the issuer's own, hence should", INVALID, |c| bearer(c.signed_as(jsonwebtoken::Algorithm::PS256)?)),
    case("key-one-alg-rs384", HD, SHOULD, "RS384 signature made with the issuer's key, whose JWK says alg RS256", "RFC 8725 section 3.1, kept in draft-ietf-oauth-rfc8725bis: each key MUST be used with exactly one algorithm, checked when verifying; the JWK's alg names it. The signature is the issuer's own, hence should", INVALID, |c| bearer(c.signed_as(jsonwebtoken::Algorithm::RS384)?)),
    case("kid-absent", HD, SHOULD, "kid absent while the JWKS has several keys", "RFC 7515 section 4.1.4: kid is a hint; with several keys published, refusing is the safe reading (should)", INVALID, |c| bearer(c.signed(|h, _| remove(h, "kid"))?)),
    case("kid-path-traversal", HD, MUST, "kid with path traversal", "RFC 8725 section 3.10: kid is attacker input, never a file path", INVALID, |c| bearer(c.signed(|h, _| h["kid"] = json!("../../../../etc/passwd"))?)),
    case("kid-sql", HD, MUST, "kid with SQL", "RFC 8725 section 3.10: kid is attacker input, never part of a query", INVALID, |c| bearer(c.signed(|h, _| h["kid"] = json!("' OR '1'='1' --"))?)),
    case("kid-10kb", HD, MUST, "kid of 10 KB", "RFC 8725 section 3.10: kid is attacker input; an unknown kid finds no key", INVALID, |c| bearer(c.signed(|h, _| h["kid"] = json!("k".repeat(10_240)))?)),
    case("kid-not-string", HD, MUST, "kid not a string", "RFC 7515 section 4.1.4: kid is a string", INVALID, |c| bearer(c.signed(|h, _| h["kid"] = json!(42))?)),
    case("jku-attacker", HD, MUST, "jku to the attacker's JWKS (never fetched)", "RFC 8725 section 3.10 and RFC 7515 section 4.1.2: a jku is attacker input; keys come from the issuer's JWKS only", INVALID, |c| bearer(c.attacker_signed(|h, _| h["jku"] = json!(format!("{}/jwks.json", c.sink())))?)),
    case("x5u-attacker", HD, MUST, "x5u to the attacker's certificate (never fetched)", "RFC 8725 section 3.10 and RFC 7515 section 4.1.5: an x5u is attacker input; keys come from the issuer's JWKS only", INVALID, |c| bearer(c.attacker_signed(|h, _| h["x5u"] = json!(format!("{}/cert.pem", c.sink())))?)),
    case("jwk-embedded", HD, MUST, "jwk header embedding the attacker's key", "RFC 7515 section 4.1.3 and RFC 8725 section 3.10: a key carried by the token is not a trusted key", INVALID, |c| bearer(c.attacker_signed(|h, _| h["jwk"] = c.attacker().public_jwk().clone())?)),
    case("jwk-and-jku", HD, MUST, "jwk header and the issuer's kid", "RFC 7515 section 4.1.3 and RFC 8725 section 3.10: a key carried by the token is not a trusted key", INVALID, |c| bearer(c.attacker_signed(|h, _| { h["jwk"] = c.attacker().public_jwk().clone(); h["jku"] = json!(c.sink()); })?)),
    case("kid-url", HD, MUST, "kid is a URL to the attacker's JWKS (never fetched)", "RFC 8725 section 3.10 and draft-ietf-oauth-rfc8725bis: kid is attacker input, never a location to fetch keys from", INVALID, |c| bearer(c.attacker_signed(|h, _| h["kid"] = json!(format!("{}/kid-jwks.json", c.sink())))?)),
    case("jku-x5u-not-fetched", HD, MUST, "the jku/x5u/jwk URLs were never fetched", "RFC 8725 section 3.10 and draft-ietf-oauth-rfc8725bis: kid, jku and x5u are attacker input; fetching them is server-side request forgery", Check::SinkUntouched, |_| none()),
    case("crit-unknown", HD, MUST, "crit with an unknown extension", "RFC 7515 section 4.1.11: an extension in crit that is not understood makes the JWS invalid", INVALID, |c| bearer(c.signed(|h, _| { h["crit"] = json!(["urn:x:ext"]); h["urn:x:ext"] = json!(true); })?)),
    case("typ-jwt", HD, MUST, "typ JWT under rfc9068", "RFC 9068 section 4: the resource server must check typ is at+jwt; RFC 8725 section 3.11", INVALID, |c| bearer(c.signed(|h, _| h["typ"] = json!("JWT"))?)).only(RFC9068),
    case("typ-missing", HD, MUST, "typ missing under rfc9068", "RFC 9068 section 4: the resource server must check typ is at+jwt; RFC 8725 section 3.11", INVALID, |c| bearer(c.signed(|h, _| remove(h, "typ"))?)).only(RFC9068),
    case("typ-full-media-type", HD, SHOULD, "typ application/at+jwt (accepted)", "RFC 9068 section 4 and RFC 7515 section 4.1.9: application/at+jwt is the same media type as at+jwt", OK, |c| bearer(c.signed(|h, _| h["typ"] = json!("application/at+jwt"))?)).only(RFC9068),
    case("header-not-json", HD, MUST, "header not JSON", "RFC 7515 section 5.2 (steps 2 and 3): the JOSE header is a JSON object", INVALID, |c| bearer(c.signed_raw(b"not json", c.claims_text().as_bytes())?)),
    case("header-array", HD, MUST, "header a JSON array, not an object", "RFC 7515 section 5.2 (steps 2 and 3): the JOSE header is a JSON object", INVALID, |c| bearer(c.signed_raw(json!(["RS256", c.issuer().current_kid(), null, null]).to_string().as_bytes(), c.claims_text().as_bytes())?)),
    case("crit-null", HD, MUST, "crit present with the value null", "RFC 7515 section 4.1.11: crit, when present, is a non-empty array of strings", INVALID, |c| bearer(c.signed(|h, _| h["crit"] = serde_json::Value::Null)?)),
    // --- claims
    case("exp-hour-ago", CL, MUST, "expired an hour ago", "RFC 7519 section 4.1.4: an expired token is refused", INVALID, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(now() - 3600))?)),
    case("exp-within-leeway", CL, SHOULD, "expired 30 s ago (accepted within a leeway, or refused)", "RFC 7519 section 4.1.4: a small leeway MAY be allowed, so accepting is fine and refusing an expired token is never wrong", LEEWAY, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(now() - 30))?)),
    case("exp-beyond-leeway", CL, SHOULD, "expired by more than the leeway", "RFC 7519 section 4.1.4: the leeway is usually no more than a few minutes; 90 s past exp (should)", INVALID, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(now() - 90))?)),
    case("nbf-future", CL, MUST, "nbf in the future", "RFC 7519 section 4.1.5: a token is not accepted before nbf", INVALID, |c| bearer(c.signed(|_, cl| cl["nbf"] = json!(now() + 600))?)),
    case("iat-future", CL, SHOULD, "iat far in the future", "RFC 7519 section 4.1.6: iat is informational; a day ahead is a broken or forged token (should)", INVALID, |c| bearer(c.signed(|_, cl| cl["iat"] = json!(now() + 86_400))?)),
    case("exp-missing", CL, MUST, "no exp", "RFC 9068 section 2.2: exp is required; RFC 8725 section 3.10", INVALID, |c| bearer(c.signed(|_, cl| remove(cl, "exp"))?)),
    case("exp-string", CL, MUST, "exp as a string", "RFC 7519 sections 2 and 4.1.4: exp is a NumericDate, a JSON number", INVALID, |c| bearer(c.signed(|_, cl| cl["exp"] = json!((now() + 600).to_string()))?)),
    case("exp-fraction", CL, SHOULD, "exp with a fraction (RFC 7519 NumericDate; accepted)", "RFC 7519 section 2: a NumericDate may be non-integer (should accept)", OK, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(now() as f64 + 600.5))?)),
    case("exp-negative", CL, MUST, "exp negative", "RFC 7519 sections 2 and 4.1.4: a NumericDate before 1970 is long past", INVALID, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(-1))?)),
    case("exp-huge", CL, SHOULD, "exp beyond any integer", "RFC 7519 section 2 and RFC 8725 section 3.10: 1e300 is no usable NumericDate (should)", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), c.claims_text().replace("\"exp\":", "\"exp\":1e300,\"x\":").as_bytes())?)),
    case("iss-wrong", CL, MUST, "wrong iss", "RFC 8725 section 3.8 and RFC 9068 section 4: iss is the trusted issuer", INVALID, |c| bearer(c.signed(|_, cl| cl["iss"] = json!("https://evil.example"))?)),
    case("iss-trailing-slash", CL, MUST, "iss with a trailing slash", "RFC 7519 section 4.1.1 (StringOrURI, compared exactly) and RFC 8414 section 3.3", INVALID, |c| bearer(c.signed(|_, cl| cl["iss"] = json!(format!("{}/", c.issuer().issuer())))?)),
    case("iss-missing", CL, MUST, "iss missing", "RFC 9068 sections 2.2 and 4: iss is required and checked", INVALID, |c| bearer(c.signed(|_, cl| remove(cl, "iss"))?)),
    case("aud-missing", CL, MUST, "aud missing", "RFC 8725 section 3.9, RFC 9068 section 4 and RFC 7519 section 4.1.3: the audience is validated", INVALID, |c| bearer(c.signed(|_, cl| remove(cl, "aud"))?)).audience(),
    case("aud-wrong", CL, MUST, "aud of another API", "RFC 8725 section 3.9, RFC 9068 section 4 and RFC 7519 section 4.1.3: a token for another API is refused", INVALID, |c| bearer(c.signed(|_, cl| cl["aud"] = json!("OtherService"))?)).audience(),
    case("aud-array-without-ours", CL, MUST, "aud array without ours", "RFC 7519 section 4.1.3: the token is refused unless aud contains this API", INVALID, |c| bearer(c.signed(|_, cl| cl["aud"] = json!(["a", "b"]))?)).audience(),
    case("aud-array-with-ours", CL, SHOULD, "aud array with ours (accepted)", "RFC 7519 section 4.1.3: aud may be an array that contains this API (should accept)", OK, |c| bearer(c.signed(|_, cl| cl["aud"] = json!(["a", c.settings().audience]))?)).audience(),
    case("token-use-id", CL, MUST, "token_use id under cognito", "Amazon Cognito's token_use (access vs id) and RFC 8725 section 3.11 (explicit typing): an ID token is no access token", INVALID, |c| bearer(c.signed(|_, cl| cl["token_use"] = json!("id"))?)).only(COGNITO),
    case("refresh-token-as-access", CL, SHOULD, "a refresh token (typ JWT, token_use refresh, typ Refresh) as the access token", "RFC 6749 sections 1.5 and 10.4: a refresh token is for the authorization server only; RFC 8725 section 3.11 (explicit typing); should, as a server without typing has no standard way to tell", INVALID, |c| bearer(c.signed(refresh_token)?)),
    case("scope-missing", CL, MUST, "scope missing", "RFC 6750 section 3.1 (insufficient_scope) and RFC 9068 section 2.2.3", SCOPE, |c| bearer(c.signed(|_, cl| remove(cl, "scope"))?)),
    case("scope-substring", CL, MUST, "scope containing ours only as a substring", "RFC 6749 section 3.3: scope tokens are compared whole, not as substrings", SCOPE, |c| bearer(c.signed(|_, cl| cl["scope"] = json!(format!("{}_all", c.settings().scope)))?)),
    case("scope-array", CL, SHOULD, "scope as an array (accepted)", "RFC 9068 section 2.2.3 writes scope as a string; the array form is common (should accept)", OK, |c| bearer(c.signed(|_, cl| cl["scope"] = json!([c.settings().scope]))?)).only(RFC9068),
    case("scope-quote", CL, MUST, "scope with a quote character", "RFC 6749 section 3.3: a scope-token never contains a double quote", INVALID, |c| bearer(c.signed(|_, cl| cl["scope"] = json!("a\"b"))?)),
    case("scope-duplicate", CL, MUST, "scope twice: ours first, another scope last", "RFC 7519 section 4: with duplicate claim names a parser must either reject the token or take the lexically last member (here another scope: 403)", Check::AnyOf(&[(401, Want::Bearer("invalid_token")), (403, Want::Bearer("insufficient_scope"))]), |c| { let (h, cl) = c.template_with_scope(&c.settings().other_scope()); bearer(c.signed_raw(h.to_string().as_bytes(), cl.to_string().replacen('{', &format!("{{\"scope\":{},", json!(c.settings().scope)), 1).as_bytes())?) }),
    case("payload-not-utf8", CL, MUST, "payload not UTF-8", "RFC 7519 section 7.2 (step 10) and RFC 8259 section 8.1: the claims set is UTF-8 JSON", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), b"{\"sub\":\"\xff\xfe\"}")?)),
    case("unread-claim-not-utf8", CL, MUST, "a claim the API does not read holds invalid UTF-8", "RFC 7519 section 7.2 (step 10) and RFC 8259 section 8.1: the claims set is UTF-8 JSON, every member of it", INVALID, |c| { let mut claims = b"{\"note\":\"\xff\",".to_vec(); claims.extend_from_slice(&c.claims_text().as_bytes()[1..]); bearer(c.signed_raw(&c.header_bytes(), &claims)?) }),
    case("unread-claim-surrogate", CL, MUST, "a claim the API does not read holds an unpaired surrogate", "RFC 7519 section 7.2 (step 10) and RFC 8259 section 8.2: an unpaired surrogate is no text", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), c.claims_text().replacen('{', "{\"note\":\"\\ud800\",", 1).as_bytes())?)),
    case("payload-array", CL, MUST, "payload a JSON array", "RFC 7519 section 7.2 (step 10): the claims set is a JSON object", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), b"[1,2,3]")?)),
    case("payload-string", CL, MUST, "payload a JSON string", "RFC 7519 section 7.2 (step 10): the claims set is a JSON object", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), b"\"hello\"")?)),
    // --- encoding
    case("signature-padding", EN, SHOULD, "base64 padding on the signature", "RFC 7515 section 2: base64url without padding (should)", INVALID, |c| bearer(format!("{}==", c.valid()?))),
    case("padding-inside-part", EN, SHOULD, "padding inside a part", "RFC 7515 section 2 (base64url without padding); RFC 6750 section 3.1: a malformed token is 401 invalid_token, a malformed request 400 invalid_request, either is right", REFUSED, |c| { let t = c.valid()?; bearer(with_part(&t, 1, &format!("{}=", part(&t, 1)))) }),
    case("standard-alphabet", EN, SHOULD, "standard base64 alphabet", "RFC 7515 section 2: base64url, not the standard alphabet (should)", INVALID, |c| { let t = c.valid()?; let sig = decode(part(&t, 2))?; bearer(with_part(&t, 2, &STANDARD.encode(sig))) }),
    case("four-parts", EN, SHOULD, "four parts", "RFC 7515 section 7.1 and RFC 7519 section 7.2: a JWS has three parts (should)", INVALID, |c| bearer(format!("{}.e30", c.valid()?))),
    case("two-parts", EN, MUST, "two parts", "RFC 7515 section 7.1 and RFC 7519 section 7.2: a JWS has three parts", INVALID, |c| { let t = c.valid()?; bearer(t.rsplit_once('.').map(|(a, _)| a.to_owned()).unwrap_or_default()) }),
    case("empty-parts", EN, MUST, "empty parts", "RFC 7515 section 7.1 and RFC 7519 section 7.2: empty parts are no JWS", INVALID, |_| bearer("..".into())),
    case("jws-json-flattened", EN, SHOULD, "the valid token in the flattened JWS JSON serialization", "RFC 7519 sections 1 and 7.2: a JWT uses the compact serialization only; draft-ietf-oauth-rfc8725bis; the signature is the issuer's, hence should", REFUSED, |c| { let t = c.valid()?; Ok(Req { secret: t.clone(), ..bearer(jws_json(&t, false))? }) }),
    case("jws-json-general", EN, SHOULD, "the valid token in the general JWS JSON serialization", "RFC 7519 sections 1 and 7.2: a JWT uses the compact serialization only; draft-ietf-oauth-rfc8725bis; the signature is the issuer's, hence should", REFUSED, |c| { let t = c.valid()?; Ok(Req { secret: t.clone(), ..bearer(jws_json(&t, true))? }) }),
    case("tab-in-token", EN, SHOULD, "a tab inside the token", "RFC 6750 section 2.1 (b64token syntax) and section 3.1 (invalid_request)", BAD_REQUEST, |c| { let t = c.valid()?; let (a, b) = t.split_at(20); raw_auth(format!("Bearer {a}\t{b}").as_bytes(), t.clone()) }),
    case("token-17kib", EN, MUST, "token of 17 KiB", "RFC 7515 section 5.2: the signature does not validate; the size limit is often the HTTP stack's (431, RFC 6585 section 5)", INVALID, |c| bearer(format!("{}{}", c.valid()?, "A".repeat(17 * 1024)))).http_stack(),
    case("headers-1000", EN, SHOULD, "1,000 request headers", "RFC 6585 section 5: 431 Request Header Fields Too Large (should)", Check::Answer(431, Absent), |c| Ok(Req { extra_headers: 1000, ..bearer(c.valid()?)? })).http_stack(),
    case("bearer-empty", EN, MUST, "Bearer with no token", "RFC 6750 section 2.1 (b64token is at least one character) and section 3.1 (invalid_request)", BAD_REQUEST, |_| raw_auth(b"Bearer ", String::new())),
    case("bearer-twice", EN, SHOULD, "Bearer twice in one header", "RFC 6750 section 2.1 (one b64token) and section 3.1 (invalid_request)", BAD_REQUEST, |c| { let t = c.valid()?; raw_auth(format!("Bearer {t}, Bearer {t}").as_bytes(), t) }),
    case("two-authorization", EN, SHOULD, "two Authorization headers", "RFC 9110 section 5.3 (Authorization is no list field) and RFC 6750 section 3.1 (invalid_request) (should)", BAD_REQUEST, |c| { let t = c.valid()?; Ok(Req { authorization: vec![format!("Bearer {t}").into_bytes(); 2], ..bearer(t)? }) }).http_stack(),
    case("bearer-lower-case", EN, SHOULD, "lower-case bearer (accepted)", "RFC 9110 section 11.1: the authentication scheme is case-insensitive (should accept)", OK, |c| { let t = c.valid()?; raw_auth(format!("bearer {t}").as_bytes(), t) }),
    case("query-token-only", EN, SHOULD, "token in the query string only (ignored)", "RFC 6750 section 2.3: the query method SHOULD NOT be used; here it is ignored (should)", NO_CREDENTIALS, |c| { let t = c.valid()?; Ok(Req { query: Some(format!("access_token={t}")), secret: t, ..Req::default() }) }),
    case("header-not-utf8", EN, MUST, "header value not UTF-8", "RFC 9110 section 5.5 (field values) and RFC 6750 section 3.1 (invalid_request)", BAD_REQUEST, |_| raw_auth(b"Bearer abc\xff", String::new())),
    // --- signature
    case("payload-bit-flipped", SG, MUST, "one flipped bit in the payload", "RFC 7515 section 5.2 (step 8): the signature must validate", INVALID, |c| bearer(flip_payload_bit(&c.valid()?)?)),
    case("signature-truncated", SG, MUST, "signature truncated", "RFC 7515 section 5.2 (step 8): the signature must validate", INVALID, |c| { let t = c.valid()?; bearer(t[..t.len() - 8].to_owned()) }),
    case("same-kid-other-key", SG, MUST, "signature from another key with the same kid", "RFC 7515 section 5.2 (step 8): the signature must validate with the issuer's key", INVALID, |c| bearer(c.attacker_signed(|_, _| {})?)),
    case("removed-key", SG, MUST, "signed by a key removed from the JWKS", "RFC 7517 section 5 and RFC 8414 section 2 (jwks_uri): a key no longer published is not trusted", INVALID, |c| bearer(c.removed_key_token())),
    case("unknown-kid-attacker", SG, MUST, "unknown kid signed by the attacker", "RFC 7515 section 5.2 and RFC 8725 section 3.10: an unknown kid finds no trusted key", INVALID, |c| bearer(c.attacker_signed(|h, _| h["kid"] = json!(c.attacker().kid()))?)),
    // --- DPoP (RFC 9449), for targets that speak it
    case("dpop-valid", DP, MUST, "bound token with a correct proof", "RFC 9449 sections 4.3 and 7.1: a bound token with a correct proof is accepted", OK, |c| dpop_edited(c, |_, _| {})).dpop(),
    case("dpop-challenge", DP, SHOULD, "no credentials: the DPoP scheme is offered", "RFC 9449 section 7.1: the DPoP scheme is offered with algs (should)", Check::Answer(401, Want::DpopOffered), |_| none()).dpop(),
    case("dpop-proof-missing", DP, MUST, "bound token under the DPoP scheme, no proof", "RFC 9449 sections 4.3 and 7.1: the DPoP scheme needs exactly one proof", BAD_PROOF, |c| dpop_req(c.bound()?, vec![])).dpop(),
    case("dpop-other-key", DP, MUST, "proof signed by a key other than cnf.jkt", "RFC 9449 section 4.3 (check 12): the proof's key is the one in cnf.jkt", BAD_PROOF, |c| { let t = c.bound()?; let p = c.other_prover().proof("GET", &c.htu(), &t)?; dpop_req(t, vec![p]) }).dpop(),
    case("dpop-wrong-htm", DP, MUST, "proof for POST", "RFC 9449 section 4.3 (check 8): htm is the request's method", BAD_PROOF, |c| dpop_edited(c, |_, cl| cl["htm"] = json!("POST"))).dpop(),
    case("dpop-wrong-htu", DP, MUST, "proof for another URL", "RFC 9449 section 4.3 (check 9): htu is the request's URI", BAD_PROOF, |c| { let other = format!("{}/other", c.htu()); dpop_edited(c, move |_, cl| cl["htu"] = json!(other)) }).dpop(),
    case("dpop-spoofed-host", DP, SHOULD, "proof for another host, sent with that Host header", "RFC 9449 section 4.3 (check 9) and section 11.1: htu must be the resource's URI; a server that takes it from the Host header accepts a proof made for another server", Check::Custom("not 2xx (401 DPoP error=\"invalid_dpop_proof\", or the Host refused)", judge_spoofed_host), spoofed_host).dpop(),
    case("dpop-stale-iat", DP, MUST, "proof made 10 minutes ago", "RFC 9449 section 4.3 (check 11): iat within an acceptable window", BAD_PROOF, |c| dpop_edited(c, |_, cl| cl["iat"] = json!(now() - 600))).dpop(),
    case("dpop-replay", DP, SHOULD, "the same proof twice (the second is judged)", "RFC 9449 sections 4.3 and 11.1: a server that tracks jti refuses a replay (should)", BAD_PROOF, |c| Ok(Req { repeat: true, ..dpop_edited(c, |_, _| {})? })).dpop(),
    case("dpop-ath-mismatch", DP, MUST, "proof whose ath is another token's", "RFC 9449 section 4.3 (check 12): ath is the hash of this access token", BAD_PROOF, |c| dpop_edited(c, |_, cl| cl["ath"] = json!(b64(&[0; 32])))).dpop(),
    case("dpop-bound-as-bearer", DP, MUST, "bound token sent as Bearer", "RFC 9449 section 7.2: a DPoP-bound token is not accepted as a bearer token", INVALID, |c| bearer(c.bound()?)).dpop(),
    // --- RFC 9728 protected resource metadata
    case("metadata-document", MD, SHOULD, "GET the metadata URL of the resource", "RFC 9728 section 3: the metadata document is a JSON object (should)", Check::Custom("200 JSON object", judge_document), metadata_req),
    case("metadata-resource", MD, MUST, "metadata resource is the resource identifier", "RFC 9728 section 3.3: resource is the identifier the client used, or clients refuse the document", Check::Custom("resource identical (RFC 9728 3.3)", judge_resource), metadata_req),
    case("metadata-authorization-servers", MD, SHOULD, "metadata names the kit issuer", "RFC 9728 section 2: authorization_servers names the issuer (should)", Check::Custom("authorization_servers has the issuer", judge_authorization_servers), metadata_req),
    case("metadata-bearer-methods", MD, SHOULD, "bearer_methods_supported, if present, has header", "RFC 9728 section 2: bearer_methods_supported lists header (should)", Check::Custom("bearer_methods_supported has header", judge_bearer_methods), metadata_req),
    case("metadata-dpop-algs", MD, SHOULD, "metadata lists DPoP algorithms", "RFC 9728 section 2: dpop_signing_alg_values_supported (should)", Check::Custom("dpop_signing_alg_values_supported", judge_dpop_algs), metadata_req).dpop(),
    case("challenge-resource-metadata", MD, SHOULD, "401 challenge points at the metadata", "RFC 9728 section 5.1: 401 challenges carry resource_metadata (should)", Check::Custom("401 Bearer resource_metadata=\"<metadata URL>\"", judge_resource_metadata_param), |_| none()),
    // --- last: rotates the kit's key
    case("issuer-unavailable", CH, MUST, "JWKS down, token with a new kid", "RFC 6750 section 3.1 and RFC 9110 section 15.6.4: never accept a token that cannot be checked; 503 with Retry-After or 401", Check::Custom("not 2xx; 401 invalid_token or 503 + Retry-After", judge_issuer_down), |c| bearer(c.valid()?)).fault(Fault::JwksDownNewKey),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_names_the_standard_it_rests_on() {
        for case in CASES {
            assert!(
                case.basis.contains("RFC ") && case.basis.contains("section")
                    || case.basis.contains("draft-ietf-")
                    || case.basis.contains("Cognito"),
                "{}: {:?}",
                case.id,
                case.basis
            );
        }
    }

    #[test]
    fn ids_are_unique_and_kebab_case() {
        for (i, case) in CASES.iter().enumerate() {
            assert!(
                case.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                case.id
            );
            assert!(
                CASES[..i].iter().all(|c| c.id != case.id),
                "{} twice",
                case.id
            );
        }
    }
}
