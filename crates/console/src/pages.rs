//! `pages`: the console's HTML, rendered on the server.
//!
//! Owns: the layout (the stylesheet and script by URL, never inline, so the CSP can forbid
//! inline code), the sign-in page, the fleet page (the workspace tree: parents before their
//! children, status, runtime, the failure reason), and the two assets built into the binary.
//! Every value is escaped by maud; nothing secret is ever given to a page.
//!
//! Must not know: HTTP, sessions' storage, where the rows come from.

use maud::{DOCTYPE, Markup, html};
use uuid::Uuid;

/// The stylesheet, served at `/console/assets/console.css`.
pub const CSS: &str = include_str!("../assets/console.css");
/// The script, served at `/console/assets/console.js`.
pub const JS: &str = include_str!("../assets/console.js");

/// One workspace as the fleet page shows it.
#[derive(Debug, Clone)]
pub struct FleetRow {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub runtime: String,
    pub parent_id: Option<Uuid>,
    pub last_sample_error: Option<String>,
}

/// The fleet page's filter (its query string); empty fields filter nothing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: String,
    pub runtime: String,
    /// Part of the name, any case.
    pub text: String,
    /// Only workspaces with a failed child.
    pub failed_children: bool,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.status.is_empty() && self.runtime.is_empty() && self.text.is_empty() && !self.failed_children
    }

    fn keeps(&self, row: &FleetRow, rows: &[FleetRow]) -> bool {
        (self.status.is_empty() || row.status == self.status)
            && (self.runtime.is_empty() || row.runtime == self.runtime)
            && (self.text.is_empty() || row.name.to_lowercase().contains(&self.text.to_lowercase()))
            && (!self.failed_children || rows.iter().any(|c| c.parent_id == Some(row.id) && c.status == "failed"))
    }
}

/// A pending approval as the fleet page's banner shows it.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub action: String,
    pub reason: String,
}

fn layout(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Molecule console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body { (body) }
        }
    }
    .into_string()
}

/// The sign-in page, with why the last attempt failed.
pub fn sign_in(error: Option<&str>) -> String {
    layout(
        "Sign in",
        html! {
            main.sign-in {
                h1 { "Molecule console" }
                @if let Some(e) = error {
                    p.error role="alert" { (e) }
                }
                form method="post" action="/console/sign-in" {
                    label for="token" { "Admin token" }
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The rows in tree order: each parent followed by its children, with their depth.
fn tree_order(rows: &[FleetRow]) -> Vec<(usize, &FleetRow)> {
    let known: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut out = Vec::with_capacity(rows.len());
    let mut stack: Vec<(usize, &FleetRow)> = rows
        .iter()
        .filter(|r| r.parent_id.is_none_or(|p| !known.contains(&p)))
        .rev()
        .map(|r| (0, r))
        .collect();
    while let Some((depth, row)) = stack.pop() {
        out.push((depth, row));
        stack.extend(
            rows.iter()
                .filter(|c| c.parent_id == Some(row.id))
                .rev()
                .map(|c| (depth + 1, c)),
        );
    }
    out
}

/// The fleet: pending approvals (each with approve and deny), every workspace in tree order,
/// and the sign-out form; every form carries the session's CSRF token.
pub fn fleet(
    actor: &str,
    rows: &[FleetRow],
    pending: &[PendingRow],
    filter: &Filter,
    statuses: &[&str],
    csrf: &str,
) -> String {
    let shown: Vec<(usize, &FleetRow)> = tree_order(rows)
        .into_iter()
        .filter(|(_, r)| filter.keeps(r, rows))
        .map(|(depth, r)| (if filter.is_empty() { depth } else { 0 }, r))
        .collect();
    layout(
        "Fleet",
        html! {
            header {
                h1 { "Fleet" }
                span.who { "Signed in as " (actor) }
                form method="post" action="/console/sign-out" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Sign out" }
                }
            }
            main {
                @if !pending.is_empty() {
                    section.approvals aria-label="Pending approvals" {
                        h2 { (pending.len()) " pending approval" @if pending.len() > 1 { "s" } }
                        ul {
                            @for p in pending {
                                li data-approval=(p.id) {
                                    strong { (p.workspace_name) } " asks to " em { (p.action) }
                                    @if !p.reason.is_empty() { ": " (p.reason) }
                                    @for (decision, label) in [("approved", "Approve"), ("denied", "Deny")] {
                                        form.decide method="post" action={ "/console/approvals/" (p.workspace_id) "/" (p.id) } {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="decision" value=(decision);
                                            button type="submit" { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form.filter method="get" action="/console" role="search" {
                    label for="f-status" { "Status" }
                    select #f-status name="status" {
                        option value="" { "any" }
                        @for s in statuses {
                            option value=(s) selected[filter.status == *s] { (s) }
                        }
                    }
                    label for="f-runtime" { "Runtime" }
                    input #f-runtime name="runtime" value=(filter.runtime);
                    label for="f-text" { "Name" }
                    input #f-text name="q" type="search" value=(filter.text);
                    label { input type="checkbox" name="failed_children" value="1" checked[filter.failed_children]; " has failed children" }
                    button type="submit" { "Filter" }
                }
                p.count { (shown.len()) " of " (rows.len()) " workspaces" }
                table #fleet {
                    thead { tr { th { "Name" } th { "Status" } th { "Runtime" } th { "Reason" } } }
                    tbody {
                        @for (depth, r) in shown {
                            tr data-id=(r.id) data-status=(r.status) {
                                td class={ "depth-" (depth.min(8)) } { (r.name) }
                                td.status { (r.status) }
                                td { (r.runtime) }
                                td.reason { (r.last_sample_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, parent: Option<Uuid>) -> FleetRow {
        FleetRow {
            id: Uuid::new_v4(),
            name: name.into(),
            status: "online".into(),
            runtime: "external".into(),
            parent_id: parent,
            last_sample_error: None,
        }
    }

    #[test]
    fn children_follow_their_parent_and_values_are_escaped() {
        let root = row("root", None);
        let child = row("<script>alert(1)</script>", Some(root.id));
        let other = row("other", None);
        let rows = [child.clone(), other.clone(), root.clone()];
        let order: Vec<&str> = tree_order(&rows).into_iter().map(|(_, r)| r.name.as_str()).collect();
        assert_eq!(order, ["other", "root", "<script>alert(1)</script>"]);
        let page = fleet(
            "admin",
            &[root.clone(), child.clone()],
            &[],
            &Filter::default(),
            &["online"],
            "tok",
        );
        assert!(!page.contains("<script>alert"), "names are escaped");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<style"), "no inline style");
        assert_eq!(page.matches("<script").count(), 1, "one script element, by URL");
        let failed = FleetRow {
            status: "failed".into(),
            ..row("broken", Some(root.id))
        };
        let rows = [root, child, failed, other];
        let only = |f: Filter| {
            let page = fleet("admin", &rows, &[], &f, &[], "tok");
            ["root", "broken", "other"]
                .into_iter()
                .filter(|n| page.contains(&format!(">{n}<")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            only(Filter {
                status: "failed".into(),
                ..Filter::default()
            }),
            ["broken"]
        );
        assert_eq!(
            only(Filter {
                failed_children: true,
                ..Filter::default()
            }),
            ["root"]
        );
        assert_eq!(
            only(Filter {
                text: "OTH".into(),
                ..Filter::default()
            }),
            ["other"]
        );
    }
}
