//! Tidy checks over this repository's own sources, in the manner of rust-analyzer's
//! `tidy.rs`: every module opens with a `//!` doc that says what it owns and what it must not
//! know, and every library crate's `Owns:` paragraph names each of its modules, so the map in
//! the crate root stays true when a module is added.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every `.rs` file under the `src/` folders of `crates/*`, `bins/*` and `xtask`.
fn source_files(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for group in ["crates", "bins"] {
        if let Ok(entries) = std::fs::read_dir(root.join(group)) {
            for e in entries.flatten() {
                dirs.push(e.path().join("src"));
            }
        }
    }
    dirs.push(root.join("xtask").join("src"));
    let mut out = Vec::new();
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The leading `//!` block of a file, without the markers.
fn module_doc(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim())
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// `mod name;` declarations of a crate root (inline modules such as `mod tests {` excluded).
fn declared_modules(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| {
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// Every tidy problem under `root`, one line each.
fn problems(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for file in source_files(root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        let Some(doc) = module_doc(&text) else {
            out.push(format!(
                "{rel}: the module does not open with a //! doc (what it owns, what it must not know)"
            ));
            continue;
        };
        let is_lib_root = rel.starts_with("crates/") && rel.ends_with("src/lib.rs");
        if is_lib_root {
            if !doc.contains("Owns") {
                out.push(format!("{rel}: the crate doc has no `Owns:` paragraph"));
            }
            for m in declared_modules(&text) {
                let named = doc.contains(&format!("`{m}`"))
                    || doc.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == m);
                if !named {
                    out.push(format!("{rel}: the crate doc does not name its module `{m}`"));
                }
            }
        }
    }
    out
}

#[test]
fn every_module_is_documented_and_every_crate_names_its_modules() {
    let found = problems(&repo_root());
    assert!(found.is_empty(), "tidy:\n{}", found.join("\n"));
}

#[test]
fn an_undocumented_module_and_an_unnamed_module_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("crates").join("quiet").join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "//! `quiet`: a crate.\n//!\n//! Owns: `loud`.\n\nmod loud;\nmod silent;\n",
    )
    .unwrap();
    std::fs::write(src.join("loud.rs"), "//! Loud things. Must not know: silence.\n").unwrap();
    std::fs::write(src.join("silent.rs"), "pub fn hush() {}\n").unwrap();
    let found = problems(dir.path());
    assert_eq!(
        found,
        vec![
            "crates/quiet/src/lib.rs: the crate doc does not name its module `silent`".to_owned(),
            "crates/quiet/src/silent.rs: the module does not open with a //! doc (what it owns, what it must not know)"
                .to_owned(),
        ]
    );
}
