//! The server half reads in one direction: `error` <- `jwks` <- `validation` <-
//! `auth_layer` / `scope_policy`, with no import cycle among its modules. This reads the
//! `super::` imports of each module's non-test code and fails on any cycle, naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn imports(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "mod")
        .collect();
    modules
        .iter()
        .map(|module| {
            let source = std::fs::read_to_string(dir.join(format!("{module}.rs"))).unwrap();
            // Unit tests may look anywhere; the module's own code may not.
            let code = source.split("#[cfg(test)]").next().unwrap_or_default();
            let deps = code
                .match_indices("super::")
                .map(|(at, _)| {
                    code[at + "super::".len()..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .filter(|dep| dep != module && modules.contains(dep))
                .collect();
            (module.clone(), deps)
        })
        .collect()
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
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

#[test]
fn the_server_half_has_no_import_cycle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server");
    let graph = imports(&dir);
    for (module, deps) in &graph {
        println!("{module} -> {deps:?}");
    }
    assert!(graph.contains_key("validation") && graph["validation"].contains("jwks"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    assert!(
        graph["error"].is_empty(),
        "error is the bottom: {:?}",
        graph["error"]
    );
    assert!(
        graph["jwks"].is_empty(),
        "jwks knows no other server module: {:?}",
        graph["jwks"]
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
