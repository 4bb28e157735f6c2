//! The attack catalogue against my-service behind the real validation layer, over HTTP.
//! The cases live in the conformance kit (`infra/conformance`, `conformance::CASES`): one
//! copy, which the `conformance` binary also runs against any other resource server. Here
//! they run with my-service's strict expectations: every case passes, including the
//! "should" ones, every refusal is RFC 9457 problem+json, and the first challenge is the
//! one the catalogue names (`Bearer` without an error, `Bearer` with the expected error, or
//! `DPoP` with `algs` and the expected error).
//!
//! Two issuers, two my-services: a Cognito one for the profile-independent and Cognito
//! cases, an RFC 9068 one for the `typ`/`aud` cases. The kit rotates each issuer's keys so
//! a removed key and two published keys exist; its listener at the `jku`/`x5u` URLs must
//! receive nothing (case `jku-x5u-not-fetched`). The RFC 9728 metadata group is
//! `tests/conformance.rs`'s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use conformance::catalogue::Applies;
use conformance::{CASES, Case, Check, Group, Kit, Profile, Settings, Target, Verdict, Want};
use mock_issuer::TokenProfile as IssuerProfile;
use shared_auth::server::TokenProfile;
use system_tests::*;

/// One issuer (held by the kit) and the my-service that trusts it.
struct Fixture {
    kit: Kit,
    target: Target,
    _service: TestServer,
}

async fn fixture(issuer_profile: IssuerProfile, profile: TokenProfile) -> Fixture {
    let issuer = start_issuer(issuer_profile).await;
    let kit_profile = match issuer_profile {
        IssuerProfile::Cognito => Profile::Cognito,
        IssuerProfile::Rfc9068 => Profile::Rfc9068,
    };
    let mut settings = Settings::new(kit_profile, READ, None).unwrap();
    settings.client_id = BFF_ID.into();
    let kit = Kit::with_issuer(issuer, settings, BFF_SECRET.into())
        .await
        .unwrap();
    let keys = jwks(kit.issuer()).await;
    assert_eq!(keys.keys.len(), 2, "fixture: two published keys");
    let service = start_service(kit.issuer(), profile).await;
    let mut target = Target::new(&format!("{}/weatherforecast", service.base)).unwrap();
    target.dpop = Some(true);
    Fixture {
        kit,
        target,
        _service: service,
    }
}

/// my-service's own stricter reading of an outcome: problem+json refusals, and the first
/// `WWW-Authenticate` value exactly as the catalogue's expectation.
fn strict_failure(case: &Case, outcome: &conformance::Outcome) -> Option<String> {
    let answer = outcome.answer.as_ref()?;
    if answer.status >= 400 && answer.status != 431 {
        let content_type = answer
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap());
        if content_type != Some("application/problem+json") {
            return Some(format!("{}: content-type {content_type:?}", case.id));
        }
    }
    // The first challenge of the first header: its scheme and error, whatever other
    // parameters (realm, scope, RFC 9728 resource_metadata) come with it.
    let first = answer.headers.get("www-authenticate").map(|v| {
        conformance::challenge::parse(v.as_bytes())
            .unwrap()
            .remove(0)
    });
    let error = |c: &conformance::challenge::Challenge| c.param("error").map(str::to_owned);
    let ok = match (case.check, &first) {
        (Check::Answer(_, Want::Absent), None) => true,
        (Check::Answer(_, Want::Bare), Some(c)) => c.scheme == "Bearer" && error(c).is_none(),
        (Check::Answer(_, Want::Bearer(code)), Some(c)) => {
            c.scheme == "Bearer" && error(c).as_deref() == Some(code)
        }
        (Check::Answer(_, Want::Dpop(code)), Some(c)) => {
            c.scheme == "DPoP" && c.param("algs").is_some() && error(c).as_deref() == Some(code)
        }
        (Check::Answer(_, Want::DpopOffered), _) => true,
        (Check::Answer(..), _) => false,
        _ => true,
    };
    (!ok).then(|| format!("{}: first challenge {first:?}", case.id))
}

async fn run(fixture: &Fixture, cases: &[Case], failures: &mut Vec<String>) -> usize {
    let report = fixture.kit.run(&fixture.target, cases).await;
    for (outcome, case) in report.outcomes.iter().zip(
        cases
            .iter()
            .filter(|c| fixture.kit.settings().profile.runs(c.applies)),
    ) {
        assert_eq!(outcome.id, case.id);
        if outcome.verdict != Verdict::Pass {
            failures.push(format!(
                "{} ({}): got {}, expected {}",
                case.id, case.name, outcome.got, outcome.expected
            ));
        } else if let Some(f) = strict_failure(case, outcome) {
            failures.push(f);
        }
    }
    report.outcomes.len()
}

#[tokio::test]
async fn attack_catalogue() {
    let attacks: Vec<Case> = CASES
        .iter()
        .filter(|c| c.group != Group::Metadata)
        .copied()
        .collect();
    assert!(
        attacks.len() >= 40,
        "the catalogue has {} cases",
        attacks.len()
    );
    let cognito = fixture(IssuerProfile::Cognito, cognito()).await;
    let rfc9068 = fixture(
        IssuerProfile::Rfc9068,
        TokenProfile::Rfc9068 {
            audience: "MyService".into(),
        },
    )
    .await;
    // The RFC 9068 service: the profile's own cases and the baseline.
    let rfc9068_cases: Vec<Case> = attacks
        .iter()
        .filter(|c| c.applies == Applies::Rfc9068 || c.id == "valid-token")
        .copied()
        .collect();
    let mut failures = Vec::new();
    let ran = run(&cognito, &attacks, &mut failures).await
        + run(&rfc9068, &rfc9068_cases, &mut failures).await;
    println!("attack catalogue: {ran} cases, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}
