//! Strict JSON for JOSE objects: headers, claims sets and JWKs.
//!
//! One parser reads every JOSE object in the crate, and it refuses what two parsers could
//! read differently:
//! - the object is a JSON **object**: serde's derive would also read a struct from an
//!   array, in field order, which RFC 7515 section 4 does not allow;
//! - a member name appears once, at every depth (serde_json keeps the last of two, another
//!   parser may keep the first);
//! - every string is UTF-8 without an unpaired surrogate escape (`\ud800`), in the members
//!   a reader keeps and in those it does not: skipping a member still parses it, so a
//!   payload is either well-formed everywhere or refused. What this parser accepts,
//!   `serde_json::from_slice::<Map<String, Value>>` accepts too (with the same values),
//!   which is what makes `Principal::claims` infallible;
//! - a member that is present is present, whatever its value (`"crit": null` is not an
//!   absent `crit`).
//!
//! Strings without escapes are borrowed from the input, so reading a token's claims
//! allocates only for the values a reader keeps as JSON.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Largest NumericDate accepted: 9999-12-31T23:59:59Z. Beyond it a date is a mistake or an
/// attack (`1e300` seconds), and `f64` stops holding whole seconds at 2^53.
pub(crate) const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// A member name or a string value, borrowed from the input when it has no escapes.
/// (serde's own `Cow<str>` always allocates.)
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// One member's value: a string borrowed from the input when it has no escapes (most
/// claims are strings), anything else as JSON (built by the same strict rules).
#[derive(Debug)]
pub(crate) enum Claim<'a> {
    Str(Cow<'a, str>),
    Other(Value),
}

impl Claim<'_> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Claim::Str(s) => Some(s),
            Claim::Other(_) => None,
        }
    }

    /// A NumericDate (RFC 7519 section 2): seconds since the epoch, possibly with a
    /// fraction; `None` for anything but a finite number in `0..=MAX_NUMERIC_DATE`.
    pub(crate) fn numeric_date(&self) -> Option<f64> {
        match self {
            Claim::Other(Value::Number(n)) => n
                .as_f64()
                .filter(|t| t.is_finite() && (0.0..=MAX_NUMERIC_DATE).contains(t)),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Claim<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Claim<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(v.into()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(v.into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Claim<'de>, E> {
                Ok(Claim::Other(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Claim<'de>, A::Error> {
                StrictValue::visit_seq(seq).map(Claim::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Claim<'de>, A::Error> {
                StrictValue::visit_map(map).map(Claim::Other)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A JSON value built by the strict rules (no repeated name at any depth).
struct StrictValue(Value);

impl StrictValue {
    fn visit_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(Text(name)) = map.next_key()? {
            if object.contains_key(&*name) {
                return Err(de::Error::custom(format_args!("duplicate member {name:?}")));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(name.into_owned(), value);
        }
        Ok(Value::Object(object))
    }
}

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Claim::deserialize(deserializer)? {
            Claim::Str(s) => Ok(StrictValue(Value::String(s.into_owned()))),
            Claim::Other(v) => Ok(StrictValue(v)),
        }
    }
}

/// A value parsed and dropped: every string checked, every name once per object, nothing
/// kept. What the readers do with the members they do not read.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            // A string reaches a visitor only once serde_json has decoded it, escapes and
            // UTF-8 checked: that is the point (`IgnoredAny` skips strings unchecked).
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                let mut names = Names::default();
                while let Some(Text(name)) = map.next_key()? {
                    names.insert(name)?;
                    map.next_value::<Checked>()?;
                }
                Ok(Checked)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// How many names of one object are kept on the stack; the rest go to the heap.
const INLINE_NAMES: usize = 16;

/// The names seen in one object. A linear scan: JOSE objects have a dozen members, and
/// beyond 64 a sorted insert would win, which no token reaches. The first
/// [`INLINE_NAMES`] live on the stack: every token's header and claims set is read through
/// here on its first validation, and a heap allocation per object measured as a visible
/// part of that path (the bench's `paired` line).
#[derive(Default)]
struct Names<'de> {
    inline: [Option<Cow<'de, str>>; INLINE_NAMES],
    len: usize,
    spilled: Vec<Cow<'de, str>>,
}

impl<'de> Names<'de> {
    fn insert<E: de::Error>(&mut self, name: Cow<'de, str>) -> Result<(), E> {
        let seen = self.inline[..self.len.min(INLINE_NAMES)]
            .iter()
            .flatten()
            .chain(self.spilled.iter())
            .any(|n| *n == name);
        if seen {
            return Err(E::custom(format_args!("duplicate member {name:?}")));
        }
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = Some(name),
            None => self.spilled.push(name),
        }
        self.len += 1;
        Ok(())
    }
}

/// A reader of one kind of JOSE object: it keeps the members it knows; every other member
/// is checked and dropped.
pub(crate) trait Members<'de>: Default {
    /// Reads the value of `name` from `map` if this reader keeps it, and says whether it
    /// did; `false` leaves the value to be checked and dropped.
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// A JSON object read by `M` (and only an object: an array is refused).
pub(crate) struct Object<M>(pub(crate) M);

impl<'de, M: Members<'de>> Deserialize<'de> for Object<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<M>(PhantomData<M>);
        impl<'de, M: Members<'de>> Visitor<'de> for V<M> {
            type Value = Object<M>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<M>, A::Error> {
                let mut members = M::default();
                let mut names = Names::default();
                while let Some(Text(name)) = map.next_key()? {
                    if !members.member(&name, &mut map)? {
                        map.next_value::<Checked>()?;
                    }
                    names.insert(name)?;
                }
                Ok(Object(members))
            }
        }
        deserializer.deserialize_map(V(PhantomData))
    }
}

/// Reads `bytes` as one JSON object (nothing after it but whitespace).
pub(crate) fn parse<'de, M: Members<'de>>(bytes: &'de [u8]) -> Result<M, serde_json::Error> {
    serde_json::from_slice::<Object<M>>(bytes).map(|Object(m)| m)
}

/// Reads `bytes` as one JSON object, every member kept (an introspection answer, whose
/// members a handler may read).
pub(crate) fn parse_map(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::from_slice::<Claim<'_>>(bytes)? {
        Claim::Other(Value::Object(map)) => Ok(map),
        _ => Err(de::Error::custom("not a JSON object")),
    }
}

/// A reader of some members of a JOSE object, each kept as a [`Claim`]: the struct and its
/// [`Members`] impl from one list of fields and member names (every other member is
/// checked and dropped).
///
/// ```text
/// claims! {
///     /// The claims of a proof that are checked.
///     struct ProofClaims { jti = "jti", htm = "htm" }
/// }
/// ```
macro_rules! claims {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident = $key:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Default)]
        $vis struct $name<'a> {
            $($field: Option<$crate::jose::json::Claim<'a>>,)*
        }

        impl<'de> $crate::jose::json::Members<'de> for $name<'de> {
            fn member<A: serde::de::MapAccess<'de>>(
                &mut self,
                name: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                match name {
                    $($key => $crate::jose::json::keep(map, &mut self.$field),)*
                    _ => Ok(false),
                }
            }
        }
    };
}
pub(crate) use claims;

/// Reads a member's value into `slot`.
pub(crate) fn keep<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
) -> Result<bool, A::Error> {
    *slot = Some(map.next_value()?);
    Ok(true)
}

/// A JOSE header: the members any reader in this crate needs. `crit` is kept as present
/// or not, whatever its value.
#[derive(Default)]
pub(crate) struct Header<'a> {
    pub(crate) alg: Option<Text<'a>>,
    pub(crate) kid: Option<Text<'a>>,
    pub(crate) typ: Option<Text<'a>>,
    pub(crate) jwk: Option<Object<Jwk<'a>>>,
    pub(crate) crit: bool,
}

impl<'de> Members<'de> for Header<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<bool, A::Error> {
        match name {
            "alg" => keep(map, &mut self.alg),
            "kid" => keep(map, &mut self.kid),
            "typ" => keep(map, &mut self.typ),
            "jwk" => keep(map, &mut self.jwk),
            "crit" => {
                self.crit = true;
                Ok(false)
            }
            _ => Ok(false),
        }
    }
}

impl Header<'_> {
    pub(crate) fn alg(&self) -> Option<&str> {
        self.alg.as_ref().map(|t| &*t.0)
    }
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_ref().map(|t| &*t.0)
    }
    pub(crate) fn typ(&self) -> Option<&str> {
        self.typ.as_ref().map(|t| &*t.0)
    }
}

/// Reads a JOSE header.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, serde_json::Error> {
    parse(bytes)
}

/// The members of a JWK this crate reads: the public ones of each key type, `alg`, `kid`
/// and `use`, and whether any private member is present (RFC 7518 section 6; `k` of a
/// symmetric key).
#[derive(Default)]
pub(crate) struct Jwk<'a> {
    pub(crate) kty: Option<Text<'a>>,
    pub(crate) crv: Option<Text<'a>>,
    pub(crate) x: Option<Text<'a>>,
    pub(crate) y: Option<Text<'a>>,
    pub(crate) n: Option<Text<'a>>,
    pub(crate) e: Option<Text<'a>>,
    pub(crate) alg: Option<Text<'a>>,
    pub(crate) kid: Option<Text<'a>>,
    pub(crate) use_: Option<Text<'a>>,
    pub(crate) private: bool,
}

impl<'de> Members<'de> for Jwk<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<bool, A::Error> {
        match name {
            "kty" => keep(map, &mut self.kty),
            "crv" => keep(map, &mut self.crv),
            "x" => keep(map, &mut self.x),
            "y" => keep(map, &mut self.y),
            "n" => keep(map, &mut self.n),
            "e" => keep(map, &mut self.e),
            "alg" => keep(map, &mut self.alg),
            "kid" => keep(map, &mut self.kid),
            "use" => keep(map, &mut self.use_),
            "d" | "p" | "q" | "dp" | "dq" | "qi" | "oth" | "k" => {
                self.private = true;
                Ok(false)
            }
            _ => Ok(false),
        }
    }
}

impl<'a> Jwk<'a> {
    /// The members of a JWK already parsed as a JSON object (an entry of a key set),
    /// strings borrowed from it; `None` when a member this crate reads is not a string (a
    /// broken key).
    pub(crate) fn from_map(entry: &'a Map<String, Value>) -> Option<Self> {
        let mut jwk = Jwk::default();
        for (name, value) in entry {
            let slot = match name.as_str() {
                "kty" => &mut jwk.kty,
                "crv" => &mut jwk.crv,
                "x" => &mut jwk.x,
                "y" => &mut jwk.y,
                "n" => &mut jwk.n,
                "e" => &mut jwk.e,
                "alg" => &mut jwk.alg,
                "kid" => &mut jwk.kid,
                "use" => &mut jwk.use_,
                "d" | "p" | "q" | "dp" | "dq" | "qi" | "oth" | "k" => {
                    jwk.private = true;
                    continue;
                }
                _ => continue,
            };
            *slot = Some(Text(Cow::Borrowed(value.as_str()?)));
        }
        Some(jwk)
    }
}

/// The value of a text member, if present.
pub(crate) fn text<'a>(member: &'a Option<Text<'_>>) -> Option<&'a str> {
    member.as_ref().map(|t| &*t.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Two<'a> {
        a: Option<Claim<'a>>,
    }
    impl<'de> Members<'de> for Two<'de> {
        fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<bool, A::Error> {
            match name {
                "a" => keep(map, &mut self.a),
                _ => Ok(false),
            }
        }
    }

    fn two(json: &[u8]) -> Result<Two<'_>, serde_json::Error> {
        parse(json)
    }

    #[test]
    fn objects_only() {
        assert!(two(b"{}").is_ok());
        assert!(two(b" { \"a\" : 1 } ").is_ok());
        for bad in [
            &b"[]"[..],
            b"[1]",
            b"null",
            b"1",
            b"\"a\"",
            b"{} x",
            b"{",
            b"",
        ] {
            assert!(two(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_header(br#"["RS256","k",null,null]"#).is_err());
    }

    #[test]
    fn a_name_appears_once_at_every_depth() {
        assert!(two(br#"{"a":1,"a":2}"#).is_err());
        assert!(two(br#"{"x":1,"x":2}"#).is_err(), "unread members too");
        assert!(two(br#"{"x":1,"\u0078":2}"#).is_err(), "escaped names too");
        assert!(two(br#"{"x":{"y":1,"y":2}}"#).is_err(), "nested, unread");
        assert!(two(br#"{"a":{"y":1,"y":2}}"#).is_err(), "nested, kept");
        assert!(two(br#"{"a":[{"y":1},{"y":2}]}"#).is_ok(), "one per object");
        // Past the names kept on the stack, in both places.
        let many: String = (0..40).map(|i| format!("\"m{i}\":{i},")).collect();
        assert!(two(format!("{{{many}\"a\":1}}").as_bytes()).is_ok());
        assert!(
            two(format!("{{{many}\"m3\":1}}").as_bytes()).is_err(),
            "on the stack"
        );
        assert!(
            two(format!("{{{many}\"m30\":1}}").as_bytes()).is_err(),
            "spilled"
        );
    }

    #[test]
    fn strings_are_utf8_without_unpaired_surrogates_everywhere() {
        for bad in [
            &b"{\"x\":\"\xff\"}"[..],
            b"{\"\xc3\":1}",
            br#"{"x":"\ud800"}"#,
            br#"{"x":"\udc00"}"#,
            br#"{"x":["\ud800x"]}"#,
            br#"{"x":{"\ud800":1}}"#,
            br#"{"a":"\ud800"}"#,
        ] {
            assert!(two(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let pair = two(br#"{"a":"\ud83d\ude00","x":"\ud83d\ude00"}"#).unwrap();
        assert_eq!(pair.a.unwrap().as_str(), Some("\u{1f600}"));
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let parsed = two(br#"{"a":"plain"}"#).unwrap();
        assert!(matches!(parsed.a, Some(Claim::Str(Cow::Borrowed("plain")))));
        let header = parse_header(br#"{"alg":"ES256","kid":"k\"1"}"#).unwrap();
        assert!(matches!(header.alg, Some(Text(Cow::Borrowed("ES256")))));
        assert_eq!(header.kid(), Some("k\"1"));
    }

    #[test]
    fn crit_present_is_present_whatever_its_value() {
        assert!(!parse_header(br#"{"alg":"RS256"}"#).unwrap().crit);
        for crit in [
            &br#"{"crit":null}"#[..],
            br#"{"crit":[]}"#,
            br#"{"crit":["b64"]}"#,
        ] {
            assert!(parse_header(crit).unwrap().crit);
        }
        assert!(parse_header(br#"{"alg":1}"#).is_err(), "alg is a string");
    }

    #[test]
    fn numeric_dates() {
        let date = |json: &str| {
            two(format!(r#"{{"a":{json}}}"#).as_bytes())
                .ok()
                .and_then(|t| t.a)
                .and_then(|c| c.numeric_date())
        };
        assert_eq!(date("1700000000"), Some(1_700_000_000.0));
        assert_eq!(date("1700000000.25"), Some(1_700_000_000.25));
        assert_eq!(date("0"), Some(0.0));
        assert_eq!(date("253402300799"), Some(MAX_NUMERIC_DATE));
        for bad in [
            "-1",
            "-0.5",
            "253402300800",
            "1e300",
            "1e400",
            "\"1\"",
            "true",
            "null",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }

    #[test]
    fn jwk_private_members_are_noticed() {
        let jwk: Object<Jwk<'_>> =
            serde_json::from_slice(br#"{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}"#)
                .unwrap();
        assert!(jwk.0.private);
        assert_eq!(text(&jwk.0.kty), Some("EC"));
    }
}
