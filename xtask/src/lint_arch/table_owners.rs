//! Rule `table-owner`: a table's diesel schema module, or a SQL string naming the table, appears
//! only in the files that own it.
//!
//! The owners are read from one place, the "Table owners" table of the workspace's
//! ARCHITECTURE.md: its first column names tables (`memory_plugin.*` for a whole Postgres
//! schema), its second the owning files or folders, as backticked repository paths. Production
//! code is checked (`src/` of every member but the tooling below); tests may name any table.
//!
//! A mention is any of:
//! - a `use` or path through `schema::<table>`, or a path `<table>::table` / `<table>::dsl`;
//! - a string literal, also inside a macro call, with the table after `FROM`, `JOIN`, `INTO`,
//!   `UPDATE`, `TABLE` or `TRUNCATE`.
//!
//! Must not know: what the tables hold.

use std::collections::BTreeMap;
use std::path::Path;

use cargo_metadata::Metadata;
use proc_macro2::{TokenStream, TokenTree};
use regex::Regex;
use syn::visit::Visit;

use super::{Report, Violation};

/// Members that are tooling, not the product: they build databases and benchmarks.
const TOOLING: &[&str] = &["xtask", "molecule-testkit"];

/// One row of the owners table.
#[derive(Debug, Clone)]
pub struct Owner {
    /// A table name, or `schema.*`.
    pub table: String,
    /// Repository-relative files or folders (a folder ends in `/`).
    pub paths: Vec<String>,
    /// ARCHITECTURE.md line of the row.
    pub line: usize,
}

/// The rows of the "Table owners" section of `doc`: `None` when there is no such section.
pub fn parse_owners(doc: &str) -> Option<Vec<Owner>> {
    let tick = Regex::new(r"`([^`]+)`").ok()?;
    let mut rows = Vec::new();
    let mut inside = false;
    for (i, line) in doc.lines().enumerate() {
        if line.starts_with('#') {
            inside = line.trim_start_matches('#').trim() == "Table owners";
            continue;
        }
        if !inside || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", table, owners, ...
        let (Some(tables), Some(owners)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let paths: Vec<String> = tick
            .captures_iter(owners)
            .map(|c| c[1].to_owned())
            .filter(|p| p.contains('/'))
            .collect();
        for t in tick.captures_iter(tables) {
            rows.push(Owner {
                table: t[1].to_owned(),
                paths: paths.clone(),
                line: i + 1,
            });
        }
    }
    let has_section = doc
        .lines()
        .any(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == "Table owners");
    has_section.then_some(rows)
}

/// Where each table is named in `text` (a Rust file): `(line, table key)`.
pub fn mentions(text: &str, tables: &[String]) -> anyhow::Result<Vec<(usize, String)>> {
    let file = syn::parse_file(text)?;
    let sql = Regex::new(
        r#"(?i)\b(?:from|join|into|update|table|truncate)\s+(?:only\s+)?(?:if\s+(?:not\s+)?exists\s+)?"?(?:([a-z_][a-z0-9_]*)"?\.)?"?([a-z_][a-z0-9_]*)"#,
    )?;
    let mut v = Finder {
        tables,
        sql,
        found: Vec::new(),
        use_prefix: Vec::new(),
    };
    v.visit_file(&file);
    v.found.sort();
    v.found.dedup();
    Ok(v.found)
}

struct Finder<'a> {
    tables: &'a [String],
    sql: Regex,
    found: Vec<(usize, String)>,
    use_prefix: Vec<String>,
}

impl Finder<'_> {
    fn key_of(&self, schema: Option<&str>, name: &str) -> Option<String> {
        if let Some(s) = schema {
            let whole = format!("{s}.*");
            if self.tables.contains(&whole) {
                return Some(whole);
            }
            let qualified = format!("{s}.{name}");
            if self.tables.contains(&qualified) {
                return Some(qualified);
            }
            if s != "public" {
                return None;
            }
        }
        self.tables.iter().find(|t| *t == name).cloned()
    }

    fn check_segments(&mut self, segs: &[String], line: usize) {
        for (i, seg) in segs.iter().enumerate() {
            let after_schema = i > 0 && segs[i - 1] == "schema";
            let before_table = segs.get(i + 1).is_some_and(|n| n == "table" || n == "dsl");
            if (after_schema || before_table)
                && let Some(key) = self.key_of(None, seg)
            {
                self.found.push((line, key));
            }
        }
    }

    fn check_literal(&mut self, text: &str, line: usize) {
        let hits: Vec<String> = self
            .sql
            .captures_iter(text)
            .filter_map(|c| self.key_of(c.get(1).map(|m| m.as_str()), &c[2]))
            .collect();
        for key in hits {
            self.found.push((line, key));
        }
    }

    fn scan_tokens(&mut self, tokens: TokenStream) {
        let mut segs: Vec<String> = Vec::new();
        for tt in tokens {
            match tt {
                TokenTree::Literal(lit) => {
                    let line = lit.span().start().line;
                    if let Ok(s) = syn::parse_str::<syn::LitStr>(&lit.to_string()) {
                        self.check_literal(&s.value(), line);
                    }
                    segs.clear();
                }
                TokenTree::Group(g) => {
                    self.scan_tokens(g.stream());
                    segs.clear();
                }
                TokenTree::Ident(id) => {
                    segs.push(id.to_string());
                    self.check_segments(&segs, id.span().start().line);
                }
                TokenTree::Punct(p) => {
                    if p.as_char() != ':' {
                        segs.clear();
                    }
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Finder<'_> {
    super::skip_test_items!();

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if !super::is_test_only(&u.attrs) {
            self.use_prefix.clear();
            self.visit_use_tree(&u.tree);
        }
    }

    fn visit_use_tree(&mut self, t: &'ast syn::UseTree) {
        match t {
            syn::UseTree::Path(p) => {
                self.use_prefix.push(p.ident.to_string());
                let line = p.ident.span().start().line;
                let segs = self.use_prefix.clone();
                self.check_segments(&segs, line);
                self.visit_use_tree(&p.tree);
                self.use_prefix.pop();
            }
            syn::UseTree::Name(n) => self.leaf(&n.ident),
            syn::UseTree::Rename(r) => self.leaf(&r.ident),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.visit_use_tree(item);
                }
            }
            syn::UseTree::Glob(_) => {}
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = p.segments.first().map_or(0, |s| s.ident.span().start().line);
        self.check_segments(&segs, line);
        syn::visit::visit_path(self, p);
    }

    fn visit_lit_str(&mut self, s: &'ast syn::LitStr) {
        self.check_literal(&s.value(), s.span().start().line);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.scan_tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

impl Finder<'_> {
    fn leaf(&mut self, ident: &syn::Ident) {
        let mut segs = self.use_prefix.clone();
        segs.push(ident.to_string());
        self.check_segments(&segs, ident.span().start().line);
    }
}

fn owned_by(rel: &str, paths: &[String]) -> bool {
    paths.iter().any(|p| {
        if p.ends_with('/') {
            rel.starts_with(p.as_str())
        } else {
            rel == p
        }
    })
}

/// Runs the rule; `owners` come from [`parse_owners`].
pub fn check(meta: &Metadata, root: &Path, owners: &[Owner], report: &mut Report) -> anyhow::Result<()> {
    let tables: Vec<String> = owners.iter().map(|o| o.table.clone()).collect();
    let mut by_table: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for o in owners {
        by_table
            .entry(o.table.as_str())
            .or_default()
            .extend(o.paths.iter().cloned());
    }
    for pkg in meta.workspace_packages() {
        if TOOLING.contains(&pkg.name.as_str()) {
            continue;
        }
        let Some(dir) = pkg.manifest_path.parent() else {
            continue;
        };
        for file in super::files_with_ext(&dir.as_std_path().join("src"), "rs") {
            let text = std::fs::read_to_string(&file)?;
            let rel = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .to_string_lossy()
                .replace('\\', "/");
            let found = mentions(&text, &tables).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for (line, table) in found {
                let paths = by_table.get(table.as_str()).cloned().unwrap_or_default();
                if !owned_by(&rel, &paths) {
                    report.violations.push(Violation {
                        file: file.clone(),
                        line,
                        rule: "table-owner",
                        message: format!(
                            "names table `{table}` (a SQL string or its schema module); only {} may \
                             (ARCHITECTURE.md, Table owners): call a function of the owner instead",
                            if paths.is_empty() {
                                "nobody".to_owned()
                            } else {
                                paths.join(", ")
                            }
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(src: &str) -> Vec<(usize, String)> {
        let tables = vec![
            "workspaces".to_owned(),
            "workspace_secrets".to_owned(),
            "memory_plugin.*".to_owned(),
        ];
        mentions(src, &tables).unwrap_or_default()
    }

    #[test]
    fn schema_paths_aliases_and_sql_strings_are_found() {
        let src = r#"
use molecule_db::schema::workspace_secrets as s;
use molecule_db::schema::{workspaces as w, other};
fn a() { diesel::delete(workspace_secrets::table.filter(x)); }
fn b() { let q = "DELETE FROM workspace_secrets WHERE id = $1"; }
fn c() { sql_query(format!("UPDATE workspaces SET x = {}", 1)); }
fn d() { let q = "SELECT * FROM memory_plugin.memories"; }
fn e() { let q = "WITH RECURSIVE up AS (SELECT 1) SELECT * FROM up"; }
#[cfg(test)]
mod tests { fn t() { let q = "DELETE FROM workspaces"; } }
"#;
        let f = found(src);
        let lines: Vec<usize> = f.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7], "{f:?}");
    }

    #[test]
    fn the_owner_table_is_read_with_its_paths() {
        let doc = "# A\n### Table owners\n\n| table | owner | what |\n|---|---|---|\n| `workspaces` | `crates/service/src/row.rs` | x |\n| `a`, `b` | `crates/x/src/` and `crates/y/src/z.rs` | y |\n## Next\n| `c` | `crates/c/` | |\n";
        let rows = parse_owners(doc).unwrap_or_default();
        let names: Vec<&str> = rows.iter().map(|r| r.table.as_str()).collect();
        assert_eq!(names, ["workspaces", "a", "b"]);
        assert_eq!(rows[1].paths, ["crates/x/src/", "crates/y/src/z.rs"]);
        assert!(parse_owners("# nothing here").is_none());
    }
}
