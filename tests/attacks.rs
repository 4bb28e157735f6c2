//! The attack catalogue: crafted requests against my-service behind the real validation
//! layer, over HTTP. Each case is one line of the table at the bottom: a name, the target
//! profile, how to build the request, the expected status and `WWW-Authenticate` error.
//! Every answer is also checked for an echo of the token in its headers or body.
//!
//! Tokens are built with the issuer's real keys (so only the attacked property is wrong),
//! with an attacker's own key, or as raw bytes. A listener stands at the URLs that `jku`,
//! `x5u` and `jwk` headers point to; after the run it must have received nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mock_issuer::keys::{Algorithm, SigningKey};
use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::{Value, json};
use shared_auth::server::TokenProfile;
use system_tests::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One issuer and the my-service that trusts it.
struct Fixture {
    issuer: IssuerHandle,
    service: TestServer,
    /// Signed by a key the issuer published once and has since removed.
    removed_key_token: String,
}

struct Ctx {
    cognito: Fixture,
    rfc9068: Fixture,
    attacker: SigningKey,
    sink: String,
}

#[derive(Clone, Copy)]
enum Target {
    Cognito,
    Rfc9068,
}

/// What the `WWW-Authenticate` header must say.
#[derive(Clone, Copy, Debug)]
enum Challenge {
    /// No challenge at all (success, or refused before auth).
    Absent,
    /// A bare `Bearer` (no credentials).
    Bare,
    /// `Bearer error="..."`.
    Error(&'static str),
}
use Challenge::{Absent, Bare, Error};

/// A request to send: Authorization values (raw bytes), optional query, and the token text
/// that must not be echoed.
struct Req {
    authorization: Vec<Vec<u8>>,
    extra_headers: usize,
    query: Option<String>,
    secret: String,
}

impl Ctx {
    fn fixture(&self, t: Target) -> &Fixture {
        match t {
            Target::Cognito => &self.cognito,
            Target::Rfc9068 => &self.rfc9068,
        }
    }

    /// The issuer's normal header and claims for the BFF with the read scope.
    fn template(&self, t: Target) -> (Value, Value) {
        self.fixture(t).issuer.token_template(BFF_ID, &[READ])
    }

    /// A token signed by the issuer after `edit` changed header and claims.
    fn signed(&self, t: Target, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut h, mut c) = self.template(t);
        edit(&mut h, &mut c);
        self.fixture(t).issuer.sign(&h, &c).unwrap()
    }

    /// A token signed by the issuer over raw header and payload bytes.
    fn signed_raw(&self, t: Target, header: &[u8], payload: &[u8]) -> String {
        self.fixture(t).issuer.sign_raw(header, payload).unwrap()
    }

    /// The normal header, as bytes.
    fn header_bytes(&self, t: Target) -> Vec<u8> {
        self.template(t).0.to_string().into_bytes()
    }

    /// A token signed by the attacker's key after `edit`.
    fn attacker_signed(&self, t: Target, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut h, mut c) = self.template(t);
        edit(&mut h, &mut c);
        self.attacker.sign_json(&h, &c).unwrap()
    }

    /// An HS256 token keyed with `secret` that claims the issuer's kid.
    fn hmac(&self, t: Target, secret: &[u8]) -> String {
        let (h, c) = self.template(t);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = h["kid"].as_str().map(str::to_owned);
        jsonwebtoken::encode(
            &header,
            &c,
            &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    fn valid(&self, t: Target) -> String {
        self.signed(t, |_, _| {})
    }
}

fn bearer(token: String) -> Req {
    Req {
        authorization: vec![format!("Bearer {token}").into_bytes()],
        extra_headers: 0,
        query: None,
        secret: token,
    }
}

fn raw_auth(value: &[u8], secret: String) -> Req {
    Req {
        authorization: vec![value.to_vec()],
        extra_headers: 0,
        query: None,
        secret,
    }
}

/// Replaces one part (0 header, 1 payload, 2 signature) of a compact token.
fn with_part(token: &str, index: usize, part: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = part;
    parts.join(".")
}

type Build = fn(&Ctx) -> Req;

struct Case {
    name: &'static str,
    target: Target,
    build: Build,
    status: u16,
    challenge: Challenge,
}

const fn case(
    name: &'static str,
    target: Target,
    status: u16,
    challenge: Challenge,
    build: Build,
) -> Case {
    Case {
        name,
        target,
        build,
        status,
        challenge,
    }
}

use Target::{Cognito as C, Rfc9068 as R};
const INVALID: Challenge = Error("invalid_token");
const SCOPE: Challenge = Error("insufficient_scope");
const BAD_REQUEST: Challenge = Error("invalid_request");

/// The catalogue. One line per case (kept so by `rustfmt::skip`).
#[rustfmt::skip]
const CASES: &[Case] = &[
    // --- baseline
    case("valid token", C, 200, Absent, |c| bearer(c.valid(C))),
    case("valid rfc9068 token", R, 200, Absent, |c| bearer(c.valid(R))),
    // --- header
    case("alg none, no signature", C, 401, INVALID, |c| bearer(format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(c.template(C).1.to_string().as_bytes())))),
    case("alg none, with signature", C, 401, INVALID, |c| bearer(with_part(&c.valid(C), 0, &b64(br#"{"alg":"none"}"#)))),
    case("alg None (mixed case)", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| h["alg"] = json!("None")))),
    case("HS256 keyed with the public key PEM", C, 401, INVALID, |c| bearer(c.hmac(C, c.cognito.issuer.current_key().public_key_pem().unwrap().as_bytes()))),
    case("HS256 keyed with the public key DER", C, 401, INVALID, |c| bearer(c.hmac(C, &c.cognito.issuer.current_key().public_key_der().unwrap()))),
    case("HS256 keyed with the public JWK", C, 401, INVALID, |c| bearer(c.hmac(C, c.cognito.issuer.current_key().public_jwk().to_string().as_bytes()))),
    case("alg RS384 on an RS256 key", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| h["alg"] = json!("RS384")))),
    case("alg ES256 on an RS256 key", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| h["alg"] = json!("ES256")))),
    case("alg PS256 on an RS256 key", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| h["alg"] = json!("PS256")))),
    case("kid absent while the JWKS has several keys", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| drop(h.as_object_mut().unwrap().remove("kid"))))),
    case("kid with path traversal", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| h["kid"] = json!("../../../../etc/passwd")))),
    case("kid with SQL", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| h["kid"] = json!("' OR '1'='1' --")))),
    case("kid of 10 KB", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| h["kid"] = json!("k".repeat(10_240))))),
    case("kid not a string", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| h["kid"] = json!(42)))),
    case("jku to the attacker's JWKS (never fetched)", C, 401, INVALID, |c| bearer(c.attacker_signed(C, |h, _| h["jku"] = json!(format!("{}/jwks.json", c.sink))))),
    case("x5u to the attacker's certificate (never fetched)", C, 401, INVALID, |c| bearer(c.attacker_signed(C, |h, _| h["x5u"] = json!(format!("{}/cert.pem", c.sink))))),
    case("jwk header embedding the attacker's key", C, 401, INVALID, |c| bearer(c.attacker_signed(C, |h, _| h["jwk"] = c.attacker.public_jwk().clone()))),
    case("jwk header and the issuer's kid", C, 401, INVALID, |c| bearer(c.attacker_signed(C, |h, _| { h["jwk"] = c.attacker.public_jwk().clone(); h["jku"] = json!(c.sink.clone()); }))),
    case("crit with an unknown extension", C, 401, INVALID, |c| bearer(c.signed(C, |h, _| { h["crit"] = json!(["urn:x:ext"]); h["urn:x:ext"] = json!(true); }))),
    case("typ JWT under rfc9068", R, 401, INVALID, |c| bearer(c.signed(R, |h, _| h["typ"] = json!("JWT")))),
    case("typ missing under rfc9068", R, 401, INVALID, |c| bearer(c.signed(R, |h, _| drop(h.as_object_mut().unwrap().remove("typ"))))),
    case("typ application/at+jwt (accepted)", R, 200, Absent, |c| bearer(c.signed(R, |h, _| h["typ"] = json!("application/at+jwt")))),
    case("header not JSON", C, 401, INVALID, |c| bearer(c.signed_raw(C, b"not json", c.template(C).1.to_string().as_bytes()))),
    // --- claims
    case("expired an hour ago", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["exp"] = json!(now() - 3600)))),
    case("expired by less than the leeway (accepted)", C, 200, Absent, |c| bearer(c.signed(C, |_, cl| cl["exp"] = json!(now() - 30)))),
    case("expired by more than the leeway", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["exp"] = json!(now() - 90)))),
    case("nbf in the future", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["nbf"] = json!(now() + 600)))),
    case("iat far in the future", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["iat"] = json!(now() + 86_400)))),
    case("no exp", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| drop(cl.as_object_mut().unwrap().remove("exp"))))),
    case("exp as a string", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["exp"] = json!((now() + 600).to_string())))),
    case("exp as a float", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["exp"] = json!(now() as f64 + 600.5)))),
    case("exp beyond any integer", C, 401, INVALID, |c| bearer(c.signed_raw(C, &c.header_bytes(C), c.template(C).1.to_string().replace("\"exp\":", "\"exp\":1e300,\"x\":").as_bytes()))),
    case("wrong iss", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["iss"] = json!("https://evil.example")))),
    case("iss with a trailing slash", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["iss"] = json!(format!("{}/", c.cognito.issuer.issuer()))))),
    case("iss missing", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| drop(cl.as_object_mut().unwrap().remove("iss"))))),
    case("aud missing under rfc9068", R, 401, INVALID, |c| bearer(c.signed(R, |_, cl| drop(cl.as_object_mut().unwrap().remove("aud"))))),
    case("aud wrong under rfc9068", R, 401, INVALID, |c| bearer(c.signed(R, |_, cl| cl["aud"] = json!("OtherService")))),
    case("aud array without ours", R, 401, INVALID, |c| bearer(c.signed(R, |_, cl| cl["aud"] = json!(["a", "b"])))),
    case("aud array with ours (accepted)", R, 200, Absent, |c| bearer(c.signed(R, |_, cl| cl["aud"] = json!(["a", "MyService"])))),
    case("token_use id under cognito", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["token_use"] = json!("id")))),
    case("scope missing", C, 403, SCOPE, |c| bearer(c.signed(C, |_, cl| drop(cl.as_object_mut().unwrap().remove("scope"))))),
    case("scope containing ours only as a substring", C, 403, SCOPE, |c| bearer(c.signed(C, |_, cl| cl["scope"] = json!("MyService/weather_read_all")))),
    case("scope as an array (accepted)", R, 200, Absent, |c| bearer(c.signed(R, |_, cl| cl["scope"] = json!([READ])))),
    case("scope with a quote character", C, 401, INVALID, |c| bearer(c.signed(C, |_, cl| cl["scope"] = json!("a\"b")))),
    case("duplicate scope claim", C, 401, INVALID, |c| bearer(c.signed_raw(C, &c.header_bytes(C), c.template(C).1.to_string().replacen('{', "{\"scope\":\"MyService/weather_read\",", 1).as_bytes()))),
    case("payload not UTF-8", C, 401, INVALID, |c| bearer(c.signed_raw(C, &c.header_bytes(C), b"{\"sub\":\"\xff\xfe\"}"))),
    case("payload a JSON array", C, 401, INVALID, |c| bearer(c.signed_raw(C, &c.header_bytes(C), b"[1,2,3]"))),
    case("payload a JSON string", C, 401, INVALID, |c| bearer(c.signed_raw(C, &c.header_bytes(C), b"\"hello\""))),
    // --- encoding
    case("base64 padding on the signature", C, 401, INVALID, |c| bearer(format!("{}==", c.valid(C)))),
    case("padding inside a part", C, 400, BAD_REQUEST, |c| { let t = c.valid(C); bearer(with_part(&t, 1, &format!("{}=", t.split('.').nth(1).unwrap()))) }),
    case("standard base64 alphabet", C, 401, INVALID, |c| { let t = c.valid(C); let sig = URL_SAFE_NO_PAD.decode(t.split('.').nth(2).unwrap()).unwrap(); bearer(with_part(&t, 2, &STANDARD.encode(sig))) }),
    case("four parts", C, 401, INVALID, |c| bearer(format!("{}.e30", c.valid(C)))),
    case("two parts", C, 401, INVALID, |c| { let t = c.valid(C); bearer(t.rsplit_once('.').unwrap().0.to_owned()) }),
    case("empty parts", C, 401, INVALID, |_| bearer("..".into())),
    case("a tab inside the token", C, 400, BAD_REQUEST, |c| { let t = c.valid(C); raw_auth(format!("Bearer {}\t{}", &t[..20], &t[20..]).as_bytes(), t) }),
    case("token of 17 KiB", C, 401, INVALID, |c| bearer(format!("{}{}", c.valid(C), "A".repeat(17 * 1024)))),
    case("1,000 request headers", C, 431, Absent, |c| Req { extra_headers: 1000, ..bearer(c.valid(C)) }),
    case("Authorization: Basic", C, 401, Bare, |_| raw_auth(b"Basic bXktYmZmOnNlY3JldA==", String::new())),
    case("no Authorization header", C, 401, Bare, |_| Req { authorization: vec![], extra_headers: 0, query: None, secret: String::new() }),
    case("Bearer with no token", C, 400, BAD_REQUEST, |_| raw_auth(b"Bearer ", String::new())),
    case("Bearer twice in one header", C, 400, BAD_REQUEST, |c| { let t = c.valid(C); raw_auth(format!("Bearer {t}, Bearer {t}").as_bytes(), t) }),
    case("two Authorization headers", C, 400, BAD_REQUEST, |c| { let t = c.valid(C); Req { authorization: vec![format!("Bearer {t}").into_bytes(); 2], ..bearer(t) } }),
    case("lower-case bearer (accepted)", C, 200, Absent, |c| { let t = c.valid(C); raw_auth(format!("bearer {t}").as_bytes(), t) }),
    case("token in the query string only (ignored)", C, 401, Bare, |c| { let t = c.valid(C); Req { authorization: vec![], extra_headers: 0, query: Some(format!("access_token={t}")), secret: t } }),
    case("header value not UTF-8", C, 400, BAD_REQUEST, |_| raw_auth(b"Bearer abc\xff", String::new())),
    // --- signature
    case("one flipped bit in the payload", C, 401, INVALID, |c| { let t = c.valid(C); let mut p = URL_SAFE_NO_PAD.decode(t.split('.').nth(1).unwrap()).unwrap(); p[5] ^= 1; bearer(with_part(&t, 1, &b64(&p))) }),
    case("signature truncated", C, 401, INVALID, |c| { let t = c.valid(C); bearer(t[..t.len() - 8].to_owned()) }),
    case("signature from another key with the same kid", C, 401, INVALID, |c| bearer(c.attacker_signed(C, |_, _| {}))),
    case("signed by a key removed from the JWKS", C, 401, INVALID, |c| bearer(c.cognito.removed_key_token.clone())),
    case("unknown kid signed by the attacker", C, 401, INVALID, |c| bearer(c.attacker_signed(C, |h, _| h["kid"] = json!(c.attacker.kid())))),
];

async fn fixture(issuer_profile: IssuerProfile, profile: TokenProfile) -> Fixture {
    let issuer = start_issuer(issuer_profile).await;
    // Sign with key A, then retire A for good: the JWKS will never list it again.
    let removed_key_token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    issuer.rotate_key().unwrap();
    issuer.drop_previous_keys();
    // B signs a token (so it stays published after retirement), then rotate once more:
    // the JWKS has two keys, B and C.
    fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    issuer.rotate_key().unwrap();
    let keys = jwks(&issuer).await;
    assert_eq!(keys.keys.len(), 2, "fixture: two published keys");
    let service = start_service(&issuer, profile).await;
    Fixture {
        issuer,
        service,
        removed_key_token,
    }
}

/// A listener that records every request it gets.
async fn sink() -> (TestServer, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            "{}"
        }
    });
    (serve(app).await, hits)
}

async fn send(ctx: &Ctx, case: &Case) -> reqwest::Response {
    let req = (case.build)(ctx);
    let base = &ctx.fixture(case.target).service.base;
    let url = match &req.query {
        Some(q) => format!("{base}/weatherforecast?{q}"),
        None => format!("{base}/weatherforecast"),
    };
    let mut builder = http().get(url);
    for value in &req.authorization {
        builder = builder.header(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    for i in 0..req.extra_headers {
        builder = builder.header(format!("x-filler-{i}"), "x");
    }
    let response = builder.send().await.unwrap();
    check_no_echo(case.name, response, &req.secret).await
}

/// Fails if any header or the body contains the token or a long piece of it; gives back
/// an equivalent response for the status checks.
async fn check_no_echo(name: &str, response: reqwest::Response, secret: &str) -> reqwest::Response {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&body);
    let pieces: Vec<&str> = secret
        .split(['.', ' ', '\t'])
        .filter(|p| p.len() >= 16)
        .collect();
    for piece in &pieces {
        assert!(!text.contains(piece), "{name}: body echoes the token");
        for (_, v) in &headers {
            assert!(
                !String::from_utf8_lossy(v.as_bytes()).contains(piece),
                "{name}: a header echoes the token"
            );
        }
    }
    let mut rebuilt = http::Response::builder().status(status);
    for (k, v) in &headers {
        rebuilt = rebuilt.header(k, v);
    }
    reqwest::Response::from(rebuilt.body(body.to_vec()).unwrap())
}

#[tokio::test]
async fn attack_catalogue() {
    assert!(CASES.len() >= 40, "the catalogue has {} cases", CASES.len());
    let (sink_server, sink_hits) = sink().await;
    let ctx = Ctx {
        cognito: fixture(IssuerProfile::Cognito, cognito()).await,
        rfc9068: fixture(
            IssuerProfile::Rfc9068,
            TokenProfile::Rfc9068 {
                audience: "MyService".into(),
            },
        )
        .await,
        attacker: SigningKey::generate(Algorithm::RS256).unwrap(),
        sink: sink_server.base.clone(),
    };
    let mut failures = Vec::new();
    for case in CASES {
        let response = send(&ctx, case).await;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let challenge_ok = match (case.challenge, &challenge) {
            (Absent, None) => true,
            (Bare, Some(c)) => c == "Bearer",
            (Error(code), Some(c)) => c.starts_with(&format!("Bearer error=\"{code}\"")),
            _ => false,
        };
        if status >= 400 && status != 431 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{}",
                case.name
            );
        }
        if status != case.status || !challenge_ok {
            failures.push(format!(
                "{}: got {status} {challenge:?}, expected {} {:?}",
                case.name, case.status, case.challenge
            ));
        }
    }
    println!(
        "attack catalogue: {} cases, {} failed",
        CASES.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        sink_hits.load(Ordering::SeqCst),
        0,
        "a jku/x5u/jwk URL was fetched"
    );
}
