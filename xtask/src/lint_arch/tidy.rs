//! Tidy checks that keep ARCHITECTURE.md and the crates' docs true:
//! - `code-map`: the Code map lists every workspace member, once;
//! - `owner-table-schema`: every table under Table owners is created by the schema (a
//!   migration's or a crate's `CREATE TABLE`), and every table the schema creates has an owner;
//! - `crate-doc`: every member's crate doc (`lib.rs`, else `main.rs`) says what it must not know.
//!
//! Must not know: what the crates do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cargo_metadata::Metadata;
use regex::Regex;

use super::table_owners::Owner;
use super::{Report, Violation, find_line};

/// Tables the schema creates that no product code owns (fixtures of the original's data).
const UNOWNED: &[&str] = &["agent_memories", "bench_ids"];

pub fn check(meta: &Metadata, root: &Path, doc: &str, owners: &[Owner], report: &mut Report) -> anyhow::Result<()> {
    let arch = root.join("ARCHITECTURE.md");
    code_map(meta, &arch, doc, report);
    schema(root, &arch, owners, report)?;
    crate_docs(meta, report);
    Ok(())
}

/// The workspace name of a member as the code map writes it: `bins/<dir>` for binaries under
/// `bins/`, else the package name.
fn map_name(root: &Path, pkg: &cargo_metadata::Package) -> String {
    let dir = pkg
        .manifest_path
        .parent()
        .map(|d| d.as_std_path().to_path_buf())
        .unwrap_or_default();
    match dir.strip_prefix(root) {
        Ok(rel) if rel.starts_with("bins") => rel.to_string_lossy().replace('\\', "/"),
        _ => pkg.name.to_string(),
    }
}

fn code_map(meta: &Metadata, arch: &Path, doc: &str, report: &mut Report) {
    let root = meta.workspace_root.as_std_path();
    let first_cell = Regex::new(r"^\| `([^`]+)`").ok();
    let mut listed: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut inside = false;
    for (i, line) in doc.lines().enumerate() {
        if line.starts_with("## ") {
            inside = line.trim_start_matches('#').trim() == "Code map";
            continue;
        }
        if inside
            && let Some(re) = &first_cell
            && let Some(c) = re.captures(line)
        {
            listed.entry(c[1].to_owned()).or_default().push(i + 1);
        }
    }
    let line_of_map = find_line(doc, |l| l.trim() == "## Code map");
    for pkg in meta.workspace_packages() {
        let name = map_name(root, pkg);
        match listed.get(&name).map(Vec::len) {
            Some(1) => {}
            None | Some(0) => report.violations.push(Violation {
                file: arch.to_path_buf(),
                line: line_of_map,
                rule: "code-map",
                message: format!(
                    "workspace member `{name}` has no row in the Code map: add one (owns / must not know)"
                ),
            }),
            Some(n) => report.violations.push(Violation {
                file: arch.to_path_buf(),
                line: listed[&name][1],
                rule: "code-map",
                message: format!("`{name}` has {n} rows in the Code map: keep one"),
            }),
        }
    }
}

/// Every `CREATE TABLE` of the repository's SQL files, and of Rust sources under `src/`
/// (a crate that installs its own DDL, as the ledger does): `schema.table` or `table`.
fn created_tables(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let re = Regex::new(
        r#"(?i)create\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?"?([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)"?\s*\("#,
    )?;
    let mut files = super::files_with_ext(root, "sql");
    let rs = super::files_with_ext(root, "rs");
    files.extend(
        rs.into_iter()
            .filter(|p| p.components().any(|c| c.as_os_str() == "src") && !p.starts_with(root.join("xtask"))),
    );
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        for c in re.captures_iter(&text) {
            out.insert(c[1].to_lowercase().trim_start_matches("public.").to_owned());
        }
    }
    Ok(out)
}

fn schema(root: &Path, arch: &Path, owners: &[Owner], report: &mut Report) -> anyhow::Result<()> {
    let created = created_tables(root)?;
    for o in owners {
        let exists = match o.table.strip_suffix(".*") {
            Some(schema) => created.iter().any(|t| t.starts_with(&format!("{schema}."))),
            None => created.contains(&o.table),
        };
        if !exists {
            report.violations.push(Violation {
                file: arch.to_path_buf(),
                line: o.line,
                rule: "owner-table-schema",
                message: format!(
                    "Table owners names `{}`, which no migration or DDL creates: fix the name or drop the row",
                    o.table
                ),
            });
        }
        if o.paths.is_empty() {
            report.violations.push(Violation {
                file: arch.to_path_buf(),
                line: o.line,
                rule: "owner-table-schema",
                message: format!(
                    "`{}` has no owner path: name its owning files as backticked repository paths",
                    o.table
                ),
            });
        }
    }
    let owned = |t: &str| {
        owners.iter().any(|o| {
            o.table == t
                || o.table
                    .strip_suffix(".*")
                    .is_some_and(|s| t.starts_with(&format!("{s}.")))
        })
    };
    for t in created.iter().filter(|t| !owned(t) && !UNOWNED.contains(&t.as_str())) {
        report.violations.push(Violation {
            file: arch.to_path_buf(),
            line: find_line(&std::fs::read_to_string(arch).unwrap_or_default(), |l| {
                l.trim() == "### Table owners"
            }),
            rule: "owner-table-schema",
            message: format!("the schema creates `{t}`, which has no row under Table owners: give it one owner"),
        });
    }
    Ok(())
}

fn crate_docs(meta: &Metadata, report: &mut Report) {
    for pkg in meta.workspace_packages() {
        let Some(dir) = pkg.manifest_path.parent() else {
            continue;
        };
        let dir = dir.as_std_path();
        let Some(root_file) = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
        else {
            continue;
        };
        let text = std::fs::read_to_string(&root_file).unwrap_or_default();
        let doc: String = text
            .lines()
            .take_while(|l| l.starts_with("//!") || l.trim().is_empty() || l.starts_with("#!"))
            .collect::<Vec<_>>()
            .join("\n");
        if !doc.contains("Must not know") {
            report.violations.push(Violation {
                file: root_file,
                line: 1,
                rule: "crate-doc",
                message: format!(
                    "the crate doc of {} does not say what it must not know: open it with `//! Owns: …` and `//! Must not know: …`",
                    pkg.name
                ),
            });
        }
    }
}
