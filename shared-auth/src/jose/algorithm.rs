//! The algorithm table: every JWS signature algorithm this crate can name, its JOSE name,
//! its key family and its aws-lc-rs verification parameters. Tokens, DPoP proofs, RFC 9701
//! answers, key files and settings all read names through it.

use aws_lc_rs::signature as sig;

/// An asymmetric JWS signature algorithm. Our own type, so that this crate's API does not
/// follow another crate's versions, and so that HMAC (a shared secret, never an issuer's
/// published key) and `none` cannot even be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// The key family an algorithm signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `kty` RSA.
    Rsa,
    /// `kty` EC, with this `crv` and coordinate size in bytes.
    Ec { crv: &'static str, size: usize },
    /// `kty` OKP, `crv` Ed25519.
    Ed25519,
}

impl SignatureAlgorithm {
    /// Every algorithm, with its JOSE name: the one table the names are read from and
    /// written with.
    pub(crate) const ALL: [(SignatureAlgorithm, &'static str); 9] = [
        (SignatureAlgorithm::RS256, "RS256"),
        (SignatureAlgorithm::RS384, "RS384"),
        (SignatureAlgorithm::RS512, "RS512"),
        (SignatureAlgorithm::PS256, "PS256"),
        (SignatureAlgorithm::PS384, "PS384"),
        (SignatureAlgorithm::PS512, "PS512"),
        (SignatureAlgorithm::ES256, "ES256"),
        (SignatureAlgorithm::ES384, "ES384"),
        (SignatureAlgorithm::EdDSA, "EdDSA"),
    ];

    /// The JOSE name (`RS256`, `EdDSA`, ...).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(alg, _)| *alg == self)
            .map_or("", |(_, name)| name)
    }

    /// The algorithm a JOSE name stands for; `None` for anything else (HMAC and `none`
    /// included: they cannot be named).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(alg, _)| *alg)
    }

    /// The key family that signs with it.
    pub(crate) fn family(self) -> Family {
        use SignatureAlgorithm as A;
        match self {
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => Family::Rsa,
            A::ES256 => Family::Ec {
                crv: "P-256",
                size: 32,
            },
            A::ES384 => Family::Ec {
                crv: "P-384",
                size: 48,
            },
            A::EdDSA => Family::Ed25519,
        }
    }

    /// The aws-lc-rs RSA verification parameters (2048 to 8192 bits); `None` for a
    /// non-RSA algorithm.
    pub(crate) fn rsa_parameters(self) -> Option<&'static sig::RsaParameters> {
        use SignatureAlgorithm as A;
        Some(match self {
            A::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            A::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            A::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            A::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            A::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            A::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    /// The aws-lc-rs ECDSA verification algorithm (fixed-size `r || s` signatures,
    /// RFC 7518 section 3.4); `None` for a non-ECDSA algorithm.
    pub(crate) fn ecdsa_parameters(self) -> Option<&'static sig::EcdsaVerificationAlgorithm> {
        match self {
            SignatureAlgorithm::ES256 => Some(&sig::ECDSA_P256_SHA256_FIXED),
            SignatureAlgorithm::ES384 => Some(&sig::ECDSA_P384_SHA384_FIXED),
            _ => None,
        }
    }

    /// The algorithms of a family, in table order.
    pub(crate) fn of_family(family: Family) -> impl Iterator<Item = SignatureAlgorithm> {
        Self::ALL
            .into_iter()
            .map(|(alg, _)| alg)
            .filter(move |alg| alg.family() == family)
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hmac_cannot_be_named() {
        for (alg, name) in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_name(name), Some(alg));
            assert_eq!(alg.name(), name);
            assert_eq!(format!("{alg:?}"), name, "Debug is the JOSE name too");
        }
        for name in ["HS256", "none", "rs256", "", "RSA-OAEP"] {
            assert_eq!(SignatureAlgorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn every_algorithm_has_its_parameters() {
        for (alg, _) in SignatureAlgorithm::ALL {
            match alg.family() {
                Family::Rsa => assert!(alg.rsa_parameters().is_some()),
                Family::Ec { .. } => assert!(alg.ecdsa_parameters().is_some()),
                Family::Ed25519 => assert_eq!(alg, SignatureAlgorithm::EdDSA),
            }
        }
        assert_eq!(SignatureAlgorithm::of_family(Family::Rsa).count(), 6);
    }
}
