//! From a token's claims to a [`Principal`](super::Principal): one path for JWTs and for
//! introspected (opaque) tokens, so both get the same time checks, audience, client
//! allow-list, scope parsing, scope aliases and `cnf` binding.
//!
//! Times are compared as real numbers in milliseconds (RFC 7519 NumericDate may carry a
//! fraction); `now` is the validator's clock.

use std::time::Duration;

use serde::de::MapAccess;
use serde_json::{Map, Value};

use super::error::ValidationError;
use super::principal::PrincipalParts;
use crate::jose::json::{Claim, Members, keep};
use crate::scope::{Scope, ScopeSet};

/// The shape of access token the API expects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenProfile {
    /// AWS Cognito: `token_use` must be `access`, no audience check; optionally only the
    /// listed `client_id`s are accepted.
    Cognito {
        /// Accepted `client_id`s; empty accepts any client of the issuer.
        allowed_client_ids: Vec<String>,
    },
    /// RFC 9068 JWT access tokens: `typ` is `at+jwt`, `aud` is required and must contain
    /// the audience.
    Rfc9068 {
        /// This API's audience (resource identifier).
        audience: String,
    },
    /// Any JWT access token; the audience is checked (and then required) only if set.
    Generic {
        /// This API's audience, if any.
        audience: Option<String>,
    },
}

/// The claims validation reads; every other claim is only checked to be well-formed (the
/// JOSE core's strict reader) and not repeated.
#[derive(Default)]
pub(crate) struct TokenClaims<'a> {
    iss: Option<Claim<'a>>,
    exp: Option<Claim<'a>>,
    nbf: Option<Claim<'a>>,
    iat: Option<Claim<'a>>,
    aud: Option<Claim<'a>>,
    sub: Option<Claim<'a>>,
    client_id: Option<Claim<'a>>,
    azp: Option<Claim<'a>>,
    token_use: Option<Claim<'a>>,
    typ: Option<Claim<'a>>,
    token_type: Option<Claim<'a>>,
    jti: Option<Claim<'a>>,
    scope: Option<Claim<'a>>,
    scp: Option<Claim<'a>>,
    cnf: Option<Claim<'a>>,
    act: Option<Claim<'a>>,
    may_act: Option<Claim<'a>>,
}

impl<'de> Members<'de> for TokenClaims<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<bool, A::Error> {
        match self.slot(name) {
            Some(slot) => keep(map, slot),
            None => Ok(false),
        }
    }
}

impl<'a> TokenClaims<'a> {
    fn slot(&mut self, name: &str) -> Option<&mut Option<Claim<'a>>> {
        Some(match name {
            "iss" => &mut self.iss,
            "exp" => &mut self.exp,
            "nbf" => &mut self.nbf,
            "iat" => &mut self.iat,
            "aud" => &mut self.aud,
            "sub" => &mut self.sub,
            "client_id" => &mut self.client_id,
            "azp" => &mut self.azp,
            "token_use" => &mut self.token_use,
            "typ" => &mut self.typ,
            "token_type" => &mut self.token_type,
            "jti" => &mut self.jti,
            "scope" => &mut self.scope,
            "scp" => &mut self.scp,
            "cnf" => &mut self.cnf,
            "act" => &mut self.act,
            "may_act" => &mut self.may_act,
            _ => return None,
        })
    }

    /// The claims of an introspection answer (RFC 7662), strings borrowed from it.
    pub(crate) fn from_map(answer: &'a Map<String, Value>) -> Self {
        let mut claims = TokenClaims::default();
        for (name, value) in answer {
            if let Some(slot) = claims.slot(name) {
                *slot = Some(match value {
                    Value::String(s) => Claim::Str(s.as_str().into()),
                    other => Claim::Other(other.clone()),
                });
            }
        }
        claims
    }

    /// The unverified `iss`, when it is a string (choosing among issuers).
    pub(crate) fn iss(&self) -> Option<&str> {
        self.iss.as_ref().and_then(Claim::as_str)
    }
}

/// What one issuer's tokens must satisfy beyond the signature.
#[derive(Clone)]
pub(crate) struct Rules {
    pub(crate) profile: TokenProfile,
    /// The audience a token must name, when one is configured (then `aud` is required).
    pub(crate) audience: Option<String>,
    /// This issuer's scope names mapped to the routes' (empty: none).
    pub(crate) scope_aliases: Vec<(String, Scope)>,
}

impl Rules {
    /// `allowed_client_ids` of the Cognito profile (empty: any client).
    fn allowed_client_ids(&self) -> &[String] {
        match &self.profile {
            TokenProfile::Cognito { allowed_client_ids } => allowed_client_ids,
            _ => &[],
        }
    }
}

/// Where the claims come from: what differs between the two paths.
pub(crate) enum Source {
    /// A verified JWT: `exp` and `iss` required, `iat` not in the future, and the
    /// profile's own claims (`token_use`, RFC 9068's required claims).
    Jwt,
    /// An introspection answer: `exp` optional (then the answer is good for `max_cache`),
    /// `iss` checked when present (and while the issuer is not known yet, the answer
    /// cannot be checked: unavailable, try again in `retry_after` seconds). The answer's
    /// `active` was checked by the caller.
    Introspection {
        max_cache: Duration,
        retry_after: u64,
    },
}

/// The checks and the time they run at.
pub(crate) struct Context<'a> {
    /// The issuer's exact `iss`, once known (`None`: discovery has not run yet).
    pub(crate) issuer: Option<&'a std::sync::Arc<str>>,
    /// Which of the validator's issuers.
    pub(crate) index: usize,
    pub(crate) now_ms: u64,
    pub(crate) leeway: Duration,
}

/// A NumericDate claim in milliseconds; `None` when absent, `Err` when not a finite,
/// non-negative number of seconds within range.
fn date_ms(value: Option<&Claim<'_>>) -> Result<Option<(f64, u64)>, ValidationError> {
    value
        .map(|v| {
            let seconds = v.numeric_date().ok_or(ValidationError::Claims)?;
            // In range (at most year 9999): the product fits a u64 exactly enough.
            Ok((seconds, (seconds * 1000.0) as u64))
        })
        .transpose()
}

/// A string claim; `Err` when present but not a string.
fn string<'a>(value: &'a Option<Claim<'_>>) -> Result<Option<&'a str>, ValidationError> {
    match value {
        None => Ok(None),
        Some(claim) => claim.as_str().map(Some).ok_or(ValidationError::Claims),
    }
}

/// A string claim that names someone: an empty string is no name.
fn non_empty<'a>(value: &'a Option<Claim<'_>>) -> Result<Option<&'a str>, ValidationError> {
    string(value).map(|v| v.filter(|s| !s.is_empty()))
}

/// Checks the claims and says who the caller is.
pub(crate) fn principal(
    rules: &Rules,
    claims: &TokenClaims<'_>,
    source: &Source,
    context: &Context<'_>,
) -> Result<PrincipalParts, ValidationError> {
    let now = context.now_ms;
    let leeway = u64::try_from(context.leeway.as_millis()).unwrap_or(u64::MAX);
    let (exp, exp_ms) = match (date_ms(claims.exp.as_ref())?, source) {
        (Some(exp), _) => exp,
        (None, Source::Jwt) => return Err(ValidationError::Claims),
        (None, Source::Introspection { max_cache, .. }) => {
            let ms = now.saturating_add(u64::try_from(max_cache.as_millis()).unwrap_or(0));
            (ms as f64 / 1000.0, ms)
        }
    };
    if rules.audience.is_some() && claims.aud.is_none() {
        return Err(ValidationError::Audience);
    }
    if exp_ms.saturating_add(leeway) < now {
        return Err(ValidationError::Expired);
    }
    let nbf = date_ms(claims.nbf.as_ref())?;
    if nbf.is_some_and(|(_, nbf)| nbf > now.saturating_add(leeway)) {
        return Err(ValidationError::NotYetValid);
    }
    if let (Some(expected), Some(aud)) = (&rules.audience, &claims.aud) {
        let named = match aud {
            Claim::Str(one) => one == expected,
            Claim::Other(Value::Array(many)) => {
                let mut named = false;
                for a in many {
                    named |= a.as_str().ok_or(ValidationError::Claims)? == expected;
                }
                named
            }
            _ => return Err(ValidationError::Claims),
        };
        if !named {
            return Err(ValidationError::Audience);
        }
    }
    // `iss` is one string, exactly the expected issuer (an array is refused, whatever it
    // holds). A JWT must name it; an introspection answer may leave it out.
    match (&claims.iss, context.issuer.map(|i| &**i), source) {
        (Some(Claim::Str(iss)), Some(expected), _) if iss == expected => {}
        (None, _, Source::Jwt) => return Err(ValidationError::Claims),
        (None, _, Source::Introspection { .. }) => {}
        (Some(_), None, Source::Introspection { retry_after, .. }) => {
            return Err(ValidationError::IntrospectionUnavailable {
                retry_after: *retry_after,
            });
        }
        _ => return Err(ValidationError::Issuer),
    }
    access_token_kind(claims)?;
    match source {
        Source::Jwt => {
            if let Some((_, iat)) = date_ms(claims.iat.as_ref())?
                && iat > now.saturating_add(leeway)
            {
                return Err(ValidationError::IssuedInFuture);
            }
            profile_claims(rules, claims)?;
        }
        // The Cognito profile's rule, for answers that carry `token_use` (RFC 7662 does
        // not define it; ORY Hydra writes `access_token`).
        Source::Introspection { .. } => {
            if matches!(rules.profile, TokenProfile::Cognito { .. })
                && string(&claims.token_use)?.is_some_and(|u| u != "access" && u != "access_token")
            {
                return Err(ValidationError::TokenUse);
            }
        }
    }
    // An empty identifier is no identifier: fall through to the next claim, and refuse
    // the token if none names the caller.
    let subject = non_empty(&claims.sub)?;
    let client_id = match (
        non_empty(&claims.client_id)?,
        non_empty(&claims.azp)?,
        subject,
    ) {
        (Some(c), _, _) | (None, Some(c), _) | (None, None, Some(c)) => c,
        (None, None, None) => return Err(ValidationError::Claims),
    };
    let allowed = rules.allowed_client_ids();
    if !allowed.is_empty() && !allowed.iter().any(|c| c == client_id) {
        return Err(ValidationError::ClientNotAllowed);
    }
    let mut scopes = match (&claims.scope, &claims.scp) {
        (Some(v), _) | (None, Some(v)) => scope_claim(v)?,
        (None, None) => ScopeSet::new(),
    };
    for (from, to) in &rules.scope_aliases {
        if scopes.contains(from) {
            scopes.insert(to.clone());
        }
    }
    let (jkt, x5t) = confirmation(&claims.cnf)?;
    Ok(PrincipalParts {
        client_id: client_id.to_owned(),
        subject: subject.map(str::to_owned),
        scopes,
        // Whole seconds: `exp` rounded down and `nbf` up, so a cached principal is never
        // served outside the token's window.
        expires_at: exp.floor() as u64,
        not_before: nbf.map(|(nbf, _)| nbf.ceil() as u64),
        issuer: context.issuer.cloned().unwrap_or_else(|| "".into()),
        issuer_index: context.index,
        dpop_jkt: jkt.map(str::to_owned),
        certificate_thumbprint: x5t.map(str::to_owned),
        actors: actors(&claims.act)?,
        may_act: may_act(&claims.may_act, &claims.act)?,
    })
}

/// The longest delegation chain (`act` within `act`) accepted. RFC 8693 sets no bound;
/// a chain of services is rarely more than a few deep, and a bound keeps a crafted token
/// from costing much.
pub(crate) const MAX_DELEGATION_DEPTH: usize = 8;

/// RFC 8693 section 4.1: the actors of a delegated token, the current one (the outermost
/// `act`) first, then each prior actor. Each `act` must be an object naming its actor with
/// a non-empty string `sub`; a malformed or deeper chain refuses the token.
fn actors(act: &Option<Claim<'_>>) -> Result<Vec<String>, ValidationError> {
    let mut chain = Vec::new();
    let mut next = match act {
        None => return Ok(chain),
        Some(Claim::Other(Value::Object(outer))) => Some(outer),
        Some(_) => return Err(ValidationError::Claims),
    };
    while let Some(actor) = next {
        if chain.len() == MAX_DELEGATION_DEPTH {
            return Err(ValidationError::Claims);
        }
        match actor.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => chain.push(sub.clone()),
            _ => return Err(ValidationError::Claims),
        }
        next = match actor.get("act") {
            None => None,
            Some(Value::Object(prior)) => Some(prior),
            Some(_) => return Err(ValidationError::Claims),
        };
    }
    Ok(chain)
}

/// RFC 8693 section 4.4: `may_act` names who may act for the subject. With an `act` beside
/// it: whether the current actor (`act.sub`) is the one named. `None` without `may_act`.
fn may_act(
    may_act: &Option<Claim<'_>>,
    act: &Option<Claim<'_>>,
) -> Result<Option<bool>, ValidationError> {
    let Some(may_act) = may_act else {
        return Ok(None);
    };
    let Claim::Other(Value::Object(may_act)) = may_act else {
        return Err(ValidationError::Claims);
    };
    let Some(Value::String(allowed)) = may_act.get("sub") else {
        return Err(ValidationError::Claims);
    };
    let current = match act {
        Some(Claim::Other(Value::Object(act))) => act.get("sub").and_then(Value::as_str),
        _ => None,
    };
    Ok(Some(current == Some(allowed.as_str())))
}

/// The marks some issuers put on a token to say what kind it is (Cognito's and ORY
/// Hydra's `token_use`, Keycloak's `typ` claim, RFC 7662's `token_type`): a token marked
/// as a refresh token, an offline token, an ID token or a logout token is refused under
/// every profile, as a JWT or an introspection answer. Only an access token opens an API.
fn access_token_kind(claims: &TokenClaims<'_>) -> Result<(), ValidationError> {
    let other_kind = |mark: &str| {
        let mark = mark.to_ascii_lowercase();
        mark.contains("refresh")
            || matches!(
                mark.as_str(),
                "id" | "id_token"
                    | "offline"
                    | "logout"
                    | "urn:ietf:params:oauth:token-type:id_token"
            )
    };
    let marks = [&claims.token_use, &claims.typ, &claims.token_type];
    if marks.into_iter().any(|mark| {
        mark.as_ref()
            .and_then(Claim::as_str)
            .is_some_and(other_kind)
    }) {
        return Err(ValidationError::TokenUse);
    }
    Ok(())
}

/// The profile's own claims, for a JWT: `cognito` needs `token_use: "access"`; `rfc9068`
/// needs every claim RFC 9068 section 2.2 makes required (`iss`, `exp` and `aud` are
/// checked before).
fn profile_claims(rules: &Rules, claims: &TokenClaims<'_>) -> Result<(), ValidationError> {
    match rules.profile {
        TokenProfile::Cognito { .. } if string(&claims.token_use)? != Some("access") => {
            Err(ValidationError::TokenUse)
        }
        TokenProfile::Rfc9068 { .. } => {
            let present = [&claims.sub, &claims.client_id, &claims.jti]
                .iter()
                .all(|v| matches!(v, Some(Claim::Str(s)) if !s.is_empty()))
                && claims.iat.as_ref().and_then(Claim::numeric_date).is_some();
            if present {
                Ok(())
            } else {
                Err(ValidationError::Claims)
            }
        }
        _ => Ok(()),
    }
}

/// What a token is bound to (`cnf`, RFC 7800), when anything: `jkt`, the thumbprint of a
/// DPoP key (RFC 9449 section 6.1), or `x5t#S256`, the thumbprint of a client certificate
/// (RFC 8705 section 3.1); each a string, and never both: a token bound two ways would be
/// checked one way only, depending on how it is presented.
fn confirmation<'a>(
    cnf: &'a Option<Claim<'_>>,
) -> Result<(Option<&'a str>, Option<&'a str>), ValidationError> {
    let Some(cnf) = cnf else {
        return Ok((None, None));
    };
    let Claim::Other(Value::Object(cnf)) = cnf else {
        return Err(ValidationError::Claims);
    };
    let member = |name: &str| match cnf.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.as_str())),
        Some(_) => Err(ValidationError::Claims),
    };
    match (member("jkt")?, member("x5t#S256")?) {
        (Some(_), Some(_)) => Err(ValidationError::Claims),
        binding => Ok(binding),
    }
}

/// `scope` / `scp`: a space-separated string, or an array of strings (IdentityServer).
fn scope_claim(value: &Claim<'_>) -> Result<ScopeSet, ValidationError> {
    match value {
        Claim::Str(s) => ScopeSet::parse(s).map_err(|_| ValidationError::Claims),
        Claim::Other(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(|s| Scope::new(s).ok())
                    .ok_or(ValidationError::Claims)
            })
            .collect(),
        _ => Err(ValidationError::Claims),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_claim_string_or_array() {
        let s = scope_claim(&Claim::Str("a b".into())).unwrap();
        let a = scope_claim(&Claim::Other(serde_json::json!(["b", "a"]))).unwrap();
        assert_eq!(s, a);
        assert!(scope_claim(&Claim::Other(serde_json::json!([1]))).is_err());
        assert!(scope_claim(&Claim::Other(serde_json::json!(5))).is_err());
    }

    #[test]
    fn duplicate_claims_are_refused() {
        fn parse(json: &str) -> Result<TokenClaims<'_>, serde_json::Error> {
            crate::jose::json::parse(json.as_bytes())
        }
        assert!(parse(r#"{"scope":"a","scope":"b"}"#).is_err());
        assert!(
            parse(r#"{"x":1,"y":2,"x":3}"#).is_err(),
            "unread claims too"
        );
        assert!(parse(r#"{"x":1,"\u0078":3}"#).is_err(), "escaped names too");
        let claims = parse(r#"{"scope":"a","x":{"y":[1,2]},"exp":5,"aud":["b"]}"#).unwrap();
        assert_eq!(claims.scope.as_ref().and_then(Claim::as_str), Some("a"));
        assert_eq!(claims.exp.as_ref().and_then(Claim::numeric_date), Some(5.0));
        assert!(matches!(claims.aud, Some(Claim::Other(Value::Array(_)))));
        let escaped = parse(r#"{"sub":"a\"b"}"#).unwrap();
        assert_eq!(escaped.sub.as_ref().and_then(Claim::as_str), Some("a\"b"));
        assert!(parse("[1]").is_err());
        assert!(parse(r#"{"x":1"#).is_err(), "malformed unread claims too");
    }
}
