//! No top-level module of the runtime imports a module that (directly or through
//! others) imports it back: the layers read in one direction (`types` → `seams` →
//! `cache` / `engine` → `db` → `realtime` → `router` → `serve`).
//!
//! The test reads `src/`, takes every `crate::<module>` and `super::` path that leaves
//! a top-level module (in `use` items and inline paths; comments are skipped), and
//! fails naming each cycle with the lines that make it. Names the crate root
//! re-exports (`crate::Error`, `crate::ReactiveDb`) count as an import of the module
//! they come from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges allowed despite closing a cycle: `(from, to, why)`. Empty: every cycle found
/// is an error.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// One import of `to` by a file of `from`.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    at: String,
}

#[test]
fn top_level_modules_do_not_import_each_other_in_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let crate_graph = Graph::of_crate(&src);
    assert!(
        crate_graph.modules.len() > 5,
        "found too few modules in {}: {:?}",
        src.display(),
        crate_graph.modules
    );
    let cycles = crate_graph.cycles();
    assert!(
        cycles.is_empty(),
        "module cycles in reactive-runtime/src (break them by moving the shared items \
         down a layer, e.g. to `types` or `seams`):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn a_cycle_is_reported_with_the_imports_that_make_it() {
    let modules = ["a", "b", "c", "d"].map(String::from).into_iter().collect();
    let mut graph = Graph {
        modules,
        edges: Vec::new(),
    };
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")] {
        graph.edges.push(Edge {
            from: from.into(),
            to: to.into(),
            at: format!("{from}.rs:1"),
        });
    }
    let cycles = graph.cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].starts_with("a -> b -> c -> a"), "{}", cycles[0]);
    assert!(cycles[0].contains("c.rs:1"), "{}", cycles[0]);
}

#[test]
fn paths_in_use_trees_and_super_chains_are_resolved() {
    let modules: BTreeSet<String> = ["cache", "engine", "types", "error"]
        .map(String::from)
        .into_iter()
        .collect();
    let reexports = BTreeMap::from([("Error".to_owned(), "error".to_owned())]);
    let text = "use crate::{types::{ReadSet, ChangeSet}, Error};\n\
                use super::super::engine::Engine; // crate::cache::X in a comment\n\
                fn f() { super::memory::g(); }\n";
    let found = imports_of(
        text,
        &["cache".into(), "memory".into()],
        &modules,
        &reexports,
    );
    let targets: BTreeSet<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(targets, BTreeSet::from(["engine", "error", "types"]));
}

struct Graph {
    modules: BTreeSet<String>,
    edges: Vec<Edge>,
}

impl Graph {
    fn of_crate(src: &Path) -> Self {
        let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
        let lib = strip_comments(&lib);
        let modules: BTreeSet<String> = lib
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                let rest = line
                    .strip_prefix("pub mod ")
                    .or_else(|| line.strip_prefix("mod "))?;
                Some(rest.trim_end_matches(';').trim().to_owned())
            })
            .collect();
        let reexports = root_reexports(&lib, &modules);
        let mut edges = Vec::new();
        for file in rust_files(src) {
            let relative = file.strip_prefix(src).expect("under src");
            let mut path: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if path.last().is_some_and(|last| last == "mod") {
                path.pop();
            }
            if path == ["lib"] {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("read source file");
            for (to, line) in imports_of(&text, &path, &modules, &reexports) {
                if to != path[0] {
                    edges.push(Edge {
                        from: path[0].clone(),
                        to,
                        at: format!("{}:{line}", relative.display()),
                    });
                }
            }
        }
        Graph { modules, edges }
    }

    /// One message per strongly connected group of modules: a cycle through it and
    /// the lines of its edges.
    fn cycles(&self) -> Vec<String> {
        let allowed = |e: &Edge| ALLOWED.iter().any(|(f, t, _)| *f == e.from && *t == e.to);
        let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for e in self.edges.iter().filter(|e| !allowed(e)) {
            next.entry(&e.from).or_default().insert(&e.to);
        }
        let reaches = |from: &str, to: &str| -> Option<Vec<String>> {
            // Breadth-first, so that the reported cycle is a shortest one.
            let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([from]);
            while let Some(m) = queue.pop_front() {
                for &n in next.get(m).into_iter().flatten() {
                    if n == to {
                        let mut path = vec![n.to_owned(), m.to_owned()];
                        let mut at = m;
                        while at != from {
                            at = parent[at];
                            path.push(at.to_owned());
                        }
                        path.reverse();
                        return Some(path);
                    }
                    if n != from && !parent.contains_key(n) {
                        parent.insert(n, m);
                        queue.push_back(n);
                    }
                }
            }
            None
        };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut out = Vec::new();
        for module in &self.modules {
            if seen.contains(module) {
                continue;
            }
            let Some(cycle) = reaches(module, module) else {
                continue;
            };
            seen.extend(cycle.iter().cloned());
            let mut message = cycle.join(" -> ");
            for pair in cycle.windows(2) {
                for e in self
                    .edges
                    .iter()
                    .filter(|e| e.from == pair[0] && e.to == pair[1])
                {
                    message.push_str(&format!("\n    {} -> {} at {}", e.from, e.to, e.at));
                }
            }
            out.push(message);
        }
        out
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The text without `//` comments (doc comments included), lines kept in place.
/// A `//` inside a string literal cuts the rest of that line, which only hides paths.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names the crate root re-exports from its own modules (`pub use db::{ReactiveDb}`).
fn root_reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (module, names) in use_trees(lib, "pub use ") {
        if modules.contains(&module) {
            for name in names {
                out.insert(name, module.clone());
            }
        }
    }
    out
}

/// `(first segment, last segments of each leaf)` of every use tree starting with `prefix`.
fn use_trees(text: &str, prefix: &str) -> Vec<(String, Vec<String>)> {
    let flat = text.replace('\n', " ");
    let mut out = Vec::new();
    for item in flat.split(prefix).skip(1) {
        let item = item.split(';').next().unwrap_or("");
        let Some((first, rest)) = item.split_once("::") else {
            continue;
        };
        let leaves = rest
            .split([',', '{', '}'])
            .filter_map(|leaf| leaf.trim().rsplit("::").next())
            .filter(|leaf| !leaf.is_empty())
            .map(str::to_owned)
            .collect();
        out.push((first.trim().to_owned(), leaves));
    }
    out
}

/// The top-level modules (with 1-based line numbers) that `text`, the source of module
/// `path`, refers to through `crate::` or enough `super::`s to reach the crate root.
/// An inline `mod name {` adds one level for the lines after it (test modules).
fn imports_of(
    text: &str,
    path: &[String],
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> Vec<(String, usize)> {
    let resolve = |ident: &str| -> Option<String> {
        if modules.contains(ident) {
            Some(ident.to_owned())
        } else {
            reexports.get(ident).cloned()
        }
    };
    let text = strip_comments(text);
    // The module depth at the start of each line.
    let mut depths = Vec::new();
    let mut depth = path.len();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let trimmed = trimmed.strip_prefix("pub(crate) ").unwrap_or(trimmed);
        if trimmed.starts_with("mod ") && trimmed.trim_end().ends_with('{') {
            depth += 1;
        }
        depths.push(depth);
    }
    let mut out = Vec::new();
    let mut offset = 0;
    while let Some(found) = find_path_start(&text[offset..]) {
        let at = offset + found;
        let line = text[..at].matches('\n').count();
        let depth = depths[line];
        let tail = &text[at..];
        let (supers, after) = if let Some(after) = tail.strip_prefix("crate::") {
            (None, after)
        } else {
            let mut n = 0;
            let mut after = tail;
            while let Some(a) = after.strip_prefix("super::") {
                n += 1;
                after = a;
            }
            (Some(n), after)
        };
        offset = text.len() - after.len();
        // Fewer `super::`s than the depth stay inside this top-level module.
        if supers.is_some_and(|n| n != depth) {
            continue;
        }
        let idents = match after.strip_prefix('{') {
            Some(group) => top_level_items(group),
            None => vec![
                after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            ],
        };
        out.extend(
            idents
                .iter()
                .filter_map(|ident| resolve(ident))
                .map(|m| (m, line + 1)),
        );
    }
    out
}

/// Where the next `crate::` or `super::` path starts (not inside an identifier).
fn find_path_start(text: &str) -> Option<usize> {
    ["crate::", "super::"]
        .into_iter()
        .filter_map(|needle| {
            text.match_indices(needle)
                .find(|(at, _)| {
                    text[..*at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
                })
                .map(|(at, _)| at)
        })
        .min()
}

/// The first identifier of each item of a `{...}` use group (the text after `{`).
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            current.push(c);
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|item| {
            item.trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|ident| !ident.is_empty())
        .collect()
}
