//! The crate reads in one direction: the base modules (`jose`, `discovery`, `issuer_http`,
//! `endpoint_auth`, `scope`, `clock`, `metrics`, `problem`, `settings`, `trace`, `transaction`) at the bottom, the
//! two halves (`client`, `server`) above them, and the halves never import each other.
//! Within each folder (`server/`, `client/`, `jose/`) and among the top-level modules
//! there is no import cycle.
//!
//! This reads the `crate::` and `super::` paths of every source file's non-test code
//! (a trailing `#[cfg(test)] mod ...` is test code; so are a module `lib.rs` declares under
//! `#[cfg(test)]` and a unit-test file `.../tests.rs`), prints the graph, and fails naming the first cycle or crossing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The halves: neither may reach the other, and the base may reach neither.
const HALVES: [&str; 2] = ["client", "server"];

/// One source file: its module path from the crate root and its non-test code.
struct Source {
    module: Vec<String>,
    code: String,
}

fn sources(src: &Path) -> Vec<Source> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    // Modules lib.rs declares for tests only.
    let test_only: BTreeSet<String> = lib
        .split("#[cfg(test)]")
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.trim_start();
            let rest = rest.strip_prefix("mod ")?;
            Some(rest.split(';').next()?.trim().to_owned())
        })
        .collect();
    let mut files = Vec::new();
    collect(src, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(src).unwrap();
            let mut module: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            match module.last().map(String::as_str) {
                Some("lib") => return None,
                Some("mod") => {
                    module.pop();
                }
                _ => {}
            }
            // Modules lib.rs declares for tests, and unit-test files (`x/tests.rs`).
            if test_only.contains(&module[0]) || module.last().is_some_and(|m| m == "tests") {
                return None;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            Some(Source {
                module,
                code: without_comments(non_test(&source)),
            })
        })
        .collect()
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The code before the first `#[cfg(test)]` that opens a module (the unit tests, at the
/// end of a file by the convention here).
fn non_test(source: &str) -> &str {
    let mut at = 0;
    while let Some(found) = source[at..].find("#[cfg(test)]") {
        let start = at + found;
        let after = source[start + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ") {
            return &source[..start];
        }
        at = start + 1;
    }
    source
}

/// The code without line comments (doc comments name other modules in links).
fn without_comments(code: &str) -> String {
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every module path the code names, from the crate root: `crate::a::b`, `crate::{a, b}`,
/// `super::a` (resolved against `module`), first two segments.
fn references(module: &[String], is_dir_module: bool, code: &str) -> Vec<Vec<String>> {
    let mut refs = Vec::new();
    let mut push = |base: &[String], rest: &str| {
        let mut emit = |mut path: Vec<String>| {
            path.truncate(2);
            refs.push(path);
        };
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c}`: each item's first segments.
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',') {
                let mut path = base.to_vec();
                path.extend(
                    item.trim()
                        .split("::")
                        .map(ident)
                        .filter(|s| !s.is_empty())
                        .take(2),
                );
                emit(path);
            }
        } else {
            let mut path = base.to_vec();
            path.extend(
                rest.split("::")
                    .map(ident)
                    .take_while(|s| !s.is_empty())
                    .take(2),
            );
            emit(path);
        }
    };
    for (at, _) in code.match_indices("crate::") {
        // `shared_auth::` is not `crate::`; skip identifiers that end in `crate`.
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        push(&[], &code[at + "crate::".len()..]);
    }
    // `super::` of `a/b.rs` is `a`; of `a/mod.rs` (module `a`) it is the crate.
    let parent: &[String] = if is_dir_module || module.len() == 1 {
        &module[..module.len().saturating_sub(1)]
    } else {
        &module[..module.len() - 1]
    };
    for (at, _) in code.match_indices("super::") {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `super::super::` is not used here
        }
        push(parent, &code[at + "super::".len()..]);
    }
    refs
}

struct Graphs {
    /// Among the top-level modules (a folder is one node).
    top: Graph,
    /// Among the files of each folder.
    folders: BTreeMap<String, Graph>,
}

fn graphs(src: &Path) -> Graphs {
    let sources = sources(src);
    let top_nodes: BTreeSet<String> = sources.iter().map(|s| s.module[0].clone()).collect();
    let mut folder_nodes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &sources {
        if s.module.len() == 2 {
            folder_nodes
                .entry(s.module[0].clone())
                .or_default()
                .insert(s.module[1].clone());
        }
    }
    let mut top = Graph::new();
    let mut folders: BTreeMap<String, Graph> = BTreeMap::new();
    for s in &sources {
        let is_dir_module = s.module.len() == 1 && folder_nodes.contains_key(&s.module[0]);
        let unit = &s.module[0];
        top.entry(unit.clone()).or_default();
        for r in references(&s.module, is_dir_module, &s.code) {
            let Some(first) = r.first() else { continue };
            if first != unit && top_nodes.contains(first) {
                top.get_mut(unit).unwrap().insert(first.clone());
            }
            // Within one folder: file to file.
            if s.module.len() == 2 && first == unit {
                let nodes = &folder_nodes[unit];
                let graph = folders.entry(unit.clone()).or_default();
                graph.entry(s.module[1].clone()).or_default();
                if let Some(second) = r.get(1)
                    && second != &s.module[1]
                    && nodes.contains(second)
                {
                    graph.get_mut(&s.module[1]).unwrap().insert(second.clone());
                }
            }
        }
    }
    Graphs { top, folders }
}

fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The first import that crosses the layers: a half into the other, or the base into a
/// half.
fn crossing(top: &Graph) -> Option<(String, String)> {
    top.iter().find_map(|(from, deps)| {
        deps.iter()
            .find(|to| HALVES.contains(&to.as_str()) && from != *to)
            .map(|to| (from.clone(), to.clone()))
    })
}

fn check(graphs: &Graphs) -> Result<(), String> {
    if let Some((from, to)) = crossing(&graphs.top) {
        return Err(format!("{from} imports {to}"));
    }
    if let Some(cycle) = find_cycle(&graphs.top) {
        return Err(format!("import cycle: {}", cycle.join(" -> ")));
    }
    for (folder, graph) in &graphs.folders {
        if let Some(cycle) = find_cycle(graph) {
            return Err(format!("import cycle in {folder}/: {}", cycle.join(" -> ")));
        }
    }
    Ok(())
}

#[test]
fn the_crate_reads_in_one_direction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graphs = graphs(&src);
    for (module, deps) in &graphs.top {
        println!("{module} -> {deps:?}");
    }
    for (folder, graph) in &graphs.folders {
        for (module, deps) in graph {
            println!("{folder}::{module} -> {deps:?}");
        }
    }
    // The reading sees what is there: the halves use the base.
    assert!(graphs.top["server"].contains("jose"));
    assert!(graphs.top["client"].contains("endpoint_auth"));
    assert!(graphs.top["server"].contains("endpoint_auth"));
    assert!(graphs.folders["server"]["validation"].contains("issuer"));
    assert!(
        graphs.top["jose"].is_empty(),
        "jose is the bottom: {:?}",
        graphs.top["jose"]
    );
    check(&graphs).unwrap();
}

fn graph(edges: &[(&str, &[&str])]) -> Graph {
    edges
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[test]
fn the_checks_find_a_cycle_and_a_crossing() {
    let cycle = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
    assert_eq!(find_cycle(&cycle).unwrap(), ["a", "b", "c", "a"]);
    let crossed = graph(&[
        ("client", &["jose"]),
        ("server", &["jose", "client"]),
        ("jose", &[]),
    ]);
    assert_eq!(crossing(&crossed), Some(("server".into(), "client".into())));
    let base_up = graph(&[("jose", &["server"]), ("server", &[])]);
    assert_eq!(crossing(&base_up), Some(("jose".into(), "server".into())));
    let fine = graph(&[("client", &["jose"]), ("server", &["jose"]), ("jose", &[])]);
    assert_eq!(crossing(&fine), None);
}

#[test]
fn paths_are_read_from_the_code() {
    let module = vec!["server".to_owned(), "validation".to_owned()];
    let refs = references(
        &module,
        false,
        "use super::jwks::KeyCache;\nuse crate::{jose::json, scope::Scope};\nuse crate::client::X; shared_auth::crate::no",
    );
    assert!(refs.contains(&vec!["server".to_owned(), "jwks".to_owned()]));
    assert!(refs.contains(&vec!["jose".to_owned(), "json".to_owned()]));
    assert!(refs.contains(&vec!["scope".to_owned(), "Scope".to_owned()]));
    assert!(refs.contains(&vec!["client".to_owned(), "X".to_owned()]));
    assert_eq!(
        non_test("a\n#[cfg(test)]\npub(crate) fn f() {}\nb\n#[cfg(test)]\nmod tests {}"),
        "a\n#[cfg(test)]\npub(crate) fn f() {}\nb\n"
    );
}
