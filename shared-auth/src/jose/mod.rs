//! The JOSE core: everything this crate knows about JWS, JWK and JWT bytes, in one place.
//!
//! - `compact`: a compact JWS split into its three parts, each decoded strictly;
//! - `json`: the strict JSON reader for headers, claims sets and JWKs (objects only,
//!   each name once at every depth, every string valid UTF-8), and NumericDate;
//! - `jwk`: JWK to verifying key, and the RFC 7638 thumbprint;
//! - [`SigningKey`]: private key to signer (client assertions, DPoP proofs);
//! - [`SignatureAlgorithm`]: the algorithm table.
//!
//! Token validation, DPoP proofs, RFC 9701 introspection answers, client assertions and
//! DPoP signing all use these; none of them splits, decodes or parses JOSE on its own.
//! The base layer: it imports neither half of the crate. With the feature `jose`, tools
//! outside the library (the mock issuer) read and verify with it too: [`read`],
//! [`verifies`], [`thumbprint`].

mod algorithm;
pub(crate) mod compact;
pub(crate) mod json;
pub(crate) mod jwk;
mod signing_key;

pub use algorithm::SignatureAlgorithm;
pub use signing_key::{KeyError, SigningKey};
pub(crate) use signing_key::{parse_alg, random_jti};

/// Why a compact JWS could not be read. Each user maps it to its own refusal (a token's
/// `malformed`, a proof's `malformed`, an introspection answer's error text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoseError {
    /// Not three parts separated by dots.
    Shape,
    /// A part is not base64url (unpadded, URL alphabet, trailing bits zero).
    Base64,
}

#[cfg(feature = "jose")]
mod reader;
#[cfg(feature = "jose")]
pub use reader::{ReadError, Unverified, read, thumbprint, verifies};
