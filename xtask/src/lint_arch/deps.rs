//! Dependency-direction rules, read from `cargo metadata` (normal dependencies only: dev and
//! build dependencies do not ship).

use cargo_metadata::{DependencyKind, Metadata, Package, TargetKind};

use super::{Report, Violation, find_line};

/// The crates that may use an HTTP server framework: workspace-server's HTTP glue, and the
/// memory plugin's own routes (a separate binary that must not link workspace-server's HTTP).
pub const HTTP_FRAMEWORK_CRATES: &[&str] = &["molecule-http", "molecule-memory-plugin", "molecule-serve"];
const HTTP_FRAMEWORKS: &[&str] = &["actix-web", "actix-http", "actix-server"];
/// The one crate that may talk to Docker and AWS.
pub const PROVIDER_SDK_CRATE: &str = "molecule-provisioner";
/// The HTTP crate of workspace-server: only binaries may depend on it.
pub const HTTP_CRATE: &str = "molecule-http";
/// The feature-unification crate `cargo hakari` writes. Its dependencies are not code any
/// member can name (Rust exposes only direct dependencies), so the direction rules look
/// through it; a member that names it in code is flagged instead.
pub const WORKSPACE_HACK: &str = "molecule-workspace-hack";

fn is_provider_sdk(name: &str) -> bool {
    name == "bollard" || name == "aws-config" || name.starts_with("aws-sdk-") || name.starts_with("aws-smithy-")
}

/// `(crate, dependencies it must not have, why)`: the brief's "must not know" column.
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "molecule-domain",
        &["molecule-*", "tokio", "diesel", "diesel-async", "reqwest", "actix-web"],
        "the domain is plain data: no I/O, async, SQL or HTTP",
    ),
    (
        "molecule-ledger",
        &[
            "molecule-http",
            "molecule-provisioner",
            "molecule-dispatcher",
            "molecule-namespace",
        ],
        "the ledger knows nothing of HTTP, workspaces or provisioning",
    ),
    (
        "molecule-provisioner",
        &[
            "molecule-db",
            "molecule-http",
            "molecule-dispatcher",
            "diesel",
            "diesel-async",
        ],
        "backends know nothing of the database, HTTP or who calls them",
    ),
    (
        "molecule-dispatcher",
        &["molecule-http", "molecule-db", "diesel", "diesel-async"],
        "the dispatcher knows nothing of HTTP or SQL: it records through named service operations",
    ),
    (
        "molecule-namespace",
        &[
            "molecule-http",
            "molecule-memory-plugin",
            "molecule-db",
            "diesel",
            "diesel-async",
        ],
        "the namespace rules know nothing of HTTP, the plugin's storage or how a lineage is read",
    ),
    (
        "molecule-memory-contract",
        &["molecule-http", "molecule-db", "molecule-service"],
        "the contract knows nothing of workspace-server internals",
    ),
    (
        "molecule-service",
        &[
            "molecule-http",
            "utoipa",
            "utoipa-actix-web",
            "molecule-provisioner",
            "molecule-dispatcher",
        ],
        "the composition knows nothing of actix, OpenAPI or backends (wire types live in molecule-api)",
    ),
    (
        "molecule-tree",
        &[
            "molecule-vault",
            "molecule-messaging",
            "molecule-memory",
            "molecule-service",
            "molecule-http",
            "molecule-provisioner",
            "molecule-dispatcher",
            "utoipa",
        ],
        "the tree is the core: secrets, messaging and memory compose it, never the reverse; backends are behind WorkloadHooks",
    ),
    (
        "molecule-vault",
        &[
            "molecule-messaging",
            "molecule-memory",
            "molecule-service",
            "molecule-http",
            "molecule-provisioner",
            "utoipa",
        ],
        "secrets at rest know nothing of messaging, memory, HTTP or backends",
    ),
    (
        "molecule-messaging",
        &[
            "molecule-memory",
            "molecule-service",
            "molecule-http",
            "molecule-provisioner",
            "utoipa",
        ],
        "agent traffic knows nothing of memory, HTTP or backends",
    ),
    (
        "molecule-memory",
        &[
            "molecule-vault",
            "molecule-messaging",
            "molecule-service",
            "molecule-http",
            "molecule-provisioner",
            "utoipa",
        ],
        "memory knows nothing of secrets at rest, messaging, HTTP or backends",
    ),
    (
        "molecule-schedules",
        &[
            "molecule-messaging",
            "molecule-memory",
            "molecule-vault",
            "molecule-service",
            "molecule-http",
            "molecule-provisioner",
            "molecule-dispatcher",
            "utoipa",
        ],
        "schedules own their table and their cron rules; the loop that fires them composes messaging",
    ),
    (
        "molecule-api",
        &[
            "molecule-db",
            "molecule-service",
            "molecule-http",
            "diesel",
            "diesel-async",
            "tokio",
            "reqwest",
            "actix-web",
        ],
        "wire types are plain data: no storage, I/O or HTTP framework",
    ),
    (
        "molecule-secrets",
        &[
            "molecule-http",
            "molecule-provisioner",
            "molecule-dispatcher",
            "molecule-db",
            "diesel",
            "diesel-async",
            "actix-web",
        ],
        "sealing knows nothing of storage, HTTP or backends",
    ),
    (
        "molecule-a2a",
        &[
            "molecule-http",
            "molecule-provisioner",
            "molecule-dispatcher",
            "actix-web",
        ],
        "messaging rules know nothing of actix or backends (wakes go through WorkloadHooks)",
    ),
    (
        "molecule-mcp",
        &[
            "molecule-db",
            "molecule-provisioner",
            "molecule-dispatcher",
            "diesel",
            "diesel-async",
        ],
        "MCP tools know no storage or backends: they call clients and use-cases",
    ),
    (
        "molecule-templates",
        &[
            "molecule-http",
            "molecule-provisioner",
            "molecule-dispatcher",
            "actix-web",
        ],
        "templates know nothing of HTTP or how files reach a workload",
    ),
];

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn is_library(p: &Package) -> bool {
    p.targets.iter().any(|t| {
        t.kind
            .iter()
            .any(|k| matches!(k, TargetKind::Lib | TargetKind::RLib | TargetKind::ProcMacro))
    })
}

fn is_binary_only(p: &Package) -> bool {
    !is_library(p) && p.targets.iter().any(|t| t.kind.contains(&TargetKind::Bin))
}

pub fn check(meta: &Metadata, report: &mut Report) {
    let members = meta.workspace_packages();
    report.crates_checked = members.len();
    for pkg in &members {
        if pkg.name.as_str() == WORKSPACE_HACK {
            continue;
        }
        names_the_hack(pkg, report);
        let manifest_path = pkg.manifest_path.clone().into_std_path_buf();
        let manifest = std::fs::read_to_string(&manifest_path).unwrap_or_default();
        let mut flag = |dep: &str, rule: &'static str, message: String| {
            let line = find_line(&manifest, |l| {
                let l = l.trim_start();
                l.starts_with(dep) && l[dep.len()..].trim_start().starts_with(['=', '.'])
            });
            report.violations.push(Violation {
                file: manifest_path.clone(),
                line,
                rule,
                message,
            });
        };
        let library = is_library(pkg);
        for dep in pkg.dependencies.iter().filter(|d| d.kind == DependencyKind::Normal) {
            let name = dep.name.as_str();
            if name == WORKSPACE_HACK {
                continue;
            }
            let own = pkg.name.as_str();
            if HTTP_FRAMEWORKS.contains(&name) && !HTTP_FRAMEWORK_CRATES.contains(&own) {
                flag(
                    name,
                    "http-framework-only-in-http-crates",
                    format!(
                        "{own} depends on {name}; only {} may use an HTTP framework (move the handler there)",
                        HTTP_FRAMEWORK_CRATES.join(" and ")
                    ),
                );
            }
            if is_provider_sdk(name) && own != PROVIDER_SDK_CRATE {
                flag(
                    name,
                    "provider-sdk-only-in-provisioner",
                    format!("{own} depends on {name}; only {PROVIDER_SDK_CRATE} may talk to Docker or AWS"),
                );
            }
            if library && name == HTTP_CRATE && own != HTTP_CRATE {
                flag(
                    name,
                    "library-depends-on-http",
                    format!("library {own} depends on {HTTP_CRATE}; only binaries compose the HTTP layer"),
                );
            }
            if library
                && let Some(target) = members.iter().find(|m| m.name.as_str() == name)
                && is_binary_only(target)
            {
                flag(
                    name,
                    "library-depends-on-binary",
                    format!("library {own} depends on binary crate {name}; move the shared code into a library crate"),
                );
            }
            for (owner, banned, why) in FORBIDDEN {
                if *owner == own && banned.iter().any(|b| matches(b, name)) {
                    flag(name, "dependency-direction", format!("{own} depends on {name}: {why}"));
                }
            }
        }
    }
}

/// `workspace-hack-named`: a member's code must not `use` the hack; it exists only to unify
/// features, and code leaning on it would break when `cargo hakari` drops a line.
fn names_the_hack(pkg: &Package, report: &mut Report) {
    let ident = WORKSPACE_HACK.replace('-', "_");
    let Some(dir) = pkg.manifest_path.parent() else {
        return;
    };
    for file in super::files_with_ext(dir.as_std_path(), "rs") {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if text.contains(&ident) {
            let line = find_line(&text, |l| l.contains(&ident));
            report.violations.push(Violation {
                file,
                line,
                rule: "workspace-hack-named",
                message: format!(
                    "{} names {ident} in code; the hack only unifies features: depend on the real crate instead",
                    pkg.name
                ),
            });
        }
    }
}
