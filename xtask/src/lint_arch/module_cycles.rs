//! Rule `module-cycle`: the top-level modules of one crate use each other without a cycle.
//!
//! A module's uses are the `crate::<module>` paths in its files (in `use` trees and in code),
//! read from the syntax tree; test-only items (`#[cfg(test)]`, `#[test]`) do not count, and
//! neither does the crate root (`lib.rs`, `main.rs`), which composes the modules. A cycle is
//! reported once, at its first module's file, with one use per edge as evidence.
//!
//! Must not know: what the modules do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cargo_metadata::Metadata;
use syn::visit::Visit;

use super::is_test_only;
use super::{Report, Violation};

/// Where one module uses another: the file and line of the first such use.
#[derive(Debug, Clone)]
struct Edge {
    file: PathBuf,
    line: usize,
}

/// The `crate::<name>` uses of one file, by the first segment after `crate`.
#[derive(Default)]
struct Uses {
    found: Vec<(String, usize)>,
}

impl Uses {
    fn note(&mut self, ident: &syn::Ident) {
        self.found.push((ident.to_string(), ident.span().start().line));
    }

    /// The modules a `use crate::…` tree reaches (the level right under `crate`).
    fn use_tree(&mut self, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => self.note(&p.ident),
            syn::UseTree::Name(n) => self.note(&n.ident),
            syn::UseTree::Rename(r) => self.note(&r.ident),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.use_tree(t)),
            syn::UseTree::Glob(_) => {}
        }
    }
}

impl<'ast> Visit<'ast> for Uses {
    super::skip_test_items!();

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if is_test_only(&u.attrs) {
            return;
        }
        if let syn::UseTree::Path(p) = &u.tree
            && p.ident == "crate"
        {
            self.use_tree(&p.tree);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let mut segments = p.segments.iter();
        if let (Some(first), Some(second)) = (segments.next(), segments.next())
            && first.ident == "crate"
        {
            self.note(&second.ident);
        }
        syn::visit::visit_path(self, p);
    }
}

/// The top-level module a file under `src` belongs to (`None` for the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (!matches!(name.as_str(), "lib" | "main" | "bin")).then_some(name)
}

/// Strongly connected components of more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeMap<String, Edge>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeMap<String, Edge>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(lw));
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(iw));
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out.sort();
    walk.out
}

pub fn check(meta: &Metadata, report: &mut Report) -> anyhow::Result<()> {
    for pkg in meta.workspace_packages() {
        let Some(dir) = pkg.manifest_path.parent() else {
            continue;
        };
        let src = dir.as_std_path().join("src");
        let files = super::files_with_ext(&src, "rs");
        let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(&src, f)).collect();
        let mut graph: BTreeMap<String, BTreeMap<String, Edge>> = BTreeMap::new();
        for file in &files {
            let Some(from) = module_of(&src, file) else { continue };
            let text = std::fs::read_to_string(file)?;
            let ast = syn::parse_file(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let mut uses = Uses::default();
            uses.visit_file(&ast);
            let edges = graph.entry(from.clone()).or_default();
            for (to, line) in uses.found {
                if to != from && modules.contains(&to) {
                    edges.entry(to).or_insert_with(|| Edge {
                        file: file.clone(),
                        line,
                    });
                }
            }
        }
        for component in cycles(&graph) {
            let members: BTreeSet<&String> = component.iter().collect();
            let mut evidence = Vec::new();
            let mut first: Option<&Edge> = None;
            for from in &component {
                for (to, edge) in graph.get(from).into_iter().flatten() {
                    if members.contains(to) {
                        let name = edge.file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                        evidence.push(format!("{from} → {to} ({name}:{})", edge.line));
                        first = first.or(Some(edge));
                    }
                }
            }
            let (file, line) = first.map_or_else(|| (src.clone(), 1), |e| (e.file.clone(), e.line));
            report.violations.push(Violation {
                file,
                line,
                rule: "module-cycle",
                message: format!(
                    "modules {} of `{}` use each other: {}; move what they share into a module of \
                     its own, or let the lower one publish instead of calling up",
                    component.join(", "),
                    pkg.name,
                    evidence.join(", ")
                ),
            });
        }
    }
    Ok(())
}
