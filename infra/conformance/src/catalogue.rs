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
    /// Only RFC 9068 targets (`typ`, `aud`).
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

    /// Judges an answer (the token echo is checked by the runner).
    pub fn judge(&self, ctx: &Ctx<'_>, answer: &Answer) -> Verdict {
        match self.check {
            Check::Custom(_, judge) => judge(ctx, answer),
            Check::SinkUntouched => Verdict::Pass,
            Check::Answer(status, want) => {
                let shape_ok = match answer.challenges() {
                    Ok(challenges) => {
                        challenges.iter().all(|c| check_syntax(c).is_ok())
                            && want.matches(&challenges)
                    }
                    Err(_) => false,
                };
                if answer.status == status && shape_ok {
                    Verdict::Pass
                } else if self.severity == Severity::Must
                    && (200..300).contains(&status) != answer.accepted()
                {
                    Verdict::Fail(Severity::Must)
                } else {
                    Verdict::Fail(Severity::Should)
                }
            }
        }
    }
}

const fn case(
    id: &'static str,
    group: Group,
    severity: Severity,
    name: &'static str,
    check: Check,
    build: Build,
) -> Case {
    Case {
        id,
        name,
        group,
        severity,
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

/// The catalogue, in the order it runs (the issuer outage last: it rotates the kit's key).
#[rustfmt::skip]
pub const CASES: &[Case] = &[
    // --- baseline, statuses and challenges
    case("valid-token", CH, MUST, "valid token", OK, |c| bearer(c.valid()?)),
    case("no-authorization", CH, MUST, "no Authorization header", NO_CREDENTIALS, |_| none()),
    case("basic-scheme", CH, MUST, "Authorization: Basic", NO_CREDENTIALS, |_| raw_auth(b"Basic bXktYmZmOnNlY3JldA==", String::new())),
    case("other-scope-only", CH, MUST, "valid token with another scope of the same API only", SCOPE, |c| { let (h, cl) = c.template_with_scope(&c.settings().other_scope()); bearer(c.issuer().sign(&h, &cl)?) }),
    // --- header
    case("alg-none", HD, MUST, "alg none, no signature", INVALID, |c| bearer(format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(c.claims_text().as_bytes())))),
    case("alg-none-signed", HD, MUST, "alg none, with signature", INVALID, |c| bearer(with_part(&c.valid()?, 0, &b64(br#"{"alg":"none"}"#)))),
    case("alg-none-mixed-case", HD, MUST, "alg None (mixed case)", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("None"))?)),
    case("hs256-public-pem", HD, MUST, "HS256 keyed with the public key PEM", INVALID, |c| bearer(c.hmac(c.issuer().current_key().public_key_pem()?.as_bytes())?)),
    case("hs256-public-der", HD, MUST, "HS256 keyed with the public key DER", INVALID, |c| bearer(c.hmac(&c.issuer().current_key().public_key_der()?)?)),
    case("hs256-public-jwk", HD, MUST, "HS256 keyed with the public JWK", INVALID, |c| bearer(c.hmac(c.issuer().current_key().public_jwk().to_string().as_bytes())?)),
    case("alg-rs384", HD, MUST, "alg RS384 on an RS256 key", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("RS384"))?)),
    case("alg-es256", HD, MUST, "alg ES256 on an RS256 key", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("ES256"))?)),
    case("alg-ps256", HD, MUST, "alg PS256 on an RS256 key", INVALID, |c| bearer(c.signed(|h, _| h["alg"] = json!("PS256"))?)),
    case("kid-absent", HD, SHOULD, "kid absent while the JWKS has several keys", INVALID, |c| bearer(c.signed(|h, _| remove(h, "kid"))?)),
    case("kid-path-traversal", HD, MUST, "kid with path traversal", INVALID, |c| bearer(c.signed(|h, _| h["kid"] = json!("../../../../etc/passwd"))?)),
    case("kid-sql", HD, MUST, "kid with SQL", INVALID, |c| bearer(c.signed(|h, _| h["kid"] = json!("' OR '1'='1' --"))?)),
    case("kid-10kb", HD, MUST, "kid of 10 KB", INVALID, |c| bearer(c.signed(|h, _| h["kid"] = json!("k".repeat(10_240)))?)),
    case("kid-not-string", HD, MUST, "kid not a string", INVALID, |c| bearer(c.signed(|h, _| h["kid"] = json!(42))?)),
    case("jku-attacker", HD, MUST, "jku to the attacker's JWKS (never fetched)", INVALID, |c| bearer(c.attacker_signed(|h, _| h["jku"] = json!(format!("{}/jwks.json", c.sink())))?)),
    case("x5u-attacker", HD, MUST, "x5u to the attacker's certificate (never fetched)", INVALID, |c| bearer(c.attacker_signed(|h, _| h["x5u"] = json!(format!("{}/cert.pem", c.sink())))?)),
    case("jwk-embedded", HD, MUST, "jwk header embedding the attacker's key", INVALID, |c| bearer(c.attacker_signed(|h, _| h["jwk"] = c.attacker().public_jwk().clone())?)),
    case("jwk-and-jku", HD, MUST, "jwk header and the issuer's kid", INVALID, |c| bearer(c.attacker_signed(|h, _| { h["jwk"] = c.attacker().public_jwk().clone(); h["jku"] = json!(c.sink()); })?)),
    case("jku-x5u-not-fetched", HD, MUST, "the jku/x5u/jwk URLs were never fetched", Check::SinkUntouched, |_| none()),
    case("crit-unknown", HD, MUST, "crit with an unknown extension", INVALID, |c| bearer(c.signed(|h, _| { h["crit"] = json!(["urn:x:ext"]); h["urn:x:ext"] = json!(true); })?)),
    case("typ-jwt", HD, MUST, "typ JWT under rfc9068", INVALID, |c| bearer(c.signed(|h, _| h["typ"] = json!("JWT"))?)).only(RFC9068),
    case("typ-missing", HD, MUST, "typ missing under rfc9068", INVALID, |c| bearer(c.signed(|h, _| remove(h, "typ"))?)).only(RFC9068),
    case("typ-full-media-type", HD, SHOULD, "typ application/at+jwt (accepted)", OK, |c| bearer(c.signed(|h, _| h["typ"] = json!("application/at+jwt"))?)).only(RFC9068),
    case("header-not-json", HD, MUST, "header not JSON", INVALID, |c| bearer(c.signed_raw(b"not json", c.claims_text().as_bytes())?)),
    case("header-array", HD, MUST, "header a JSON array, not an object", INVALID, |c| bearer(c.signed_raw(json!(["RS256", c.issuer().current_kid(), null, null]).to_string().as_bytes(), c.claims_text().as_bytes())?)),
    case("crit-null", HD, MUST, "crit present with the value null", INVALID, |c| bearer(c.signed(|h, _| h["crit"] = serde_json::Value::Null)?)),
    // --- claims
    case("exp-hour-ago", CL, MUST, "expired an hour ago", INVALID, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(now() - 3600))?)),
    case("exp-within-leeway", CL, SHOULD, "expired by less than the leeway (accepted)", OK, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(now() - 30))?)),
    case("exp-beyond-leeway", CL, SHOULD, "expired by more than the leeway", INVALID, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(now() - 90))?)),
    case("nbf-future", CL, MUST, "nbf in the future", INVALID, |c| bearer(c.signed(|_, cl| cl["nbf"] = json!(now() + 600))?)),
    case("iat-future", CL, SHOULD, "iat far in the future", INVALID, |c| bearer(c.signed(|_, cl| cl["iat"] = json!(now() + 86_400))?)),
    case("exp-missing", CL, MUST, "no exp", INVALID, |c| bearer(c.signed(|_, cl| remove(cl, "exp"))?)),
    case("exp-string", CL, MUST, "exp as a string", INVALID, |c| bearer(c.signed(|_, cl| cl["exp"] = json!((now() + 600).to_string()))?)),
    case("exp-fraction", CL, SHOULD, "exp with a fraction (RFC 7519 NumericDate; accepted)", OK, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(now() as f64 + 600.5))?)),
    case("exp-negative", CL, MUST, "exp negative", INVALID, |c| bearer(c.signed(|_, cl| cl["exp"] = json!(-1))?)),
    case("exp-huge", CL, SHOULD, "exp beyond any integer", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), c.claims_text().replace("\"exp\":", "\"exp\":1e300,\"x\":").as_bytes())?)),
    case("iss-wrong", CL, MUST, "wrong iss", INVALID, |c| bearer(c.signed(|_, cl| cl["iss"] = json!("https://evil.example"))?)),
    case("iss-trailing-slash", CL, MUST, "iss with a trailing slash", INVALID, |c| bearer(c.signed(|_, cl| cl["iss"] = json!(format!("{}/", c.issuer().issuer())))?)),
    case("iss-missing", CL, MUST, "iss missing", INVALID, |c| bearer(c.signed(|_, cl| remove(cl, "iss"))?)),
    case("aud-missing", CL, MUST, "aud missing under rfc9068", INVALID, |c| bearer(c.signed(|_, cl| remove(cl, "aud"))?)).only(RFC9068),
    case("aud-wrong", CL, MUST, "aud wrong under rfc9068", INVALID, |c| bearer(c.signed(|_, cl| cl["aud"] = json!("OtherService"))?)).only(RFC9068),
    case("aud-array-without-ours", CL, MUST, "aud array without ours", INVALID, |c| bearer(c.signed(|_, cl| cl["aud"] = json!(["a", "b"]))?)).only(RFC9068),
    case("aud-array-with-ours", CL, SHOULD, "aud array with ours (accepted)", OK, |c| bearer(c.signed(|_, cl| cl["aud"] = json!(["a", c.settings().audience]))?)).only(RFC9068),
    case("token-use-id", CL, MUST, "token_use id under cognito", INVALID, |c| bearer(c.signed(|_, cl| cl["token_use"] = json!("id"))?)).only(COGNITO),
    case("scope-missing", CL, MUST, "scope missing", SCOPE, |c| bearer(c.signed(|_, cl| remove(cl, "scope"))?)),
    case("scope-substring", CL, MUST, "scope containing ours only as a substring", SCOPE, |c| bearer(c.signed(|_, cl| cl["scope"] = json!(format!("{}_all", c.settings().scope)))?)),
    case("scope-array", CL, SHOULD, "scope as an array (accepted)", OK, |c| bearer(c.signed(|_, cl| cl["scope"] = json!([c.settings().scope]))?)).only(RFC9068),
    case("scope-quote", CL, MUST, "scope with a quote character", INVALID, |c| bearer(c.signed(|_, cl| cl["scope"] = json!("a\"b"))?)),
    case("scope-duplicate", CL, SHOULD, "duplicate scope claim", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), c.claims_text().replacen('{', &format!("{{\"scope\":{},", json!(c.settings().scope)), 1).as_bytes())?)),
    case("payload-not-utf8", CL, MUST, "payload not UTF-8", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), b"{\"sub\":\"\xff\xfe\"}")?)),
    case("unread-claim-not-utf8", CL, MUST, "a claim the API does not read holds invalid UTF-8", INVALID, |c| { let mut claims = b"{\"note\":\"\xff\",".to_vec(); claims.extend_from_slice(&c.claims_text().as_bytes()[1..]); bearer(c.signed_raw(&c.header_bytes(), &claims)?) }),
    case("unread-claim-surrogate", CL, MUST, "a claim the API does not read holds an unpaired surrogate", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), c.claims_text().replacen('{', "{\"note\":\"\\ud800\",", 1).as_bytes())?)),
    case("payload-array", CL, MUST, "payload a JSON array", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), b"[1,2,3]")?)),
    case("payload-string", CL, MUST, "payload a JSON string", INVALID, |c| bearer(c.signed_raw(&c.header_bytes(), b"\"hello\"")?)),
    // --- encoding
    case("signature-padding", EN, SHOULD, "base64 padding on the signature", INVALID, |c| bearer(format!("{}==", c.valid()?))),
    case("padding-inside-part", EN, SHOULD, "padding inside a part", BAD_REQUEST, |c| { let t = c.valid()?; bearer(with_part(&t, 1, &format!("{}=", part(&t, 1)))) }),
    case("standard-alphabet", EN, SHOULD, "standard base64 alphabet", INVALID, |c| { let t = c.valid()?; let sig = decode(part(&t, 2))?; bearer(with_part(&t, 2, &STANDARD.encode(sig))) }),
    case("four-parts", EN, SHOULD, "four parts", INVALID, |c| bearer(format!("{}.e30", c.valid()?))),
    case("two-parts", EN, MUST, "two parts", INVALID, |c| { let t = c.valid()?; bearer(t.rsplit_once('.').map(|(a, _)| a.to_owned()).unwrap_or_default()) }),
    case("empty-parts", EN, MUST, "empty parts", INVALID, |_| bearer("..".into())),
    case("tab-in-token", EN, SHOULD, "a tab inside the token", BAD_REQUEST, |c| { let t = c.valid()?; let (a, b) = t.split_at(20); raw_auth(format!("Bearer {a}\t{b}").as_bytes(), t.clone()) }),
    case("token-17kib", EN, MUST, "token of 17 KiB", INVALID, |c| bearer(format!("{}{}", c.valid()?, "A".repeat(17 * 1024)))),
    case("headers-1000", EN, SHOULD, "1,000 request headers", Check::Answer(431, Absent), |c| Ok(Req { extra_headers: 1000, ..bearer(c.valid()?)? })),
    case("bearer-empty", EN, MUST, "Bearer with no token", BAD_REQUEST, |_| raw_auth(b"Bearer ", String::new())),
    case("bearer-twice", EN, SHOULD, "Bearer twice in one header", BAD_REQUEST, |c| { let t = c.valid()?; raw_auth(format!("Bearer {t}, Bearer {t}").as_bytes(), t) }),
    case("two-authorization", EN, SHOULD, "two Authorization headers", BAD_REQUEST, |c| { let t = c.valid()?; Ok(Req { authorization: vec![format!("Bearer {t}").into_bytes(); 2], ..bearer(t)? }) }),
    case("bearer-lower-case", EN, SHOULD, "lower-case bearer (accepted)", OK, |c| { let t = c.valid()?; raw_auth(format!("bearer {t}").as_bytes(), t) }),
    case("query-token-only", EN, SHOULD, "token in the query string only (ignored)", NO_CREDENTIALS, |c| { let t = c.valid()?; Ok(Req { query: Some(format!("access_token={t}")), secret: t, ..Req::default() }) }),
    case("header-not-utf8", EN, MUST, "header value not UTF-8", BAD_REQUEST, |_| raw_auth(b"Bearer abc\xff", String::new())),
    // --- signature
    case("payload-bit-flipped", SG, MUST, "one flipped bit in the payload", INVALID, |c| bearer(flip_payload_bit(&c.valid()?)?)),
    case("signature-truncated", SG, MUST, "signature truncated", INVALID, |c| { let t = c.valid()?; bearer(t[..t.len() - 8].to_owned()) }),
    case("same-kid-other-key", SG, MUST, "signature from another key with the same kid", INVALID, |c| bearer(c.attacker_signed(|_, _| {})?)),
    case("removed-key", SG, MUST, "signed by a key removed from the JWKS", INVALID, |c| bearer(c.removed_key_token())),
    case("unknown-kid-attacker", SG, MUST, "unknown kid signed by the attacker", INVALID, |c| bearer(c.attacker_signed(|h, _| h["kid"] = json!(c.attacker().kid()))?)),
    // --- DPoP (RFC 9449), for targets that speak it
    case("dpop-valid", DP, MUST, "bound token with a correct proof", OK, |c| dpop_edited(c, |_, _| {})).dpop(),
    case("dpop-challenge", DP, SHOULD, "no credentials: the DPoP scheme is offered", Check::Answer(401, Want::DpopOffered), |_| none()).dpop(),
    case("dpop-proof-missing", DP, MUST, "bound token under the DPoP scheme, no proof", BAD_PROOF, |c| dpop_req(c.bound()?, vec![])).dpop(),
    case("dpop-other-key", DP, MUST, "proof signed by a key other than cnf.jkt", BAD_PROOF, |c| { let t = c.bound()?; let p = c.other_prover().proof("GET", &c.htu(), &t)?; dpop_req(t, vec![p]) }).dpop(),
    case("dpop-wrong-htm", DP, MUST, "proof for POST", BAD_PROOF, |c| dpop_edited(c, |_, cl| cl["htm"] = json!("POST"))).dpop(),
    case("dpop-wrong-htu", DP, MUST, "proof for another URL", BAD_PROOF, |c| { let other = format!("{}/other", c.htu()); dpop_edited(c, move |_, cl| cl["htu"] = json!(other)) }).dpop(),
    case("dpop-stale-iat", DP, MUST, "proof made 10 minutes ago", BAD_PROOF, |c| dpop_edited(c, |_, cl| cl["iat"] = json!(now() - 600))).dpop(),
    case("dpop-replay", DP, SHOULD, "the same proof twice (the second is judged)", BAD_PROOF, |c| Ok(Req { repeat: true, ..dpop_edited(c, |_, _| {})? })).dpop(),
    case("dpop-ath-mismatch", DP, MUST, "proof whose ath is another token's", BAD_PROOF, |c| dpop_edited(c, |_, cl| cl["ath"] = json!(b64(&[0; 32])))).dpop(),
    case("dpop-bound-as-bearer", DP, MUST, "bound token sent as Bearer", INVALID, |c| bearer(c.bound()?)).dpop(),
    // --- RFC 9728 protected resource metadata
    case("metadata-document", MD, SHOULD, "GET the metadata URL of the resource", Check::Custom("200 JSON object", judge_document), metadata_req),
    case("metadata-resource", MD, MUST, "metadata resource is the resource identifier", Check::Custom("resource identical (RFC 9728 3.3)", judge_resource), metadata_req),
    case("metadata-authorization-servers", MD, SHOULD, "metadata names the kit issuer", Check::Custom("authorization_servers has the issuer", judge_authorization_servers), metadata_req),
    case("metadata-bearer-methods", MD, SHOULD, "bearer_methods_supported, if present, has header", Check::Custom("bearer_methods_supported has header", judge_bearer_methods), metadata_req),
    case("metadata-dpop-algs", MD, SHOULD, "metadata lists DPoP algorithms", Check::Custom("dpop_signing_alg_values_supported", judge_dpop_algs), metadata_req).dpop(),
    case("challenge-resource-metadata", MD, SHOULD, "401 challenge points at the metadata", Check::Custom("401 Bearer resource_metadata=\"<metadata URL>\"", judge_resource_metadata_param), |_| none()),
    // --- last: rotates the kit's key
    case("issuer-unavailable", CH, MUST, "JWKS down, token with a new kid", Check::Custom("not 2xx; 401 invalid_token or 503 + Retry-After", judge_issuer_down), |c| bearer(c.valid()?)).fault(Fault::JwksDownNewKey),
];

#[cfg(test)]
mod tests {
    use super::*;

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
