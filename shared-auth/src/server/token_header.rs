//! An access token's JOSE header, checked before any key is looked up: an algorithm this
//! crate can name, no `crit`, and what its `typ` says (the profile's check needs the
//! issuer, so it comes after the issuer is chosen).

use super::error::ValidationError;
use crate::jose::SignatureAlgorithm;
use crate::jose::compact::{Compact, STACK_PART, decode_part};
use crate::jose::json;

/// A token's header, checked.
pub(crate) struct TokenHeader {
    pub(crate) alg: SignatureAlgorithm,
    kid: Option<Box<str>>,
    pub(crate) typ: Typ,
}

/// What a header's `typ` says.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Typ {
    /// No `typ`.
    Absent,
    /// `at+jwt` or `application/at+jwt` (RFC 9068).
    AccessToken,
    /// A type of some other kind of JWT (see `is_foreign_type`).
    Foreign,
    /// Any other type (`JWT`, ...).
    Other,
}

impl TokenHeader {
    /// The header of a compact JWT, with the checks that need nothing else: a JSON object
    /// (the JOSE core's strict reader), a known `alg` (HMAC and `none` cannot be named), no
    /// `crit` (this validator understands no extension, RFC 7515 section 4.1.11; `null`
    /// is present too).
    pub(crate) fn parse(token: &str) -> Result<Self, ValidationError> {
        let part = Compact::header_part(token).map_err(|_| ValidationError::Malformed)?;
        let mut buffer = [0u8; STACK_PART];
        let bytes = decode_part(part, &mut buffer).map_err(|_| ValidationError::Malformed)?;
        let raw = json::parse_header(&bytes).map_err(|_| ValidationError::Malformed)?;
        let alg = raw.alg().ok_or(ValidationError::Malformed)?;
        let alg = SignatureAlgorithm::from_name(alg).ok_or(ValidationError::Algorithm)?;
        if raw.crit {
            return Err(ValidationError::CriticalHeader);
        }
        let typ = match raw.typ() {
            None => Typ::Absent,
            Some(t) if is_media_type(t, "at+jwt") => Typ::AccessToken,
            Some(t) if is_foreign_type(t) => Typ::Foreign,
            Some(_) => Typ::Other,
        };
        Ok(TokenHeader {
            alg,
            kid: raw.kid().map(Box::from),
            typ,
        })
    }

    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// The `typ` values of JWTs that are not access tokens but could carry the same claims
/// (RFC 8725 section 3.11: explicit typing keeps them apart). Checked without the
/// `application/` prefix, case-insensitively.
const FOREIGN_TYPES: &[&str] = &[
    "logout+jwt",
    "secevent+jwt",
    "dpop+jwt",
    "id_token+jwt",
    "client-authentication+jwt",
    "oauth-authz-req+jwt",
    "token-introspection+jwt",
    "jwk-set+jwt",
    "kb+jwt",
    "vc+jwt",
    "vp+jwt",
    "dc+sd-jwt",
    "entity-statement+jwt",
    "trust-mark+jwt",
];

/// A media type without its `application/` prefix (any case), as a slice of `typ`:
/// compared case-insensitively by the callers, so nothing is allocated on the path every
/// first-seen token takes.
pub(crate) fn media_type(typ: &str) -> &str {
    const PREFIX: &str = "application/";
    match typ.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => &typ[PREFIX.len()..],
        _ => typ,
    }
}

/// Whether `typ` is the media type `name` (given in lower case), prefix and case aside.
pub(crate) fn is_media_type(typ: &str, name: &str) -> bool {
    media_type(typ).eq_ignore_ascii_case(name)
}

/// Whether a `typ` names some JWT other than an access token. Anything ending in `+jwt`
/// but `at+jwt` is another kind, as are the listed ones.
fn is_foreign_type(typ: &str) -> bool {
    let typ = media_type(typ);
    let ends_with = |suffix: &str| {
        typ.len() >= suffix.len()
            && typ.as_bytes()[typ.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    (ends_with("+jwt") && !typ.eq_ignore_ascii_case("at+jwt"))
        || ends_with("+sd-jwt")
        || FOREIGN_TYPES.iter().any(|t| typ.eq_ignore_ascii_case(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_access_token_types_pass_outside_rfc9068() {
        for ok in [
            "JWT",
            "jwt",
            "at+jwt",
            "application/at+JWT",
            "application/jwt",
        ] {
            assert!(!is_foreign_type(ok), "{ok}");
        }
        for foreign in [
            "logout+jwt",
            "application/secevent+jwt",
            "DPoP+JWT",
            "id_token+jwt",
            "client-authentication+jwt",
            "something-new+jwt",
            "dc+sd-jwt",
        ] {
            assert!(is_foreign_type(foreign), "{foreign}");
        }
    }
}
