//! No two modules of one parent depend on each other, directly or round a loop: the
//! folders are to show the pipeline's one-way flow, and a cycle between siblings means
//! neither can be read, tested or moved without the other.
//!
//! Read from the source as text: each file's `mod` declarations give the module tree
//! (from `lib.rs` and from `main.rs`), and its `crate::`, `super::` and `self::` paths
//! the modules it uses. A use of `a::b::c` from inside `a::d::e` is an edge `b` -> `d`
//! among the children of `a`. Test modules are left out: a test may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// A module's path from its crate's root, e.g. `["text", "ocr", "gate"]`.
type ModPath = Vec<String>;

struct Module {
    path: ModPath,
    file: PathBuf,
    /// The file's text up to its test module.
    code: String,
}

/// Every non-test module of the crate rooted at `root`, with its file.
fn modules(root: &Path) -> Vec<Module> {
    let declaration =
        Regex::new(r"(?m)^(\s*#\[cfg\(test\)\]\s*\n)?\s*(?:pub(?:\([a-z]+\))? )?mod ([a-z0-9_]+);")
            .unwrap();
    let mut found = Vec::new();
    let mut todo = vec![(Vec::new(), root.to_path_buf())];
    while let Some((path, file)) = todo.pop() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let code = match text.find("#[cfg(test)]\nmod tests {") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        // A file's child modules live in the folder named after it (or its own folder,
        // for lib.rs, main.rs and mod.rs).
        let name = file.file_stem().unwrap().to_str().unwrap();
        let folder = if path.is_empty() || name == "mod" {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for c in declaration.captures_iter(&code) {
            if c.get(1).is_some() {
                continue;
            }
            let child = &c[2];
            let flat = folder.join(format!("{child}.rs"));
            let nested = folder.join(child).join("mod.rs");
            let child_file = if flat.exists() { flat } else { nested };
            assert!(
                child_file.exists(),
                "{file:?} declares mod {child}, not found"
            );
            let mut child_path = path.clone();
            child_path.push(child.to_string());
            todo.push((child_path, child_file));
        }
        found.push(Module { path, file, code });
    }
    found
}

/// The module a path written in `from` names: `crate`, `super` and `self` resolved, then
/// followed while its segments are modules.
fn target(from: &ModPath, segments: &[&str], known: &BTreeSet<ModPath>) -> ModPath {
    // `self` is the module itself and `super` its parent, whether it is a file of its own
    // (`a/b.rs`) or a folder's (`a/b/mod.rs`).
    let mut at: ModPath = match segments[0] {
        "crate" => Vec::new(),
        _ => from.clone(),
    };
    let mut rest = &segments[1..];
    if segments[0] == "super" {
        at.pop();
        while rest.first() == Some(&"super") {
            at.pop();
            rest = &rest[1..];
        }
    }
    for s in rest {
        let mut next = at.clone();
        next.push((*s).to_string());
        if !known.contains(&next) {
            break;
        }
        at = next;
    }
    at
}

/// The paths used in `code`, comments left out: `crate::…`, `super::…` and `self::…`,
/// with `use` groups in braces spread out.
fn used_paths(code: &str) -> Vec<Vec<String>> {
    let code: String = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let uses = Regex::new(r"(?s)\buse\s+((?:crate|super|self)::[^;]*);").unwrap();
    let inline = Regex::new(r"\b(?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+").unwrap();
    let mut paths = Vec::new();
    // One space at most, and none beside `::`, braces and commas: `a as b` keeps its.
    let tight = Regex::new(r" ?(::|[{},]) ?").unwrap();
    for c in uses.captures_iter(code) {
        let tree = c[1].split_whitespace().collect::<Vec<_>>().join(" ");
        spread("", &tight.replace_all(&tree, "$1"), &mut paths);
    }
    for m in inline.find_iter(code) {
        paths.push(m.as_str().split("::").map(str::to_string).collect());
    }
    paths
}

/// `prefix` joined to each leaf of the use tree `tree` (`a::{b, c::{d}}`).
fn spread(prefix: &str, tree: &str, out: &mut Vec<Vec<String>>) {
    match tree.find('{') {
        None => {
            let whole = format!("{prefix}{tree}");
            let whole = whole.split(" as ").next().unwrap_or(&whole).to_string();
            out.push(
                whole
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        Some(open) => {
            let head = format!("{prefix}{}", &tree[..open]);
            let inner = &tree[open + 1..tree.rfind('}').unwrap()];
            // Split the group at its top-level commas.
            let (mut depth, mut start) = (0, 0);
            for (i, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        spread(&head, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if start < inner.len() {
                spread(&head, &inner[start..], out);
            }
        }
    }
}

/// Each set of modules that reach one another through their uses, as a readable line
/// naming the uses inside it; none when all is well.
fn cycles(root: &Path) -> Vec<String> {
    let modules = modules(root);
    let known: BTreeSet<ModPath> = modules.iter().map(|m| m.path.clone()).collect();
    // module -> module it uses -> (file, the path written) that shows it
    let mut graph: BTreeMap<ModPath, BTreeMap<ModPath, (PathBuf, String)>> = BTreeMap::new();
    for m in &modules {
        for written in used_paths(&m.code) {
            if written.len() < 2 {
                continue;
            }
            let segments: Vec<&str> = written.iter().map(String::as_str).collect();
            let to = target(&m.path, &segments, &known);
            // A module holds its children and sits in its ancestors: neither is a cycle.
            if to.starts_with(&m.path) || m.path.starts_with(&to) {
                continue;
            }
            graph
                .entry(m.path.clone())
                .or_default()
                .entry(to)
                .or_insert_with(|| (m.file.clone(), written.join("::")));
        }
    }
    let reach = |from: &ModPath| -> BTreeSet<ModPath> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(at) = todo.pop() {
            for to in graph.get(&at).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&ModPath, BTreeSet<ModPath>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut shown = BTreeSet::new();
    let mut found = Vec::new();
    for (m, from_m) in &reaches {
        if shown.contains(*m) || !from_m.contains(*m) {
            continue;
        }
        // The modules that m reaches and that reach m: its cycle's members.
        let members: BTreeSet<&ModPath> = from_m
            .iter()
            .filter(|o| reaches.get(o).is_some_and(|r| r.contains(*m)))
            .collect();
        let name = |p: &ModPath| p.join("::");
        let uses: Vec<String> = members
            .iter()
            .flat_map(|a| {
                graph[*a].iter().filter(|(b, _)| members.contains(b)).map(
                    move |(b, (file, written))| {
                        format!("{} -> {} ({}: {written})", name(a), name(b), file.display())
                    },
                )
            })
            .collect();
        found.push(uses.join(", "));
        shown.extend(members.into_iter().cloned());
    }
    found
}

#[test]
fn no_module_depends_on_one_that_depends_on_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for root in ["lib.rs", "main.rs"] {
        let cycles = cycles(&src.join(root));
        assert!(
            cycles.is_empty(),
            "module cycles from {root}:\n{}",
            cycles.join("\n")
        );
    }
}

#[test]
fn a_cycle_between_two_files_is_found_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod c;\n");
    write("a/mod.rs", "mod b;\nmod d;\n#[cfg(test)]\nmod t;\n");
    write(
        "a/b.rs",
        "use super::{d as renamed, d::{One, more::Two}};\n",
    );
    write("a/d.rs", "pub fn f() { crate::a::b::g() }\n");
    write("a/t.rs", "use crate::c::X;\n");
    write(
        "c.rs",
        "use crate::a::b;\n#[cfg(test)]\nmod tests {\n    use crate::a::d;\n}\n",
    );
    let shown = |name: &str| dir.path().join(name).display().to_string();
    assert_eq!(
        cycles(&dir.path().join("lib.rs")),
        [format!(
            "a::b -> a::d ({}: super::d), a::d -> a::b ({}: crate::a::b::g)",
            shown("a/b.rs"),
            shown("a/d.rs")
        )]
    );
    // Round three modules, across folders, two levels up.
    write("a/d.rs", "pub fn f() { super::super::c::h() }\n");
    assert_eq!(
        cycles(&dir.path().join("lib.rs")),
        [format!(
            "a::b -> a::d ({}: super::d), a::d -> c ({}: super::super::c::h), \
             c -> a::b ({}: crate::a::b)",
            shown("a/b.rs"),
            shown("a/d.rs"),
            shown("c.rs")
        )]
    );
    // A parent using its children, test modules' uses, comments and one-way uses are no
    // cycle.
    write("a/d.rs", "// crate::a::b and crate::c\npub fn f() {}\n");
    assert_eq!(cycles(&dir.path().join("lib.rs")), Vec::<String>::new());
}
