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
/// xterm.js (MIT, vendored unmodified with its licence in `assets/vendor/xterm/`), served at
/// `/console/assets/xterm.js` to the workspace page only.
pub const XTERM_JS: &str = include_str!("../assets/vendor/xterm/xterm.js");
/// xterm.js's stylesheet, served at `/console/assets/xterm.css`.
pub const XTERM_CSS: &str = include_str!("../assets/vendor/xterm/xterm.css");

/// One workspace as the fleet page shows it.
#[derive(Debug, Clone)]
pub struct FleetRow {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub runtime: String,
    pub parent_id: Option<Uuid>,
    pub last_sample_error: Option<String>,
    pub model: Option<String>,
    /// The backend that ran its workload (`docker`, `local`, `ec2`), if any did.
    pub backend: Option<String>,
    /// Its last heartbeat, in Unix seconds (the page's script shows the age).
    pub heartbeat_at: Option<i64>,
    pub active_tasks: i32,
    /// Live A2A queue items.
    pub queue_depth: i64,
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
    /// Only the roots (the tree collapsed).
    pub roots: bool,
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
            && (!self.roots || row.parent_id.is_none_or(|p| !rows.iter().any(|r| r.id == p)))
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

/// Who is signed in, for every page after sign-in: the header names them, the sign-out form
/// and the script's changes carry the CSRF token.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub actor: &'a str,
    pub csrf: &'a str,
}

fn layout(title: &str, signed: Option<Signed<'_>>, terminal: bool, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = signed {
                    meta name="csrf-token" content=(s.csrf);
                }
                title { (title) " · Molecule console" }
                @if terminal {
                    link rel="stylesheet" href="/console/assets/xterm.css";
                    script src="/console/assets/xterm.js" defer {}
                }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                @if let Some(s) = signed {
                    header {
                        nav aria-label="Console" {
                            a href="/console" { "Fleet" }
                            a href="/console/delegations" { "Delegations" }
                            a href="/console/system" { "System" }
                        }
                        span #live-state role="status" { "" }
                        span.who { "Signed in as " (s.actor) }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                (body)
                @if signed.is_some() {
                    dialog #confirm aria-labelledby="confirm-text" {
                        p #confirm-text {}
                        div.actions {
                            button type="button" #confirm-yes { "Confirm" }
                            button type="button" #confirm-no autofocus { "Cancel" }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// The sign-in page, with why the last attempt failed.
pub fn sign_in(error: Option<&str>) -> String {
    layout(
        "Sign in",
        None,
        false,
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
    let mut children: std::collections::HashMap<Uuid, Vec<&FleetRow>> = std::collections::HashMap::new();
    for r in rows {
        if let Some(p) = r.parent_id.filter(|p| known.contains(p)) {
            children.entry(p).or_default().push(r);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut stack: Vec<(usize, &FleetRow)> = rows
        .iter()
        .filter(|r| r.parent_id.is_none_or(|p| !known.contains(&p)))
        .rev()
        .map(|r| (0, r))
        .collect();
    while let Some((depth, row)) = stack.pop() {
        out.push((depth, row));
        if let Some(kids) = children.get(&row.id) {
            stack.extend(kids.iter().rev().map(|c| (depth + 1, *c)));
        }
    }
    out
}

/// How many workspaces are below each one (the bulk actions' confirmations say so).
fn descendants(rows: &[FleetRow]) -> std::collections::HashMap<Uuid, usize> {
    let parent: std::collections::HashMap<Uuid, Uuid> =
        rows.iter().filter_map(|r| Some((r.id, r.parent_id?))).collect();
    let mut below: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
    for r in rows {
        let mut at = r.id;
        let mut hops = 0;
        // The tree is acyclic; the bound only guards against a corrupt row.
        while let Some(&p) = parent.get(&at) {
            *below.entry(p).or_default() += 1;
            at = p;
            hops += 1;
            if hops > rows.len() {
                break;
            }
        }
    }
    below
}

/// The part of the fleet page that changes with events: the pending approvals (each with
/// approve and deny), the count and the table. The page's script fetches it again
/// (`/console/fleet/live`) when an event says something changed.
pub fn fleet_live(rows: &[FleetRow], pending: &[PendingRow], filter: &Filter, csrf: &str) -> String {
    let shown: Vec<(usize, &FleetRow)> = tree_order(rows)
        .into_iter()
        .filter(|(_, r)| filter.keeps(r, rows))
        .map(|(depth, r)| (if filter.is_empty() && !filter.roots { depth } else { 0 }, r))
        .collect();
    let descendants = descendants(rows);
    html! {
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
        p.count { (shown.len()) " of " (rows.len()) " workspaces" }
        table #fleet {
            thead {
                tr {
                    th { span.visually-hidden { "Select" } }
                    th { "Name" } th { "Status" } th { "Runtime" } th { "Model" } th { "Backend" }
                    th { "Heartbeat" } th { "Tasks" } th { "Queue" } th { "Reason" }
                }
            }
            tbody {
                @for (depth, r) in shown {
                    tr data-id=(r.id) data-status=(r.status) data-parent=[r.parent_id] data-name=(r.name)
                        data-descendants=(descendants.get(&r.id).copied().unwrap_or(0)) {
                        td { input.pick type="checkbox" value=(r.id) aria-label={ "Select " (r.name) }; }
                        td class={ "depth-" (depth.min(8)) } {
                            a href={ "/console/workspaces/" (r.id) } { (r.name) }
                            @if let Some(n) = descendants.get(&r.id).filter(|_| filter.roots) { " (" (n) " below)" }
                        }
                        td.status { (r.status) }
                        td { (r.runtime) }
                        td { (r.model.as_deref().unwrap_or("")) }
                        td { (r.backend.as_deref().unwrap_or("")) }
                        td.age data-at=[r.heartbeat_at] { @if r.heartbeat_at.is_none() { "never" } }
                        td { (r.active_tasks) }
                        td { (r.queue_depth) }
                        td.reason { (r.last_sample_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
    .into_string()
}

/// The fleet: the filter, the bulk actions (each confirmed in a dialog that says what happens
/// to the children), and the live part ([`fleet_live`]).
pub fn fleet(
    signed: Signed<'_>,
    rows: &[FleetRow],
    pending: &[PendingRow],
    filter: &Filter,
    statuses: &[&str],
) -> String {
    layout(
        "Fleet",
        Some(signed),
        false,
        html! {
            main #fleet-page {
                h1 { "Fleet" }
                form.filter #filter method="get" action="/console" role="search" {
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
                    label { input type="checkbox" name="roots" value="1" checked[filter.roots]; " roots only" }
                    button type="submit" { "Filter" }
                }
                div.bulk role="group" aria-label="Bulk actions" {
                    span #picked { "0 selected" }
                    @for (action, label) in [("restart", "Restart"), ("pause", "Pause"), ("resume", "Resume"), ("delete", "Delete")] {
                        button type="button" data-bulk=(action) disabled { (label) }
                    }
                    span #bulk-result role="status" {}
                }
                div #live {
                    (maud::PreEscaped(fleet_live(rows, pending, filter, signed.csrf)))
                }
            }
        },
    )
}

/// Delegations across the fleet: by status, with the stats and one delegation's timeline;
/// the script reads them through the API.
pub fn delegations(signed: Signed<'_>) -> String {
    layout(
        "Delegations",
        Some(signed),
        false,
        html! {
            main #delegations-page {
                h1 { "Delegations" }
                section #delegation-stats aria-label="Stats" {
                    dl.facts #stats {}
                }
                form.filter #delegation-filter role="search" {
                    label for="d-status" { "Status" }
                    select #d-status name="status" {
                        @for (v, label) in [("in_flight", "in flight"), ("stuck", "stuck"), ("failed", "failed"), ("completed", "completed")] {
                            option value=(v) { (label) }
                        }
                    }
                    label for="d-text" { "Caller, callee or task" }
                    input #d-text name="q" type="search";
                    button type="submit" { "Show" }
                }
                p #delegation-count role="status" {}
                table #delegation-list {
                    thead { tr { th { "Delegation" } th { "Caller" } th { "Callee" } th { "Status" } th { "Task" } th { "Last heartbeat" } th { "Updated" } } }
                    tbody {}
                }
                section #delegation-timeline aria-label="Timeline" {
                    h2 #timeline-title { "Timeline" }
                    ol #timeline-list {}
                }
            }
        },
    )
}

/// The platform itself: the background loops, the memory plugin, leak suspects, recent
/// failures, and the audit trail filtered by actor, event type and workspace.
pub fn system(signed: Signed<'_>, event_types: &[&str]) -> String {
    layout(
        "System",
        Some(signed),
        false,
        html! {
            main #system-page {
                h1 { "System" }
                section aria-labelledby="loops-h" {
                    h2 #loops-h { "Background loops" }
                    p #listener {}
                    table #loop-list {
                        thead { tr { th { "Loop" } th { "Last tick" } th { "Ticks" } th { "Failures" } th { "Last error" } } }
                        tbody {}
                    }
                }
                section aria-labelledby="plugin-h" {
                    h2 #plugin-h { "Memory plugin" }
                    p #plugin {}
                }
                section aria-labelledby="leaks-h" {
                    h2 #leaks-h { "Leak suspects" }
                    ol #leak-list {}
                }
                section aria-labelledby="errors-h" {
                    h2 #errors-h { "Recent failures" }
                    ol #error-list {}
                }
                section aria-labelledby="audit-h" {
                    h2 #audit-h { "Audit" }
                    form.filter #audit-form role="search" {
                        label for="a-actor" { "Actor" }
                        input #a-actor name="actor" placeholder="admin, console:admin, workspace:<id>, loop:<name>";
                        label for="a-event" { "Action" }
                        select #a-event name="event" {
                            option value="" { "any" }
                            @for t in event_types { option value=(t) { (t) } }
                        }
                        label for="a-target" { "Workspace id" }
                        input #a-target name="workspace_id";
                        button type="submit" { "Filter" }
                    }
                    table #audit-list {
                        thead { tr { th { "When" } th { "Actor" } th { "Action" } th { "Target" } th { "Detail" } } }
                        tbody {}
                    }
                }
            }
        },
    )
}

/// One event of a workspace's timeline.
#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub at: String,
    pub event: String,
    /// A short summary of the payload (never a secret: events carry none).
    pub detail: String,
}

/// What the workspace page shows on arrival; its lists (chat, activity, delegations, queue,
/// schedules, channels, tokens, secrets' names, memory) are read by the script through the
/// API, so they stay current without a reload.
#[derive(Debug, Clone)]
pub struct WorkspaceView {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub runtime: String,
    pub model: Option<String>,
    pub backend: Option<String>,
    pub parent: Option<(Uuid, String)>,
    pub last_sample_error: Option<String>,
    pub timeline: Vec<TimelineRow>,
}

/// The workspace drawer, as a page: status and reason, the provisioning timeline, and one
/// section per area, each driven by the script over the API.
pub fn workspace(signed: Signed<'_>, w: &WorkspaceView) -> String {
    let section = |id: &str, title: &str, body: Markup| {
        html! {
            section id=(id) aria-labelledby={ (id) "-h" } {
                h2 id={ (id) "-h" } { (title) }
                (body)
            }
        }
    };
    layout(
        &w.name,
        Some(signed),
        true,
        html! {
            main #workspace data-id=(w.id) data-status=(w.status) {
                h1 { (w.name) }
                nav.sections aria-label="Sections" {
                    @for (id, label) in [("overview", "Overview"), ("chat", "Chat"), ("activity", "Activity"), ("schedules", "Schedules"), ("memory", "Memory"), ("terminal", "Terminal"), ("channels", "Channels"), ("tokens", "Tokens"), ("secrets", "Secrets"), ("files", "Files")] {
                        a href={ "#" (id) } { (label) }
                    }
                }
                (section("overview", "Overview", html! {
                    dl.facts {
                        dt { "Status" } dd #ws-status { (w.status) }
                        dt { "Runtime" } dd { (w.runtime) }
                        dt { "Model" } dd { (w.model.as_deref().unwrap_or("")) }
                        dt { "Backend" } dd { (w.backend.as_deref().unwrap_or("")) }
                        @if let Some((pid, pname)) = &w.parent {
                            dt { "Parent" } dd { a href={ "/console/workspaces/" (pid) } { (pname) } }
                        }
                    }
                    @if let Some(reason) = &w.last_sample_error {
                        p.error #reason role="alert" { strong { "Reason: " } (reason) }
                    }
                    div.lifecycle role="group" aria-label="Lifecycle" {
                        @for (action, label) in [("restart", "Restart"), ("pause", "Pause"), ("resume", "Resume"), ("hibernate", "Hibernate")] {
                            button type="button" data-action=(action) { (label) }
                        }
                        span #action-result role="status" {}
                    }
                    h3 { "Timeline" }
                    ol.timeline {
                        @for t in &w.timeline {
                            li { time { (t.at) } " " strong { (t.event) } @if !t.detail.is_empty() { " — " (t.detail) } }
                        }
                    }
                }))
                (section("chat", "Chat", html! {
                    ol #chat-log aria-live="polite" {}
                    form #chat-form {
                        label for="chat-text" { "Message" }
                        input #chat-text name="text" required autocomplete="off";
                        button type="submit" { "Send" }
                    }
                }))
                (section("activity", "Activity, delegations and queue", html! {
                    h3 { "Activity" } ol #activity-list {}
                    h3 { "Delegations" } ol #delegation-list {}
                    h3 { "A2A queue" } ol #queue-list {}
                }))
                (section("schedules", "Schedules", html! {
                    table #schedule-list { thead { tr { th { "Name" } th { "Cron" } th { "Enabled" } th { "Last run" } th { "" } } } tbody {} }
                    form #schedule-form {
                        label for="s-name" { "Name" } input #s-name name="name" required;
                        label for="s-cron" { "Cron" } input #s-cron name="cron_expr" required placeholder="*/5 * * * *";
                        label for="s-tz" { "Timezone" } input #s-tz name="timezone" value="UTC";
                        label for="s-prompt" { "Prompt" } input #s-prompt name="prompt" required;
                        button type="submit" { "Add schedule" }
                    }
                    ol #schedule-history {}
                }))
                (section("memory", "Memory", html! {
                    p #namespaces {}
                    form #memory-form role="search" {
                        label for="m-q" { "Search" } input #m-q name="q" type="search";
                        button type="submit" { "Search" }
                    }
                    ol #memory-list {}
                }))
                (section("terminal", "Terminal", html! {
                    button type="button" #terminal-open { "Open terminal" }
                    span #terminal-state role="status" {}
                    div #terminal-screen {}
                }))
                (section("channels", "Channels", html! {
                    ol #channel-list {}
                    form #channel-form {
                        label for="c-type" { "Adapter" } select #c-type name="channel_type" {}
                        div #c-fields {}
                        button type="submit" { "Add channel" }
                    }
                }))
                (section("tokens", "Tokens", html! {
                    ol #token-list {}
                    button type="button" #token-rotate { "Rotate" }
                }))
                (section("files", "Model, connection and files", html! {
                    form #model-form {
                        label for="model-input" { "Model" }
                        input #model-input name="model" value=(w.model.as_deref().unwrap_or("")) placeholder="anthropic:claude-sonnet-4";
                        button type="submit" { "Set model" }
                        span #model-result role="status" {}
                    }
                    @if w.runtime == "external" {
                        h3 { "External connection" }
                        pre #connection {}
                        button type="button" #connection-rotate { "Rotate credentials" }
                    }
                    h3 { "Files in /configs" }
                    ol #file-list {}
                }))
                (section("secrets", "Secrets (names only)", html! {
                    ol #secret-list {}
                    form #secret-form {
                        label for="sec-key" { "Name" } input #sec-key name="key" required;
                        label for="sec-value" { "Value" } input #sec-value name="value" type="password" required autocomplete="off";
                        button type="submit" { "Set" }
                    }
                }))
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
            model: None,
            backend: None,
            heartbeat_at: None,
            active_tasks: 0,
            queue_depth: 0,
        }
    }

    const SIGNED: Signed<'static> = Signed {
        actor: "admin",
        csrf: "tok",
    };

    #[test]
    fn children_follow_their_parent_and_values_are_escaped() {
        let root = row("root", None);
        let child = row("<script>alert(1)</script>", Some(root.id));
        let other = row("other", None);
        let rows = [child.clone(), other.clone(), root.clone()];
        let order: Vec<&str> = tree_order(&rows).into_iter().map(|(_, r)| r.name.as_str()).collect();
        assert_eq!(order, ["other", "root", "<script>alert(1)</script>"]);
        let page = fleet(
            SIGNED,
            &[root.clone(), child.clone()],
            &[],
            &Filter::default(),
            &["online"],
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
            let page = fleet_live(&rows, &[], &f, "tok");
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
        assert_eq!(
            only(Filter {
                roots: true,
                ..Filter::default()
            }),
            ["root", "other"]
        );
    }
}
