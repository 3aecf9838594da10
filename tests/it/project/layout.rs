//! The shape of `src/`: every module lives in a stage folder (or is one of
//! the commands' flows at the top), each folder's `mod.rs` opens with a
//! `//!` paragraph, and imports run one way, down the stages. A file that
//! reaches up into a stage above its own fails this test, naming the file,
//! the line and the stage it reached. README.md's map of the source names
//! every folder of `src/`, and no folder that is not there.

use std::path::{Path, PathBuf};

/// The stages from the top down; a file may import from its own stage and
/// from the stages after it. `error` and `sys` serve every stage.
const ORDER: &[&str] = &[
    "cli", "flows", "resolve", "upload", "fetch", "archive", "registry", "store", "ui", "image",
    "sys", "error",
];

/// The files at the top of `src/`, and their stage.
const TOP: &[(&str, &str)] = &[
    ("lib.rs", "flows"),
    ("main.rs", "cli"),
    ("error.rs", "error"),
    ("pull.rs", "flows"),
    ("push.rs", "flows"),
    ("inspect.rs", "flows"),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, relative to it.
fn files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![src()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p.strip_prefix(src()).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The stage a file belongs to, or an error for a file in no stage.
fn stage_of(rel: &Path) -> Result<&'static str, String> {
    let parts: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap()).collect();
    match parts.as_slice() {
        [file] => TOP
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("src/{file} is in no stage folder")),
        [dir, ..] => ORDER
            .iter()
            .find(|s| s == &dir)
            .copied()
            .ok_or_else(|| format!("src/{} is in an unknown folder", rel.display())),
        [] => unreachable!("a file has a name"),
    }
}

/// The stage a `crate::` path names: its first component, or the flow it
/// names at the top.
fn stage_named(first: &str) -> Option<&'static str> {
    if let Some(s) = ORDER.iter().find(|s| **s == first) {
        return Some(s);
    }
    let file = format!("{first}.rs");
    TOP.iter().find(|(f, _)| *f == file).map(|(_, s)| *s)
}

/// The first path components after each `crate::` on a line (including
/// each item of a `crate::{a, b::c}` group).
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn imports_run_down_the_stages() {
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap();
    let mut problems = Vec::new();
    let all = files();
    assert!(all.len() > 40, "found only {} source files", all.len());
    for rel in &all {
        let stage = match stage_of(rel) {
            Ok(s) => s,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let text = std::fs::read_to_string(src().join(rel)).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for name in crate_paths(line) {
                let Some(target) = stage_named(&name) else {
                    problems.push(format!(
                        "src/{}:{}: crate::{name} is no stage",
                        rel.display(),
                        n + 1
                    ));
                    continue;
                };
                if rank(target) < rank(stage) {
                    problems.push(format!(
                        "src/{}:{}: the {stage} stage reaches up into {target} (crate::{name})",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_stage_folder_says_what_it_does() {
    for stage in ORDER {
        let dir = src().join(stage);
        if !dir.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(dir.join("mod.rs"))
            .unwrap_or_else(|e| panic!("src/{stage}/mod.rs: {e}"));
        let doc: Vec<&str> = text.lines().take_while(|l| l.starts_with("//!")).collect();
        assert!(
            doc.len() >= 4,
            "src/{stage}/mod.rs should open with a //! paragraph on what the stage takes in, gives out and never does"
        );
    }
    // The folders the layout names are there.
    for stage in [
        "cli", "resolve", "upload", "fetch", "archive", "registry", "store", "ui", "image",
    ] {
        assert!(src().join(stage).is_dir(), "src/{stage}/ is missing");
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    // The checker itself: a line in image/ naming the registry is caught.
    assert_eq!(
        crate_paths("use crate::registry::client::Registry;"),
        ["registry"]
    );
    assert_eq!(
        crate_paths("use crate::{pull, fetch::download};"),
        ["pull", "fetch"]
    );
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap();
    let from = stage_of(Path::new("image/digest.rs")).unwrap();
    let to = stage_named("registry").unwrap();
    assert!(rank(to) < rank(from));
    assert_eq!(stage_of(Path::new("pull.rs")), Ok("flows"));
    assert!(stage_of(Path::new("stray.rs")).is_err());
}

/// The folders README.md's "Layout of the source" table names (its rows'
/// first cells, `` `name/` ``).
fn readme_folders() -> Vec<String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let start = text
        .find("## Layout of the source")
        .expect("README has a source map");
    let rows = text[start..].lines().skip(1);
    let table = rows
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'));
    table
        .filter_map(|l| l.split('|').nth(1))
        .filter_map(|cell| cell.trim().strip_prefix('`')?.strip_suffix("/`"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_map_names_every_folder() {
    let named = readme_folders();
    assert!(named.len() >= 5, "the README's map names only {named:?}");
    let mut folders: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    folders.sort();
    for f in &folders {
        assert!(
            named.contains(f),
            "README.md's source map does not name src/{f}/ (it names {named:?})"
        );
    }
    for n in &named {
        assert!(
            folders.contains(n),
            "README.md's source map names src/{n}/, which is not there"
        );
    }
}
