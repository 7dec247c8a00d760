//! `cargo xtask lint-arch`: the architecture's invariants that types cannot express.
//!
//! - **deps**: dependency direction from `cargo metadata` (which crate may depend on which;
//!   only the HTTP crates may use actix-web; only `molecule-provisioner` may use bollard and the
//!   AWS SDK; no library depends on a binary or on the HTTP crate). The rules look through
//!   `molecule-workspace-hack` (its dependencies cannot be named in code), and a member that
//!   names it in code is flagged (`workspace-hack-named`).
//! - **backend-calls**: only `molecule-dispatcher` calls a provisioner `Backend`'s
//!   provision/stop/remove methods, found on the syntax tree (syn), through `use … as` aliases,
//!   UFCS paths, trait objects, generics and struct fields.
//! - **table-owner**: a table is named (SQL or its diesel schema module) only by the files
//!   ARCHITECTURE.md's Table owners table names for it.
//! - **module-cycle**: the top-level modules of a crate use each other (`crate::…`) without a
//!   cycle; test-only items and the crate root do not count.
//! - **crate-share**: no library crate holds more than 15% of the non-test lines
//!   (`cargo xtask sizes` prints the table).
//! - **tidy**: the Code map lists every member once, every owned table exists in the schema
//!   and every created table has an owner, and every crate doc says what it must not know.
//!
//! The last two read the workspace's ARCHITECTURE.md; a workspace without one (the fixtures of
//! the other rules) is not checked by them.
//!
//! Each violation prints as `file:line rule-name: explanation`.

mod backend_calls;
mod deps;
mod module_cycles;
pub mod sizes;
mod table_owners;
mod tidy;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// One broken rule at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub file: PathBuf,
    pub line: usize,
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} {}: {}",
            self.file.display(),
            self.line,
            self.rule,
            self.message
        )
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub crates_checked: usize,
    pub files_checked: usize,
    /// Tables under ARCHITECTURE.md's Table owners (0 without the document).
    pub tables_owned: usize,
}

/// Runs every rule over the workspace whose root manifest is `manifest`.
pub fn check(manifest: &Path) -> anyhow::Result<Report> {
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest)
        .exec()
        .with_context(|| format!("cargo metadata --manifest-path {}", manifest.display()))?;
    let root = meta.workspace_root.clone().into_std_path_buf();
    let mut report = Report::default();
    deps::check(&meta, &mut report);
    backend_calls::check(&meta, &mut report)?;
    sizes::check(&meta, &mut report);
    module_cycles::check(&meta, &mut report)?;
    let arch = root.join("ARCHITECTURE.md");
    if let Ok(doc) = std::fs::read_to_string(&arch) {
        let Some(owners) = table_owners::parse_owners(&doc) else {
            anyhow::bail!(
                "{}: no \"Table owners\" section; lint-arch reads the owners from it",
                arch.display()
            );
        };
        report.tables_owned = owners.len();
        table_owners::check(&meta, &root, &owners, &mut report)?;
        tidy::check(&meta, &root, &doc, &owners, &mut report)?;
    }
    for v in &mut report.violations {
        if let Ok(rel) = v.file.strip_prefix(&root) {
            v.file = rel.to_path_buf();
        }
    }
    report
        .violations
        .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(report)
}

/// Every file ending in `.{ext}` under `dir`, sorted; `target`, `fixtures` and hidden folders
/// are passed over (fixtures are other workspaces, broken on purpose).
pub(crate) fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if p.is_dir() {
                if name != "target" && name != "fixtures" && !name.starts_with('.') {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The 1-based line of the first line in `text` for which `pred` holds (1 if none).
pub(crate) fn find_line(text: &str, pred: impl Fn(&str) -> bool) -> usize {
    text.lines().position(pred).map_or(1, |i| i + 1)
}

/// `#[test]`, or a `#[cfg(…)]` that needs `test` (and is not `not(test)`).
pub(crate) fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        if a.path().is_ident("test") {
            return true;
        }
        match &a.meta {
            syn::Meta::List(l) if l.path.is_ident("cfg") => {
                let text = l.tokens.to_string();
                text.contains("test") && !text.contains("not")
            }
            _ => false,
        }
    })
}

/// The `Visit` methods that pass over test-only modules, functions and impls, for a rule about
/// product code: `#[cfg(test)]` and `#[test]` items are not read.
macro_rules! skip_test_items {
    () => {
        fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
            if !$crate::lint_arch::is_test_only(&m.attrs) {
                syn::visit::visit_item_mod(self, m);
            }
        }

        fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
            if !$crate::lint_arch::is_test_only(&f.attrs) {
                syn::visit::visit_item_fn(self, f);
            }
        }

        fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
            if !$crate::lint_arch::is_test_only(&i.attrs) {
                syn::visit::visit_item_impl(self, i);
            }
        }
    };
}
pub(crate) use skip_test_items;
