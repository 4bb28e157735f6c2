//! The conformance kit (`infra/conformance`) against my-service: the kit starts its own
//! issuer (keys it holds, a throwaway client), my-service is configured to trust it (RFC
//! 9068 profile, discovery from the kit's issuer), and the whole catalogue runs over HTTP,
//! DPoP detected from my-service's challenges, its RFC 9728 resource identifier its own
//! URL. Every case passes; the JUnit XML parses and its counts match the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::SocketAddr;

use conformance::{CASES, Group, Kit, Profile, Settings, Target, Verdict, report};
use shared_auth::server::{JwtValidator, ProtectedResource, TokenProfile};
use system_tests::*;

/// Counts of a JUnit element: (tests, failures, errors) attributes.
fn counts(node: roxmltree::Node<'_, '_>) -> (usize, usize, usize) {
    let attr = |name| node.attribute(name).unwrap().parse::<usize>().unwrap();
    (attr("tests"), attr("failures"), attr("errors"))
}

#[tokio::test]
async fn the_kit_passes_my_service_and_writes_valid_junit() {
    let settings = Settings::new(Profile::Rfc9068, READ, Some("MyService")).unwrap();
    let kit = Kit::start(settings, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    // my-service with its own URL as its resource identifier, so its metadata and its
    // challenges' `resource_metadata` are what the kit checks.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = validator_config_for(
        kit.issuer().issuer(),
        TokenProfile::Rfc9068 {
            audience: "MyService".into(),
        },
    );
    config.resource = Some(ProtectedResource::new(base.clone()).with_scopes([READ, WRITE]));
    // DPoP as my-service's settings have it, its proofs checked against the resource's URL.
    config.dpop.mode = shared_auth::server::DpopMode::Allowed;
    let validator = JwtValidator::new(config).await.unwrap();
    let router = my_service::router(validator, "http://127.0.0.1:1/token");
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let target = Target::new(&format!("{base}/weatherforecast")).unwrap();
    let report = kit.run(&target, CASES).await;
    println!("{}", report::table(&report));

    assert!(report.dpop, "DPoP detected from my-service's challenges");
    let groups: Vec<Group> = report.outcomes.iter().map(|o| o.group).collect();
    for group in [
        Group::Header,
        Group::Claims,
        Group::Encoding,
        Group::Signature,
        Group::Dpop,
        Group::Challenge,
        Group::Metadata,
    ] {
        assert!(groups.contains(&group), "{group:?} ran");
    }
    let unexpected: Vec<String> = report
        .failures()
        .map(|o| {
            format!(
                "{} ({}): got {}, expected {}",
                o.id, o.name, o.got, o.expected
            )
        })
        .collect();
    assert!(unexpected.is_empty(), "failed:\n{}", unexpected.join("\n"));

    // The JUnit XML: well-formed, one testsuite per group, counts that add up.
    let xml = report::junit(&report);
    let file = TempFile::new("conformance-junit.xml");
    file.write(&xml);
    let text = std::fs::read_to_string(file.path()).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let failed = report.failures().count();
    assert_eq!(counts(root), (report.outcomes.len(), failed, 0));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let mut names: Vec<&str> = suites
        .iter()
        .map(|s| s.attribute("name").unwrap())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), suites.len(), "one testsuite per group");
    assert_eq!(suites.len(), 7);
    let mut total = 0;
    for suite in &suites {
        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let failures = cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
            .count();
        let group = suite.attribute("name").unwrap();
        let in_report = report.outcomes.iter().filter(|o| o.group.as_str() == group);
        assert_eq!(
            counts(*suite),
            (
                in_report.clone().count(),
                in_report.filter(|o| o.verdict != Verdict::Pass).count(),
                0
            ),
            "{group}"
        );
        assert_eq!(counts(*suite).0, cases.len(), "{group}");
        assert_eq!(counts(*suite).1, failures, "{group}");
        total += cases.len();
    }
    assert_eq!(total, report.outcomes.len());

    // A target's answer may carry anything: markup and control characters stay valid XML.
    let mut hostile = report.clone();
    hostile.outcomes[0].got = "]]><x a=\"&\u{1}\u{1b}'\">".into();
    hostile.outcomes[0].verdict = Verdict::Fail(conformance::Severity::Should);
    let xml = report::junit(&hostile);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure.text().unwrap().contains("]]><x a=\"&"));
    server.abort();
}
