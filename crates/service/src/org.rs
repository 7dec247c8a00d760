//! Org import: the original's YAML tree of workspaces (`workspaces:` with nested `children:`),
//! created depth-first and provisioned through the hooks (so the dispatcher's concurrency gate
//! applies). Idempotent: a node whose name already exists, live, under the same parent is
//! skipped (or, with `replace_if_exists`, removed and created again). `required_env` (the org's
//! and every node's) is checked against the global secrets and the org's `.env` first (412
//! unless `force`); the `.env`'s variables (then a node's `files_dir/.env` on top) become each
//! created node's workspace secrets. `!include <file>` splices another YAML file of the org's
//! directory in place. A node's `template`, `files_dir` and `system_prompt` seed its
//! `/configs`; `spawning: false` leaves the node and its subtree out. Keys this platform does
//! not implement (plugins, prompts, …) are reported per node as `ignored`, never
//! dropped silently. A node's `schedules:` are checked with the rest and upserted as the
//! template's own (`molecule-schedules`' `template`); its `channels:` are upserted by type
//! through `molecule-channels` (values expanded from the org's `.env` files, secrets sealed),
//! and each one left out is reported with why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use molecule_secrets::SecretString;

use molecule_api::org::{ImportRequest, Imported, NodeResult, NodeStatus, TemplateSummary};
use serde::Deserialize;
use uuid::Uuid;

use crate::Services;
use molecule_api::memories::InitialMemory;
use molecule_api::workspaces::CreateWorkspace;
use molecule_tree::error::{Result, ServiceError};
use molecule_tree::validate;

/// An org template file (`org.yaml`).
#[derive(Debug, Clone, Deserialize)]
pub struct OrgTemplate {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Keys this platform does not implement: reported as ignored.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub workspaces: Vec<Node>,
    /// Org-wide memories: GLOBAL on the first root workspace, when it is created.
    #[serde(default)]
    pub global_memories: Vec<GlobalMemory>,
    /// Variables the org needs (a name, or `{any_of: [A, B]}`): checked against the global
    /// secrets (and the org's `.env`) before anything is created.
    #[serde(default)]
    pub required_env: Vec<EnvRequirement>,
}

/// One `required_env` entry: the same type workspace templates use.
pub use molecule_templates::EnvRequirement;

/// One `global_memories` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalMemory {
    pub content: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Defaults {
    pub runtime: Option<String>,
    pub tier: Option<i32>,
    pub model: Option<String>,
    /// For every node that has none of its own.
    #[serde(default)]
    pub initial_memories: Option<Vec<InitialMemory>>,
    /// Keys this platform does not implement: reported as ignored.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml_ng::Value>,
}

/// One workspace of the tree.
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    pub name: Option<String>,
    pub role: Option<String>,
    pub runtime: Option<String>,
    pub tier: Option<i32>,
    pub model: Option<String>,
    pub external: Option<bool>,
    pub url: Option<String>,
    #[serde(default)]
    pub initial_memories: Option<Vec<InitialMemory>>,
    /// As the org's `required_env`, for this node.
    #[serde(default)]
    pub required_env: Vec<EnvRequirement>,
    /// A workspace template under `CONFIGS_DIR` (its required_env is checked too).
    pub template: Option<String>,
    /// A directory of the org (relative to `org.yaml`) whose files seed the node's
    /// `/configs`, over `template`; its `.env` adds workspace secrets.
    pub files_dir: Option<String>,
    /// Written to `/configs/system-prompt.md`.
    pub system_prompt: Option<String>,
    pub max_concurrent_tasks: Option<i32>,
    /// `false` leaves this node and its subtree out.
    pub spawning: Option<bool>,
    /// Cron schedules, upserted by name as the template's own (`source = template`): a
    /// re-import updates them and never touches a schedule made through the API.
    #[serde(default)]
    pub schedules: Vec<molecule_schedules::template::TemplateSchedule>,
    /// Chat channels, upserted by type (`molecule-channels`), their values expanded from the
    /// org's `.env` files (`${VAR}`, `$VAR`) and their secrets sealed.
    #[serde(default)]
    pub channels: Vec<TemplateChannel>,
    #[serde(default)]
    pub children: Vec<Node>,
    /// Keys this platform does not implement: reported as ignored.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml_ng::Value>,
}

/// One `channels:` entry of a node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateChannel {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub allowed_users: Vec<String>,
    pub enabled: Option<bool>,
}

/// `$VAR` and `${VAR}` in `raw` replaced from `env`; `None` when one is missing or empty.
fn expand_env(raw: &str, env: &BTreeMap<String, SecretString>) -> Option<String> {
    use molecule_secrets::ExposeSecret;
    let mut out = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}')?;
            (&inner[..end], &inner[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        let value = env.get(name)?.expose_secret();
        if value.is_empty() {
            return None;
        }
        out.push_str(value);
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
}

/// The largest `system_prompt`.
const MAX_SYSTEM_PROMPT: usize = 64 * 1024;
/// How deep `!include`s may nest.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Replaces every `!include <file>` in `v` with that file's YAML (itself expanded), reading
/// only inside `dir`.
fn expand_includes(v: serde_yaml_ng::Value, dir: Option<&Path>, depth: usize) -> Result<serde_yaml_ng::Value> {
    use serde_yaml_ng::Value;
    match v {
        Value::Tagged(t) if t.tag == "include" => {
            let Some(dir) = dir else {
                return Err(ServiceError::invalid(
                    "template",
                    "!include works only in a directory template (import with dir)",
                ));
            };
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(ServiceError::invalid(
                    "template",
                    format!("!include nests deeper than {MAX_INCLUDE_DEPTH}"),
                ));
            }
            let Value::String(file) = t.value else {
                return Err(ServiceError::invalid("template", "!include takes a file name"));
            };
            let rel = molecule_templates::check_relative_path(&file)
                .map_err(|m| ServiceError::invalid("template", format!("!include {file:?}: {m}")))?;
            let path = dir.join(&rel);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ServiceError::invalid("template", format!("!include {}: {e}", path.display())))?;
            let inner: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
                ServiceError::invalid("template", format!("!include {}: not valid YAML: {e}", path.display()))
            })?;
            expand_includes(inner, Some(dir), depth + 1)
        }
        Value::Tagged(t) => Err(ServiceError::invalid(
            "template",
            format!("unknown YAML tag !{} (only !include is understood)", t.tag),
        )),
        Value::Sequence(items) => Ok(Value::Sequence(
            items
                .into_iter()
                .map(|i| expand_includes(i, dir, depth))
                .collect::<Result<_>>()?,
        )),
        Value::Mapping(m) => {
            let mut out = serde_yaml_ng::Mapping::new();
            for (k, v) in m {
                out.insert(k, expand_includes(v, dir, depth)?);
            }
            Ok(Value::Mapping(out))
        }
        other => Ok(other),
    }
}

fn keys(other: &BTreeMap<String, serde_yaml_ng::Value>, prefix: &str) -> Vec<String> {
    other.keys().map(|k| format!("{prefix}{k}")).collect()
}

fn count(nodes: &[Node]) -> usize {
    nodes.iter().map(|n| 1 + count(&n.children)).sum()
}

/// Where a node's `prompt_file`s are read: its `files_dir` inside the org's directory, else
/// the org's directory (`None` for an inline template).
fn prompt_base(org_dir: Option<&Path>, files_dir: Option<&str>) -> Option<PathBuf> {
    org_dir.map(|d| files_dir.map_or_else(|| d.to_path_buf(), |f| d.join(f)))
}

/// Checks every node before anything is written: the error names the node.
fn validate_tree(nodes: &[Node], prefix: &str, depth: usize, org_dir: Option<&Path>) -> Result<()> {
    if depth > molecule_tree::workspaces::MAX_DEPTH as usize {
        return Err(ServiceError::invalid(
            "template",
            format!(
                "{prefix}: the tree is deeper than {}",
                molecule_tree::workspaces::MAX_DEPTH
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        let at = format!("{prefix}[{i}]");
        let name = n.name.as_deref().unwrap_or("");
        let name = validate::workspace_name("name", name)
            .map_err(|e| ServiceError::invalid("template", format!("{at}: {e}")))?
            .into_string();
        if !seen.insert(name.clone()) {
            return Err(ServiceError::invalid(
                "template",
                format!("{at} ({name:?}): two siblings have this name"),
            ));
        }
        if let Some(t) = n.tier
            && !(1..=4).contains(&t)
        {
            return Err(ServiceError::invalid(
                "template",
                format!("{at} ({name:?}): tier must be 1..=4, got {t}"),
            ));
        }
        if let Some(f) = &n.files_dir {
            let Some(dir) = org_dir else {
                return Err(ServiceError::invalid(
                    "template",
                    format!("{at} ({name:?}): files_dir works only in a directory template (import with dir)"),
                ));
            };
            let rel = molecule_templates::check_relative_path(f)
                .map_err(|m| ServiceError::invalid("template", format!("{at} ({name:?}): files_dir {f:?}: {m}")))?;
            let path = dir.join(&rel);
            let inside = std::fs::canonicalize(&path)
                .ok()
                .zip(std::fs::canonicalize(dir).ok())
                .is_some_and(|(p, d)| p.starts_with(d) && p.is_dir());
            if !inside {
                return Err(ServiceError::invalid(
                    "template",
                    format!("{at} ({name:?}): files_dir {f:?} is not a directory inside the org's directory"),
                ));
            }
        }
        if n.system_prompt.as_ref().is_some_and(|p| p.len() > MAX_SYSTEM_PROMPT) {
            return Err(ServiceError::invalid(
                "template",
                format!("{at} ({name:?}): system_prompt is over {MAX_SYSTEM_PROMPT} bytes"),
            ));
        }
        let base = prompt_base(org_dir, n.files_dir.as_deref());
        for (j, item) in n.schedules.iter().enumerate() {
            item.resolve(base.as_deref())
                .map_err(|m| ServiceError::invalid("template", format!("{at} ({name:?}).schedules[{j}]: {m}")))?;
        }
        validate_tree(&n.children, &format!("{at}.children"), depth + 1, org_dir)?;
    }
    Ok(())
}

fn load_dir(root: &Path, dir: &str) -> Result<(OrgTemplate, PathBuf)> {
    if dir.is_empty() || dir.contains('/') || dir.contains("..") {
        return Err(ServiceError::invalid(
            "dir",
            "must be the name of a directory under the org templates root",
        ));
    }
    for file in ["org.yaml", "org.yml"] {
        let path = root.join(dir).join(file);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return parse(&text, Some(&root.join(dir))).map(|t| (t, path));
        }
    }
    Err(ServiceError::NotFound(format!(
        "no org.yaml in {}",
        root.join(dir).display()
    )))
}

/// The org's `.env` (beside `org.yaml`), if any: its variables become every node's workspace
/// secrets. A line that does not parse is a 400 naming the file.
pub(crate) fn load_env(dir: &Path) -> Result<BTreeMap<String, SecretString>> {
    let path = dir.join(".env");
    if !path.is_file() {
        return Ok(BTreeMap::new());
    }
    let bad = |e: dotenvy::Error| {
        // The parser's own message quotes the line, value and all: never pass it on.
        let why = match e {
            dotenvy::Error::LineParse(_, at) => {
                format!("a line does not parse as KEY=value (at character {at} of that line)")
            }
            dotenvy::Error::Io(io) => io.to_string(),
            _ => "a variable refers to one that is not defined".to_owned(),
        };
        ServiceError::invalid("dir", format!("{}: {why}", path.display()))
    };
    let mut out = BTreeMap::new();
    for item in dotenvy::from_path_iter(&path).map_err(bad)? {
        let (k, v) = item.map_err(bad)?;
        molecule_vault::secrets::check_key(&k)
            .map_err(|_| ServiceError::invalid("dir", format!("{}: {k:?} is not a variable name", path.display())))?;
        out.insert(k, SecretString::from(v));
    }
    Ok(out)
}

fn collect_required(nodes: &[Node], into: &mut Vec<EnvRequirement>) {
    for n in nodes {
        into.extend(n.required_env.iter().cloned());
        collect_required(&n.children, into);
    }
}

fn parse(text: &str, dir: Option<&Path>) -> Result<OrgTemplate> {
    let raw: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| ServiceError::invalid("template", format!("not valid YAML: {e}")))?;
    let expanded = expand_includes(raw, dir, 0)?;
    serde_yaml_ng::from_value(expanded)
        .map_err(|e| ServiceError::invalid("template", format!("not a valid org template: {e}")))
}

impl Services {
    /// Templates under `root` (`<dir>/org.yaml`).
    pub fn org_templates(&self, root: Option<&Path>) -> Result<Vec<TemplateSummary>> {
        let Some(root) = root else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(root) else {
            return Ok(Vec::new());
        };
        for e in entries.flatten() {
            let dir = e.file_name().to_string_lossy().into_owned();
            if let Ok((t, _)) = load_dir(root, &dir) {
                out.push(TemplateSummary {
                    dir,
                    name: t.name,
                    description: t.description,
                    workspaces: count(&t.workspaces),
                });
            }
        }
        out.sort_by(|a, b| a.dir.cmp(&b.dir));
        Ok(out)
    }

    /// Imports a template; see the module docs.
    pub async fn import_org(&self, req: ImportRequest, root: Option<&Path>) -> Result<Imported> {
        let (template, env, org_dir) = match (&req.dir, &req.template) {
            (Some(dir), None) => {
                let (t, path) = load_dir(
                    root.ok_or_else(|| {
                        ServiceError::invalid(
                            "dir",
                            "no org templates root is configured (set MOLECULE_ORG_TEMPLATES_DIR)",
                        )
                    })?,
                    dir,
                )?;
                let org_dir = path.parent().unwrap_or(Path::new(".")).to_owned();
                let env = load_env(&org_dir)?;
                (t, env, Some(org_dir))
            }
            (None, Some(text)) => (parse(text, None)?, BTreeMap::new(), None),
            _ => return Err(ServiceError::invalid("body", "give exactly one of dir or template")),
        };
        // Preflight: every required variable comes from a global secret or the org's `.env`.
        let mut required = template.required_env.clone();
        collect_required(&template.workspaces, &mut required);
        if !required.is_empty() {
            let mut have = self.vault().global_secret_keys().await?;
            have.extend(env.keys().cloned());
            let missing: Vec<String> = required
                .iter()
                .filter(|r| !r.met_by(&|k: &str| have.contains(k)))
                .map(EnvRequirement::label)
                .collect();
            if !missing.is_empty() && !req.force {
                return Err(ServiceError::PreconditionFailed {
                    message: "missing required environment variables".into(),
                    details: serde_json::json!({
                        "missing_env": missing,
                        "required_env": required.iter().map(EnvRequirement::label).collect::<Vec<_>>(),
                        "template": template.name.clone().or_else(|| req.dir.clone()),
                        "suggestion": "set them as global secrets (POST /settings/secrets) or in the org's .env, or import with \"force\": true",
                    }),
                });
            }
        }
        if template.workspaces.is_empty() {
            return Err(ServiceError::invalid(
                "template",
                "workspaces: the template has no workspaces",
            ));
        }
        validate_tree(&template.workspaces, "workspaces", 0, org_dir.as_deref())?;
        self.check_tree_memories(&template, &template.workspaces, "workspaces", true)?;
        let mut results = Vec::new();
        // Depth-first, parents before children; each node provisions through the hooks.
        let mut stack: Vec<(String, Option<Uuid>, Node)> = template
            .workspaces
            .iter()
            .cloned()
            .enumerate()
            .rev()
            .map(|(i, n)| (format!("workspaces[{i}]"), None, n))
            .collect();
        let globals: Vec<InitialMemory> = template
            .global_memories
            .iter()
            .map(|g| InitialMemory {
                content: g.content.clone(),
                scope: Some("GLOBAL".into()),
            })
            .collect();
        while let Some((at, parent, node)) = stack.pop() {
            let name = node.name.clone().unwrap_or_default();
            // The org's memories go to the first root (`workspaces[0]`).
            let extra: &[InitialMemory] = if at == "workspaces[0]" { &globals } else { &[] };
            let ignored = keys(&node.other, "");
            if node.spawning == Some(false) {
                results.push(NodeResult {
                    node: at,
                    name,
                    id: None,
                    parent_id: parent,
                    status: NodeStatus::NotSpawned,
                    error: None,
                    ignored,
                    channels: Vec::new(),
                    channels_skipped: Vec::new(),
                });
                continue;
            }
            let result = self
                .import_node(
                    &template.defaults,
                    &node,
                    parent,
                    req.replace_if_exists,
                    extra,
                    (&env, org_dir.as_deref()),
                )
                .await;
            let (id, status, error) = match result {
                Ok((id, status)) => (Some(id), status, None),
                Err(e) => (None, NodeStatus::Failed, Some(e.to_string())),
            };
            let (mut channels, mut channels_skipped) = (Vec::new(), Vec::new());
            if let Some(id) = id {
                self.import_schedules(id, &node, org_dir.as_deref()).await;
                (channels, channels_skipped) = self.import_channels(id, &node, &env, org_dir.as_deref()).await;
                for (i, child) in node.children.iter().cloned().enumerate().rev() {
                    stack.push((format!("{at}.children[{i}]"), Some(id), child));
                }
            }
            results.push(NodeResult {
                node: at,
                name,
                id,
                parent_id: parent,
                status,
                error,
                ignored,
                channels,
                channels_skipped,
            });
        }
        let created = results
            .iter()
            .filter(|r| matches!(r.status, NodeStatus::Created | NodeStatus::Replaced))
            .count();
        let skipped = results.iter().filter(|r| r.status == NodeStatus::Skipped).count();
        let failed = results.iter().filter(|r| r.status == NodeStatus::Failed).count();
        let mut ignored = keys(&template.other, "");
        ignored.extend(keys(&template.defaults.other, "defaults."));
        if !ignored.is_empty() || results.iter().any(|r| !r.ignored.is_empty()) {
            tracing::info!(org = ?template.name, ?ignored, "org import: keys this platform does not implement were ignored (listed per node in the answer)");
        }
        Ok(Imported {
            ignored,
            org: template.name,
            count: results.len(),
            workspaces: results,
            created,
            skipped,
            failed,
        })
    }

    /// Upserts the node's channels on workspace `id`: what was written, and what was skipped
    /// with why (the rest of the import goes on either way).
    async fn import_channels(
        &self,
        id: Uuid,
        node: &Node,
        env: &BTreeMap<String, SecretString>,
        org_dir: Option<&Path>,
    ) -> (Vec<String>, Vec<molecule_api::org::ChannelSkipped>) {
        if node.channels.is_empty() {
            return (Vec::new(), Vec::new());
        }
        // The org's `.env`, then the node's files_dir `.env` over it.
        let mut env = env.clone();
        if let (Some(f), Some(dir)) = (&node.files_dir, org_dir)
            && let Ok(more) = load_env(&dir.join(f))
        {
            env.extend(more);
        }
        let mut skipped = Vec::new();
        let mut wanted = Vec::new();
        for c in &node.channels {
            let mut config = serde_json::Map::new();
            let mut missing = Vec::new();
            for (k, raw) in &c.config {
                match expand_env(raw, &env) {
                    Some(v) => {
                        config.insert(k.clone(), serde_json::Value::String(v));
                    }
                    None => missing.push(raw.clone()),
                }
            }
            if !missing.is_empty() {
                skipped.push(molecule_api::org::ChannelSkipped {
                    kind: c.kind.clone(),
                    reason: format!("missing env: {missing:?}"),
                });
                continue;
            }
            wanted.push(molecule_channels::OrgChannel {
                kind: c.kind.clone(),
                config,
                allowed_users: c.allowed_users.clone(),
                enabled: c.enabled,
            });
        }
        let mut written = Vec::new();
        match self.channels().import(id, wanted).await {
            Ok(done) => {
                for d in done {
                    match d {
                        molecule_channels::ImportedChannel::Written(kind) => written.push(kind.to_string()),
                        molecule_channels::ImportedChannel::Skipped { kind, reason } => {
                            skipped.push(molecule_api::org::ChannelSkipped { kind, reason })
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(workspace_id = %id, error = %e.chain(), "org import: channels not imported");
                skipped.push(molecule_api::org::ChannelSkipped {
                    kind: "*".into(),
                    reason: format!("not imported: {e}"),
                });
            }
        }
        (written, skipped)
    }

    /// Upserts the node's schedules on workspace `id` (checked before anything was written;
    /// a failure here is a database one, logged with the schedule's name).
    async fn import_schedules(&self, id: Uuid, node: &Node, org_dir: Option<&Path>) {
        let base = prompt_base(org_dir, node.files_dir.as_deref());
        let schedules = self.scheduler();
        for item in &node.schedules {
            let outcome = match item.resolve(base.as_deref()) {
                Ok(new) => schedules
                    .schedules()
                    .upsert_template(id, &new)
                    .await
                    .map_err(|e| e.to_string()),
                Err(m) => Err(m),
            };
            match outcome {
                Ok(molecule_schedules::store::Upserted::KeptRuntime) => tracing::info!(
                    workspace_id = %id, schedule = ?item.name,
                    "org import: a schedule of this name was made through the API; left as it is"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(workspace_id = %id, schedule = ?item.name, error = %e, "org import: schedule not imported")
                }
            }
        }
    }

    async fn import_node(
        &self,
        defaults: &Defaults,
        node: &Node,
        parent: Option<Uuid>,
        replace: bool,
        extra_memories: &[InitialMemory],
        (env, org_dir): (&BTreeMap<String, SecretString>, Option<&Path>),
    ) -> Result<(Uuid, NodeStatus)> {
        let name = node.name.clone().unwrap_or_default();
        // files_dir (checked by validate_tree) and its `.env` over the org's.
        let files_dir = match (&node.files_dir, org_dir) {
            (Some(f), Some(dir)) => Some(dir.join(f)),
            _ => None,
        };
        let mut secrets = env.clone();
        if let Some(d) = &files_dir {
            secrets.extend(load_env(d)?);
        }
        let existing = self.tree().live_child(parent, name.trim()).await?;
        let status = match existing {
            Some(id) if !replace => return Ok((id, NodeStatus::Skipped)),
            Some(id) => {
                self.delete_workspace(
                    id,
                    molecule_tree::workspaces::Children::Cascade,
                    molecule_api::workspaces::Removal::Removed,
                )
                .await?;
                NodeStatus::Replaced
            }
            None => NodeStatus::Created,
        };
        let input = CreateWorkspace {
            name,
            role: node.role.clone(),
            tier: node.tier.or(defaults.tier),
            runtime: node.runtime.clone().or_else(|| defaults.runtime.clone()),
            model: node.model.clone().or_else(|| defaults.model.clone()),
            external: node.external,
            url: node.url.clone(),
            parent_id: parent,
            initial_memories: node
                .initial_memories
                .clone()
                .or_else(|| defaults.initial_memories.clone())
                .unwrap_or_default()
                .into_iter()
                .chain(extra_memories.iter().cloned())
                .collect(),
            secrets,
            template: node.template.clone(),
            max_concurrent_tasks: node.max_concurrent_tasks,
            ..CreateWorkspace::default()
        };
        let extras = molecule_tree::workspaces::SeedExtras {
            files_dir: files_dir.map(|d| d.display().to_string()),
            system_prompt: node.system_prompt.clone(),
        };
        match self.create_workspace_seeded(input, extras).await {
            Ok(c) => Ok((c.id, status)),
            // Another import created it meanwhile (the unique index decided): same workspace.
            Err(ServiceError::Conflict { .. }) if !replace => {
                let id = self
                    .tree()
                    .live_child(parent, node.name.as_deref().unwrap_or("").trim())
                    .await?
                    .ok_or_else(|| {
                        ServiceError::conflict(
                            "a concurrent import created and removed this workspace; retry the import",
                            serde_json::json!({ "field": "name" }),
                        )
                    })?;
                Ok((id, NodeStatus::Skipped))
            }
            Err(e) => Err(e),
        }
    }

    /// Every node's memories pass the same checks as `POST /workspaces` before anything is
    /// created; the error names the node.
    fn check_tree_memories(&self, t: &OrgTemplate, nodes: &[Node], prefix: &str, top: bool) -> Result<()> {
        for (i, n) in nodes.iter().enumerate() {
            let at = format!("{prefix}[{i}]");
            let mut memories = n
                .initial_memories
                .clone()
                .or_else(|| t.defaults.initial_memories.clone())
                .unwrap_or_default();
            if top && i == 0 {
                memories.extend(t.global_memories.iter().map(|g| InitialMemory {
                    content: g.content.clone(),
                    scope: Some("GLOBAL".into()),
                }));
            }
            self.memory()
                .check_initial_memories(&memories, top)
                .map_err(|e| match e {
                    ServiceError::Invalid { message, .. } => {
                        ServiceError::invalid("template", format!("{at}: {message}"))
                    }
                    other => other,
                })?;
            self.check_tree_memories(t, &n.children, &format!("{at}.children"), false)?;
        }
        Ok(())
    }
}
