//! `WWW-Authenticate` parsing (RFC 9110 section 11.6.1) and the syntax rules of RFC 6750
//! section 3 and RFC 9449 section 7.1.
//!
//! Hand-rolled on purpose: the checks need the raw shape of each parameter (quoted or not,
//! repeated or not) that a lenient parser would hide, and no maintained crate parses a list
//! of challenges (the `headers` crate only writes them). The grammar is small: a scheme,
//! then a token68 or a comma-separated list of `token=(token / quoted-string)`.

/// One challenge: its scheme and its parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme as sent (`Bearer`, `DPoP`).
    pub scheme: String,
    /// `token68`, if the challenge carries one instead of parameters.
    pub token68: Option<String>,
    /// Parameters in order.
    pub params: Vec<Param>,
}

/// An auth-param.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name, lower-cased (names are case-insensitive).
    pub name: String,
    /// Its value, unquoted.
    pub value: String,
    /// Whether it was sent as a quoted-string.
    pub quoted: bool,
}

impl Challenge {
    /// Whether the scheme is `scheme` (case-insensitive).
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token68_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~+/".contains(&c)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> Result<String, String> {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted-string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c) => out.push(c),
                        None => return Err("a quoted-string ends in a backslash".into()),
                    }
                    self.i += 1;
                }
                Some(c) if c == b'\t' || c >= 0x20 && c != 0x7f => {
                    out.push(c);
                    self.i += 1;
                }
                Some(c) => return Err(format!("control character 0x{c:02x} in a quoted-string")),
            }
        }
    }
}

/// Parses every `WWW-Authenticate` value (each may hold several challenges) into one list.
pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Challenge>, String> {
    let mut all = Vec::new();
    for value in values {
        all.extend(parse(value)?);
    }
    Ok(all)
}

/// Parses one `WWW-Authenticate` value.
pub fn parse(value: &[u8]) -> Result<Vec<Challenge>, String> {
    let mut c = Cursor { s: value, i: 0 };
    let mut out = Vec::new();
    c.skip_ws_and_commas();
    while c.peek().is_some() {
        let scheme = c.token();
        if scheme.is_empty() {
            return Err(format!("expected an auth-scheme at byte {}", c.i));
        }
        let mut challenge = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        match c.peek() {
            None | Some(b',') => {
                out.push(challenge);
                c.skip_ws_and_commas();
                continue;
            }
            Some(b' ') => c.skip_ws(),
            Some(other) => {
                return Err(format!(
                    "unexpected 0x{other:02x} after the scheme {}",
                    challenge.scheme
                ));
            }
        }
        // A token68, or parameters.
        let start = c.i;
        while c.peek().is_some_and(is_token68_char) {
            c.i += 1;
        }
        let run_end = c.i;
        while c.peek() == Some(b'=') {
            c.i += 1;
        }
        let mut after = Cursor { s: c.s, i: c.i };
        after.skip_ws();
        // `abc`, `abc==` standing alone are a token68; `name=value` starts the parameters.
        if run_end > start && matches!(after.peek(), None | Some(b',')) {
            challenge.token68 = Some(String::from_utf8_lossy(&c.s[start..c.i]).into_owned());
            out.push(challenge);
            c.skip_ws_and_commas();
            continue;
        }
        c.i = start;
        loop {
            let name_at = c.i;
            let name = c.token();
            if name.is_empty() {
                return Err(format!("expected a parameter name at byte {}", c.i));
            }
            c.skip_ws();
            if c.peek() != Some(b'=') {
                // Not a parameter: the next challenge starts here.
                c.i = name_at;
                break;
            }
            c.i += 1;
            c.skip_ws();
            let (value, quoted) = match c.peek() {
                Some(b'"') => (c.quoted()?, true),
                Some(ch) if is_tchar(ch) => (c.token(), false),
                _ => return Err(format!("parameter {name} has no value")),
            };
            challenge.params.push(Param {
                name: name.to_ascii_lowercase(),
                value,
                quoted,
            });
            c.skip_ws();
            match c.peek() {
                None => break,
                Some(b',') => {
                    c.skip_ws_and_commas();
                    if c.peek().is_none() {
                        break;
                    }
                }
                Some(other) => {
                    return Err(format!("unexpected 0x{other:02x} after parameter {name}"));
                }
            }
        }
        out.push(challenge);
        c.skip_ws_and_commas();
    }
    Ok(out)
}

/// The `error` codes a Bearer or DPoP challenge may carry: RFC 6750 section 3.1 and RFC
/// 9449 sections 7.1 and 8 (the OAuth Extensions Error registry entries for resource
/// servers).
pub const ERROR_CODES: [&str; 5] = [
    "invalid_request",
    "invalid_token",
    "insufficient_scope",
    "invalid_dpop_proof",
    "use_dpop_nonce",
];

/// RFC 6750 section 3 (and RFC 9449 section 7.1 for DPoP): no token68, each parameter at
/// most once, `realm`/`scope`/`error`/`error_description`/`error_uri`/`algs`/
/// `resource_metadata` as quoted-strings, a registered `error`, and the characters RFC 6750
/// allows in `error_description` and `scope`. Other schemes are not checked.
pub fn check_syntax(challenge: &Challenge) -> Result<(), String> {
    let scheme = &challenge.scheme;
    if !challenge.is("Bearer") && !challenge.is("DPoP") {
        return Ok(());
    }
    if challenge.token68.is_some() {
        return Err(format!("{scheme}: a token68 instead of auth-params"));
    }
    for (i, p) in challenge.params.iter().enumerate() {
        if challenge.params[..i].iter().any(|q| q.name == p.name) {
            return Err(format!("{scheme}: parameter {} repeated", p.name));
        }
        let must_quote = [
            "realm",
            "scope",
            "error",
            "error_description",
            "error_uri",
            "algs",
            "resource_metadata",
        ];
        if must_quote.contains(&p.name.as_str()) && !p.quoted {
            return Err(format!("{scheme}: {} is not a quoted-string", p.name));
        }
        let nqschar = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
        match p.name.as_str() {
            "error" if !ERROR_CODES.contains(&p.value.as_str()) => {
                return Err(format!("{scheme}: unregistered error {:?}", p.value));
            }
            "error_description" | "error_uri" if !p.value.chars().all(nqschar) => {
                return Err(format!(
                    "{scheme}: {} has characters RFC 6750 forbids",
                    p.name
                ));
            }
            "scope"
                if p.value
                    .split(' ')
                    .any(|s| s.is_empty() || !s.chars().all(|c| c != ' ' && nqschar(c))) =>
            {
                return Err(format!("{scheme}: scope is not a list of scope tokens"));
            }
            "algs"
                if p.value
                    .split(' ')
                    .any(|a| a.is_empty() || !a.bytes().all(is_tchar)) =>
            {
                return Err(format!(
                    "{scheme}: algs is not a space-separated list of algorithms"
                ));
            }
            _ => {}
        }
    }
    if challenge.is("DPoP") && challenge.param("algs").is_none() {
        return Err("DPoP: no algs parameter (RFC 9449 section 7.1)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn one(s: &str) -> Vec<Challenge> {
        parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_lists_of_challenges_with_params_and_token68() {
        let c = one(
            r#"Bearer realm="api", error="invalid_token", error_description="a \"b\"", DPoP algs="ES256 RS256""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "Bearer");
        assert_eq!(c[0].param("error"), Some("invalid_token"));
        assert_eq!(c[0].param("error_description"), Some("a \"b\""));
        assert_eq!(c[1].param("algs"), Some("ES256 RS256"));
        let c = one("Bearer");
        assert_eq!(c.len(), 1);
        assert!(c[0].params.is_empty());
        let c = one("Basic abc==, Bearer");
        assert_eq!(c[0].token68.as_deref(), Some("abc=="));
        assert!(c[1].is("bearer"));
        let c = one("Bearer error=invalid_token");
        assert!(!c[0].params[0].quoted);
        assert!(check_syntax(&c[0]).is_err());
        assert!(parse(b"Bearer error=\"x").is_err());
        // `name=` with no value reads as a token68, which a Bearer challenge must not have.
        let c = one("Bearer error=");
        assert_eq!(c[0].token68.as_deref(), Some("error="));
        assert!(check_syntax(&c[0]).is_err());
    }

    #[test]
    fn rfc6750_rules() {
        let ok = one(r#"Bearer error="insufficient_scope", scope="a b""#);
        assert!(check_syntax(&ok[0]).is_ok());
        for bad in [
            r#"Bearer error="nope""#,
            r#"Bearer error="invalid_token", error="invalid_token""#,
            r#"Bearer scope="a  b""#,
            "DPoP error=\"invalid_token\"",
            "Bearer abc",
        ] {
            assert!(check_syntax(&one(bad)[0]).is_err(), "{bad}");
        }
    }
}
