//! Rule `dispatcher-only-backend-calls`: outside `molecule-dispatcher` (and the provisioner
//! itself, which implements the trait), nothing calls a provisioner `Backend`'s mutating
//! methods. Found on the syntax tree:
//!
//! - UFCS and paths: `Backend::provision(..)`, `<T as Backend>::stop(..)`, `Alias::stop` after
//!   `use molecule_provisioner::Backend as Alias`, `DockerBackend::provision(..)`;
//! - method calls on values known to be backends: parameters, `let` bindings and struct fields
//!   whose type mentions the trait (`&dyn Backend`, `Arc<dyn Alias>`, `impl Backend`, a generic
//!   bounded by it) or an implementing type, values built from an implementing type, and chains
//!   rooted in such values (`self.backends[i].clone().stop()`).
//!
//! It is deliberately conservative: a value whose type is unknown to it is not a backend, so it
//! reports no false positives on `dispatcher.stop()`; the dispatcher crate is the only place
//! that holds backends, and the dependency rules keep it that way.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cargo_metadata::Metadata;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};

use super::{Report, Violation};

pub const RULE: &str = "dispatcher-only-backend-calls";
pub const DISPATCHER: &str = "molecule-dispatcher";
pub const PROVISIONER: &str = "molecule-provisioner";
const TRAIT: &str = "Backend";
/// Used when the provisioner crate is absent or declares none of them.
const DEFAULT_FORBIDDEN: &[&str] = &["provision", "stop", "remove_volumes"];

fn is_mutating(method: &str) -> bool {
    ["provision", "stop", "remove", "restart", "terminate"]
        .iter()
        .any(|p| method.starts_with(p))
}

/// Facts gathered from the whole workspace before files are checked.
struct Facts {
    forbidden: HashSet<String>,
    impl_types: HashSet<String>,
}

fn parse(path: &Path) -> anyhow::Result<syn::File> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    syn::parse_file(&text).with_context(|| format!("{}: not valid Rust", path.display()))
}

fn last_ident(path: &syn::Path) -> Option<String> {
    path.segments.last().map(|s| s.ident.to_string())
}

pub fn check(meta: &Metadata, report: &mut Report) -> anyhow::Result<()> {
    let members = meta.workspace_packages();
    let mut parsed: Vec<(String, PathBuf, syn::File)> = Vec::new();
    for pkg in &members {
        let dir = pkg
            .manifest_path
            .parent()
            .map(|p| p.as_std_path().to_path_buf())
            .unwrap_or_default();
        for file in super::files_with_ext(&dir, "rs") {
            parsed.push((pkg.name.to_string(), file.clone(), parse(&file)?));
        }
    }
    report.files_checked = parsed.len();

    let mut facts = Facts {
        forbidden: HashSet::new(),
        impl_types: HashSet::new(),
    };
    for (krate, _, file) in &parsed {
        for item in &file.items {
            match item {
                syn::Item::Trait(t) if krate == PROVISIONER && t.ident == TRAIT => {
                    for ti in &t.items {
                        if let syn::TraitItem::Fn(f) = ti {
                            let name = f.sig.ident.to_string();
                            if is_mutating(&name) {
                                facts.forbidden.insert(name);
                            }
                        }
                    }
                }
                syn::Item::Impl(i) => {
                    if let (Some((_, tr, _)), syn::Type::Path(tp)) = (&i.trait_, &*i.self_ty)
                        && last_ident(tr).as_deref() == Some(TRAIT)
                        && let Some(n) = last_ident(&tp.path)
                    {
                        facts.impl_types.insert(n);
                    }
                }
                _ => {}
            }
        }
    }
    if facts.forbidden.is_empty() {
        facts.forbidden = DEFAULT_FORBIDDEN.iter().map(|s| (*s).to_owned()).collect();
    }

    for (krate, path, file) in &parsed {
        if krate != DISPATCHER {
            let mut f = FailureVisitor {
                path,
                krate,
                found: Vec::new(),
            };
            f.visit_file(file);
            report.violations.extend(f.found);
        }
        if krate == DISPATCHER || krate == PROVISIONER {
            continue;
        }
        let mut v = FileVisitor::new(&facts, path);
        v.collect_file_scope(file);
        v.visit_file(file);
        report.violations.extend(v.found);
    }
    Ok(())
}

pub const FAILURE_RULE: &str = "provisioning-failure-only-in-dispatcher";
/// The tree defines the failing write (`row::transition` with `StatusChange::Failed`); only the
/// dispatcher may use it.
const TREE: &str = "molecule-tree";

/// Rule `provisioning-failure-only-in-dispatcher`: `FailureReason` already makes a reasonless
/// failure impossible to write; this keeps provisioning failures in one crate. Outside the
/// dispatcher nothing calls `mark_failed*`, and outside the dispatcher and the tree
/// nothing builds `StatusChange::Failed`.
struct FailureVisitor<'a> {
    path: &'a Path,
    krate: &'a str,
    found: Vec<Violation>,
}

impl FailureVisitor<'_> {
    fn flag(&mut self, span: proc_macro2::Span, what: String) {
        self.found.push(Violation {
            file: self.path.to_path_buf(),
            line: span.start().line,
            rule: FAILURE_RULE,
            message: format!(
                "{what} marks a workspace failed outside {DISPATCHER}; provisioning failures go through the dispatcher"
            ),
        });
    }
}

impl<'ast> Visit<'ast> for FailureVisitor<'_> {
    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        let name = m.method.to_string();
        if name.starts_with("mark_failed") {
            self.flag(m.method.span(), format!("`.{name}(..)`"));
        }
        visit::visit_expr_method_call(self, m);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let n = segs.len();
        if self.krate != TREE && n >= 2 && segs[n - 2] == "StatusChange" && segs[n - 1] == "Failed" {
            self.flag(p.span(), "`StatusChange::Failed`".into());
        }
        if n >= 2 && segs[n - 1].starts_with("mark_failed") && segs[n - 2] == "Services" {
            self.flag(p.span(), format!("`{}`", segs.join("::")));
        }
        visit::visit_path(self, p);
    }
}

/// Walks one file. Scopes are approximated per function: a name bound to a backend anywhere
/// in a function counts for the whole function.
struct FileVisitor<'a> {
    facts: &'a Facts,
    path: &'a Path,
    /// Names that denote the trait here (`Backend` and `use … Backend as X` aliases).
    trait_names: HashSet<String>,
    /// Type names that are backends here: implementing types, `type X = …Backend…` aliases,
    /// and generic parameters bounded by the trait.
    type_names: HashSet<String>,
    /// Struct fields (by name) whose type mentions a backend.
    fields: HashSet<String>,
    /// Local bindings holding a backend, in the current function stack.
    locals: Vec<HashSet<String>>,
    found: Vec<Violation>,
}

impl<'a> FileVisitor<'a> {
    fn new(facts: &'a Facts, path: &'a Path) -> Self {
        let mut trait_names = HashSet::new();
        trait_names.insert(TRAIT.to_owned());
        Self {
            facts,
            path,
            trait_names,
            type_names: facts.impl_types.clone(),
            fields: HashSet::new(),
            locals: vec![HashSet::new()],
            found: Vec::new(),
        }
    }

    /// Aliases, type aliases and backend-typed fields, anywhere in the file (order-free).
    fn collect_file_scope(&mut self, file: &syn::File) {
        struct Scope<'b, 'a>(&'b mut FileVisitor<'a>);
        impl<'ast> Visit<'ast> for Scope<'_, '_> {
            fn visit_use_rename(&mut self, r: &'ast syn::UseRename) {
                if r.ident == TRAIT {
                    self.0.trait_names.insert(r.rename.to_string());
                }
            }
            fn visit_item_type(&mut self, t: &'ast syn::ItemType) {
                if self.0.type_mentions_backend(&t.ty) {
                    self.0.type_names.insert(t.ident.to_string());
                }
            }
            fn visit_field(&mut self, f: &'ast syn::Field) {
                if let Some(name) = &f.ident
                    && self.0.type_mentions_backend(&f.ty)
                {
                    self.0.fields.insert(name.to_string());
                }
                visit::visit_field(self, f);
            }
        }
        // Aliases first, then the types that use them.
        Scope(self).visit_file(file);
        Scope(self).visit_file(file);
    }

    fn type_mentions_backend(&self, ty: &syn::Type) -> bool {
        struct Finder<'b> {
            names: &'b HashSet<String>,
            traits: &'b HashSet<String>,
            hit: bool,
        }
        impl<'ast> Visit<'ast> for Finder<'_> {
            fn visit_path(&mut self, p: &'ast syn::Path) {
                if let Some(last) = p.segments.last() {
                    let n = last.ident.to_string();
                    if self.names.contains(&n) || self.traits.contains(&n) {
                        self.hit = true;
                    }
                }
                visit::visit_path(self, p);
            }
        }
        let mut f = Finder {
            names: &self.type_names,
            traits: &self.trait_names,
            hit: false,
        };
        f.visit_type(ty);
        f.hit
    }

    fn expr_mentions_backend_type(&self, e: &syn::Expr) -> bool {
        struct Finder<'b> {
            names: &'b HashSet<String>,
            hit: bool,
        }
        impl<'ast> Visit<'ast> for Finder<'_> {
            fn visit_path(&mut self, p: &'ast syn::Path) {
                if p.segments.iter().any(|s| self.names.contains(&s.ident.to_string())) {
                    self.hit = true;
                }
                visit::visit_path(self, p);
            }
        }
        let mut f = Finder {
            names: &self.type_names,
            hit: false,
        };
        f.visit_expr(e);
        f.hit
    }

    fn is_local(&self, name: &str) -> bool {
        self.locals.iter().any(|s| s.contains(name))
    }

    fn bind_pattern(&mut self, pat: &syn::Pat) {
        let mut names = Vec::new();
        collect_idents(pat, &mut names);
        if let Some(top) = self.locals.last_mut() {
            top.extend(names);
        }
    }

    /// Whether evaluating `e` yields a backend (or something holding one).
    fn is_backend_expr(&self, e: &syn::Expr) -> bool {
        match e {
            syn::Expr::Path(p) => {
                p.path.segments.len() == 1 && self.is_local(&p.path.segments[0].ident.to_string())
                    || self.expr_mentions_backend_type(e)
            }
            syn::Expr::Field(f) => match &f.member {
                syn::Member::Named(n) => self.fields.contains(&n.to_string()) || self.is_backend_expr(&f.base),
                syn::Member::Unnamed(_) => self.is_backend_expr(&f.base),
            },
            syn::Expr::MethodCall(m) => self.is_backend_expr(&m.receiver),
            syn::Expr::Paren(p) => self.is_backend_expr(&p.expr),
            syn::Expr::Reference(r) => self.is_backend_expr(&r.expr),
            syn::Expr::Unary(u) => self.is_backend_expr(&u.expr),
            syn::Expr::Try(t) => self.is_backend_expr(&t.expr),
            syn::Expr::Await(a) => self.is_backend_expr(&a.base),
            syn::Expr::Index(i) => self.is_backend_expr(&i.expr),
            syn::Expr::Call(_) | syn::Expr::Struct(_) => self.expr_mentions_backend_type(e),
            _ => false,
        }
    }

    fn report(&mut self, span: proc_macro2::Span, what: String) {
        self.found.push(Violation {
            file: self.path.to_path_buf(),
            line: span.start().line,
            rule: RULE,
            message: format!("{what} calls a provisioner Backend outside {DISPATCHER}; go through the dispatcher"),
        });
    }

    fn with_fn_scope(
        &mut self,
        generics: &syn::Generics,
        inputs: impl Iterator<Item = (syn::Pat, syn::Type)>,
        body: impl FnOnce(&mut Self),
    ) {
        let saved_types = self.type_names.clone();
        // Generic parameters bounded by the trait are backend types inside this function.
        for param in generics.type_params() {
            if param.bounds.iter().any(|b| matches!(b, syn::TypeParamBound::Trait(t) if last_ident(&t.path).is_some_and(|n| self.trait_names.contains(&n)))) {
                self.type_names.insert(param.ident.to_string());
            }
        }
        if let Some(wc) = &generics.where_clause {
            for pred in &wc.predicates {
                if let syn::WherePredicate::Type(pt) = pred {
                    let bounded = pt.bounds.iter().any(|b| matches!(b, syn::TypeParamBound::Trait(t) if last_ident(&t.path).is_some_and(|n| self.trait_names.contains(&n))));
                    if let (true, syn::Type::Path(tp)) = (bounded, &pt.bounded_ty)
                        && let Some(n) = last_ident(&tp.path)
                    {
                        self.type_names.insert(n);
                    }
                }
            }
        }
        self.locals.push(HashSet::new());
        for (pat, ty) in inputs {
            if self.type_mentions_backend(&ty) {
                self.bind_pattern(&pat);
            }
        }
        body(self);
        self.locals.pop();
        self.type_names = saved_types;
    }
}

fn collect_idents(pat: &syn::Pat, out: &mut Vec<String>) {
    match pat {
        syn::Pat::Ident(i) => out.push(i.ident.to_string()),
        syn::Pat::Type(t) => collect_idents(&t.pat, out),
        syn::Pat::Reference(r) => collect_idents(&r.pat, out),
        syn::Pat::Tuple(t) => t.elems.iter().for_each(|p| collect_idents(p, out)),
        syn::Pat::TupleStruct(t) => t.elems.iter().for_each(|p| collect_idents(p, out)),
        _ => {}
    }
}

fn typed_inputs(sig: &syn::Signature) -> Vec<(syn::Pat, syn::Type)> {
    sig.inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(t) => Some(((*t.pat).clone(), (*t.ty).clone())),
            syn::FnArg::Receiver(_) => None,
        })
        .collect()
}

impl<'ast> Visit<'ast> for FileVisitor<'_> {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        let inputs = typed_inputs(&f.sig);
        self.with_fn_scope(&f.sig.generics, inputs.into_iter(), |v| visit::visit_item_fn(v, f));
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        let inputs = typed_inputs(&f.sig);
        self.with_fn_scope(&f.sig.generics, inputs.into_iter(), |v| visit::visit_impl_item_fn(v, f));
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let generics = i.generics.clone();
        self.with_fn_scope(&generics, std::iter::empty(), |v| visit::visit_item_impl(v, i));
    }

    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        for input in &c.inputs {
            if let syn::Pat::Type(pt) = input
                && self.type_mentions_backend(&pt.ty)
            {
                self.bind_pattern(&pt.pat);
            }
        }
        visit::visit_expr_closure(self, c);
    }

    fn visit_local(&mut self, l: &'ast syn::Local) {
        let typed = matches!(&l.pat, syn::Pat::Type(pt) if self.type_mentions_backend(&pt.ty));
        let from_init = l.init.as_ref().is_some_and(|i| self.is_backend_expr(&i.expr));
        if typed || from_init {
            self.bind_pattern(&l.pat);
        }
        visit::visit_local(self, l);
    }

    fn visit_expr_for_loop(&mut self, f: &'ast syn::ExprForLoop) {
        if self.is_backend_expr(&f.expr) {
            self.bind_pattern(&f.pat);
        }
        visit::visit_expr_for_loop(self, f);
    }

    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        let method = m.method.to_string();
        if self.facts.forbidden.contains(&method) && self.is_backend_expr(&m.receiver) {
            self.report(m.method.span(), format!("`.{method}(..)` on a backend"));
        }
        visit::visit_expr_method_call(self, m);
    }

    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        let segs: Vec<String> = p.path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segs.last().is_some_and(|m| self.facts.forbidden.contains(m)) {
            let via_qself = p.qself.as_ref().is_some_and(|q| {
                // `<T as Backend>::m`: the trait is the path segment just before the method.
                q.position > 0 && segs.get(q.position - 1).is_some_and(|t| self.trait_names.contains(t))
                    || matches!(&*q.ty, syn::Type::Path(tp) if last_ident(&tp.path).is_some_and(|n| self.type_names.contains(&n)))
            });
            let owner = segs.len().checked_sub(2).and_then(|i| segs.get(i));
            let via_path = owner.is_some_and(|o| self.trait_names.contains(o) || self.type_names.contains(o));
            if via_qself || via_path {
                self.report(p.span(), format!("`{}`", segs.join("::")));
            }
        }
        visit::visit_expr_path(self, p);
    }

    /// Macro bodies (`assert!`, `tokio::spawn` inside `select!`, …) are parsed as expression
    /// lists when they are one.
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        use syn::parse::Parser;
        let parser = syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        if let Ok(exprs) = parser.parse2(m.tokens.clone()) {
            for e in &exprs {
                self.visit_expr(e);
            }
        }
        visit::visit_macro(self, m);
    }
}
