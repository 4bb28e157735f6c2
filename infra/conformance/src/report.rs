//! The outputs of a run: a plain-text table for the terminal and JUnit XML for CI (one
//! `testsuite` per group; a failed case is a `failure` whose `type` is its severity, a
//! case the kit could not send is an `error`).

use std::fmt::Write as _;

use crate::{Group, Outcome, Report, Severity, Verdict};

/// The verdict as the table shows it.
fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail(Severity::Must) => "FAIL(must)",
        Verdict::Fail(Severity::Should) => "FAIL(should)",
        Verdict::Error => "ERROR",
    }
}

/// At most `max` characters of `s`, on one line.
fn cut(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The pass/fail table, then a summary line.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:<9} {:<6} {:<44} {:<60} RESULT",
        "ID", "GROUP", "SEV", "EXPECTED", "GOT"
    );
    for o in &report.outcomes {
        let id = if o.http_stack {
            format!("{}*", o.id)
        } else {
            o.id.to_owned()
        };
        let _ = writeln!(
            out,
            "{:<32} {:<9} {:<6} {:<44} {:<60} {}",
            id,
            o.group.as_str(),
            o.severity.as_str(),
            cut(&o.expected, 44),
            cut(&o.got, 60),
            verdict_text(o.verdict)
        );
    }
    let (pass, must, should, errors) = report.counts();
    let _ = writeln!(
        out,
        "\n{} cases: {pass} passed, {must} failed (must), {should} failed (should), {errors} errors; DPoP group {}",
        report.outcomes.len(),
        if report.dpop {
            "run"
        } else {
            "skipped (target does not speak DPoP)"
        }
    );
    for line in &report.skipped {
        let _ = writeln!(out, "{line}");
    }
    if report.outcomes.iter().any(|o| o.http_stack) {
        let _ = writeln!(
            out,
            "* decided by the HTTP stack (header size and count limits, repeated headers) \
             rather than by the auth middleware"
        );
    }
    if let Some(why) = report.inconclusive() {
        let _ = writeln!(out, "INCONCLUSIVE: {why}");
    }
    out
}

/// Escapes text for XML 1.0 content and attribute values. Hand-rolled on purpose: the
/// five entities are all there is to escaping, and what an escaping crate would not do is
/// the other half: drop the control characters XML 1.0 forbids even escaped (a target's
/// answer may contain anything).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: a `testsuites` root, one `testsuite` per group that ran.
pub fn junit(report: &Report) -> String {
    let mut groups: Vec<Group> = report.outcomes.iter().map(|o| o.group).collect();
    groups.sort();
    groups.dedup();
    let count =
        |os: &[&Outcome], f: fn(Verdict) -> bool| os.iter().filter(|o| f(o.verdict)).count();
    let is_failure = |v: Verdict| matches!(v, Verdict::Fail(_));
    let is_error = |v: Verdict| v == Verdict::Error;
    let all: Vec<&Outcome> = report.outcomes.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
        all.len(),
        count(&all, is_failure),
        count(&all, is_error)
    );
    for group in groups {
        let cases: Vec<&Outcome> = report
            .outcomes
            .iter()
            .filter(|o| o.group == group)
            .collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\">",
            group.as_str(),
            cases.len(),
            count(&cases, is_failure),
            count(&cases, is_error)
        );
        for o in cases {
            let stack = if o.http_stack {
                " (decided by the HTTP stack)"
            } else {
                ""
            };
            let _ = write!(
                out,
                "    <testcase classname=\"conformance.{}\" name=\"{}: {}{stack}\"",
                group.as_str(),
                escape(o.id),
                escape(o.name)
            );
            let detail = format!("expected {}; got {}", o.expected, o.got);
            match o.verdict {
                Verdict::Pass => out.push_str("/>\n"),
                Verdict::Fail(severity) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                        severity.as_str(),
                        escape(&cut(&detail, 200)),
                        escape(&detail)
                    );
                }
                Verdict::Error => {
                    let _ = writeln!(
                        out,
                        ">\n      <error message=\"{}\">{}</error>\n    </testcase>",
                        escape(&cut(&o.got, 200)),
                        escape(&detail)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_forbidden_controls() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
        assert_eq!(escape("a\u{0}b\u{1b}c\td"), "a\u{fffd}b\u{fffd}c\td");
    }
}
