//! Workspace templates: the registry under `CONFIGS_DIR`, and what a template seeds into a
//! workload's `/configs`.
//!
//! Owns: reading `<CONFIGS_DIR>/<id>/config.yaml` (the one loader behind `/templates`, the
//! provisioning-timeout lookup and create's `template`), load errors that name their file and
//! reason (logged, and kept for the admin view: a broken template is never silently dropped),
//! importing a template's files, and rendering the `config.yaml` a workload starts with.
//!
//! Must not know: HTTP, the database, or how files reach a workload (that is a `Backend`
//! operation behind the dispatcher).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The template's own description of itself, inside its directory.
pub const CONFIG_FILE: &str = "config.yaml";
/// The file `system_prompt` is written to.
pub const SYSTEM_PROMPT_FILE: &str = "system-prompt.md";
/// A template's files may not add up to more than this (they are copied into every workload).
pub const MAX_TEMPLATE_BYTES: u64 = 8 * 1024 * 1024;
/// Nor be more than this many.
pub const MAX_TEMPLATE_FILES: usize = 500;

/// `NAME`, or `{any_of: [A, B]}`: one of them is enough.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvRequirement {
    Name(String),
    AnyOf { any_of: Vec<String> },
}

impl EnvRequirement {
    /// Met when `have` holds the name (or one of them).
    pub fn met_by(&self, have: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Self::Name(n) => have(n),
            Self::AnyOf { any_of } => any_of.iter().any(|n| have(n)),
        }
    }

    /// How an error names it: `A`, or `one of A | B`.
    pub fn label(&self) -> String {
        match self {
            Self::Name(n) => n.clone(),
            Self::AnyOf { any_of } => format!("one of {}", any_of.join(" | ")),
        }
    }
}

/// One model a template offers (`runtime_config.models[]`); a bare string is its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ModelForm")]
pub struct ModelEntry {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_env: Vec<EnvRequirement>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ModelForm {
    Id(String),
    Full {
        id: String,
        name: Option<String>,
        provider: Option<String>,
        #[serde(default)]
        required_env: Vec<EnvRequirement>,
    },
}

impl From<ModelForm> for ModelEntry {
    fn from(f: ModelForm) -> Self {
        match f {
            ModelForm::Id(id) => Self {
                id,
                name: None,
                provider: None,
                required_env: Vec::new(),
            },
            ModelForm::Full {
                id,
                name,
                provider,
                required_env,
            } => Self {
                id,
                name,
                provider,
                required_env,
            },
        }
    }
}

/// One entry of the structured top-level `providers:` block; a bare string is its name (the
/// slug-list shape some templates use there must not make the whole template unreadable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ProviderForm")]
pub struct ProviderEntry {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_prefixes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_aliases: Option<serde_json::Value>,
    /// Always a string on the wire: empty means "the provider's default".
    #[serde(default)]
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_env: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // a transient parse form, dropped at once
enum ProviderForm {
    Name(String),
    Full {
        name: String,
        auth_mode: Option<String>,
        #[serde(default)]
        model_prefixes: Vec<String>,
        model_aliases: Option<serde_json::Value>,
        base_url: Option<String>,
        auth_env: Option<serde_json::Value>,
    },
}

impl From<ProviderForm> for ProviderEntry {
    fn from(f: ProviderForm) -> Self {
        match f {
            ProviderForm::Name(name) => Self {
                name,
                auth_mode: None,
                model_prefixes: Vec::new(),
                model_aliases: None,
                base_url: String::new(),
                auth_env: None,
            },
            ProviderForm::Full {
                name,
                auth_mode,
                model_prefixes,
                model_aliases,
                base_url,
                auth_env,
            } => Self {
                name,
                auth_mode,
                model_prefixes,
                model_aliases,
                base_url: base_url.unwrap_or_default(),
                auth_env,
            },
        }
    }
}

/// A skill: a bare name, or a mapping with `name` (other keys are the runtime's).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum SkillForm {
    Name(String),
    Full { name: String },
}

/// `runtime_config:` as the server reads it (the runtime reads the rest).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RuntimeConfig {
    pub model: Option<String>,
    #[serde(default)]
    pub models: Vec<ModelEntry>,
    #[serde(default)]
    pub required_env: Vec<EnvRequirement>,
    pub provision_timeout_seconds: Option<u64>,
    /// The provider slug list.
    #[serde(default)]
    pub providers: Vec<String>,
}

/// `config.yaml` as the server reads it. Unknown keys belong to the runtime and are kept in
/// [`Template::raw`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TemplateConfig {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tier: Option<i32>,
    pub runtime: Option<String>,
    pub runtime_display_name: Option<String>,
    /// The legacy place of the default model (`runtime_config.model` wins).
    pub model: Option<String>,
    #[serde(default)]
    skills: Vec<SkillForm>,
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    /// The structured provider registry.
    #[serde(default)]
    pub providers: Vec<ProviderEntry>,
    #[serde(default)]
    pub required_env: Vec<EnvRequirement>,
    #[serde(default)]
    pub recommended_env: Vec<EnvRequirement>,
}

impl TemplateConfig {
    pub fn skills(&self) -> Vec<String> {
        self.skills
            .iter()
            .map(|s| match s {
                SkillForm::Name(n) | SkillForm::Full { name: n } => n.clone(),
            })
            .collect()
    }

    /// The template's default model.
    pub fn default_model(&self) -> Option<&str> {
        self.runtime_config.model.as_deref().or(self.model.as_deref())
    }

    /// Every variable a workspace of this template needs with `model`: the template's own,
    /// `runtime_config`'s, and the chosen model's.
    pub fn required_env(&self, model: Option<&str>) -> Vec<EnvRequirement> {
        let mut all: Vec<EnvRequirement> = self.required_env.clone();
        all.extend(self.runtime_config.required_env.iter().cloned());
        if let Some(m) = model.or(self.default_model())
            && let Some(entry) = self.runtime_config.models.iter().find(|e| e.id == m)
        {
            all.extend(entry.required_env.iter().cloned());
        }
        let mut seen = std::collections::BTreeSet::new();
        all.retain(|r| seen.insert(r.label()));
        all
    }
}

/// A template that loaded.
#[derive(Debug, Clone)]
pub struct Template {
    /// Its directory's name.
    pub id: String,
    pub dir: PathBuf,
    pub config: TemplateConfig,
    /// The whole `config.yaml`, the runtime's keys included.
    pub raw: serde_yaml_ng::Value,
}

/// A template that did not load, and why. `file` is the path an operator fixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("template {id:?} ({file}): {reason}")]
pub struct LoadError {
    pub id: String,
    pub file: String,
    pub reason: String,
}

/// Why a template could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The request is wrong: `field` names what to fix.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("template {0:?} already exists (pass overwrite: true to replace it)")]
    Exists(String),
    #[error("no templates directory is configured (set CONFIGS_DIR)")]
    NoDirectory,
    #[error("writing {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a scan of the directory found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub templates: Vec<Template>,
    pub errors: Vec<LoadError>,
}

/// Checks a template id: a single directory name of `[A-Za-z0-9._-]`, not hidden.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 100 {
        return Err("must be 1..=100 characters".into());
    }
    if id.starts_with('.') {
        return Err("must not start with '.'".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("must use only letters, digits, '.', '_' and '-' (found {c:?})"));
    }
    Ok(())
}

/// Checks a path relative to a template's directory: not empty, and the Files API's rules
/// (`molecule_domain::check_relative`). Returns it without a trailing `/`.
pub fn check_relative_path(path: &str) -> Result<String, String> {
    match molecule_domain::check_relative(path) {
        Ok("") => Err("must not be empty".into()),
        Ok(p) => Ok(p.to_owned()),
        Err(e) => Err(e.to_string().trim_start_matches("path: ").to_owned()),
    }
}

fn load_error(id: &str, file: &Path, reason: impl Into<String>) -> LoadError {
    LoadError {
        id: id.to_owned(),
        file: file.display().to_string(),
        reason: reason.into(),
    }
}

/// Parses a template's `config.yaml` text.
pub fn parse_config(id: &str, file: &Path, text: &str) -> Result<(TemplateConfig, serde_yaml_ng::Value), LoadError> {
    let raw: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| load_error(id, file, format!("not valid YAML: {e}")))?;
    if !raw.is_mapping() {
        return Err(load_error(id, file, "must be a YAML mapping"));
    }
    let config: TemplateConfig =
        serde_yaml_ng::from_value(raw.clone()).map_err(|e| load_error(id, file, e.to_string()))?;
    if let Some(t) = config.tier
        && !(1..=4).contains(&t)
    {
        return Err(load_error(id, file, format!("tier: must be 1..=4, got {t}")));
    }
    Ok((config, raw))
}

/// The templates under one directory (`CONFIGS_DIR`). Each call reads the disk, so an edit
/// or an import shows at once.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    dir: Option<PathBuf>,
}

impl Registry {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Every directory holding a `config.yaml`, sorted by id. A template that fails to load is
    /// logged with its file and reason and returned in `errors`.
    pub fn scan(&self) -> Scan {
        let mut scan = Scan::default();
        let Some(dir) = &self.dir else { return scan };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                let err = load_error(
                    "",
                    dir,
                    format!("cannot read the templates directory (CONFIGS_DIR): {e}"),
                );
                tracing::warn!(file = %err.file, reason = %err.reason, "templates: skip");
                scan.errors.push(err);
                return scan;
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(CONFIG_FILE).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| check_id(id).is_ok())
            .collect();
        ids.sort();
        for id in ids {
            match self.get(&id) {
                Ok(Some(t)) => scan.templates.push(t),
                Ok(None) => {}
                Err(e) => scan.errors.push(e),
            }
        }
        scan
    }

    /// Template `id`: `None` when there is no such template (or no directory), an error when
    /// it exists but does not load (logged).
    pub fn get(&self, id: &str) -> Result<Option<Template>, LoadError> {
        let Some(dir) = &self.dir else { return Ok(None) };
        if check_id(id).is_err() {
            return Ok(None);
        }
        let tdir = dir.join(id);
        let file = tdir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                let err = load_error(id, &file, format!("cannot read: {e}"));
                tracing::warn!(template = id, file = %err.file, reason = %err.reason, "templates: skip");
                return Err(err);
            }
        };
        match parse_config(id, &file, &text) {
            Ok((config, raw)) => Ok(Some(Template {
                id: id.to_owned(),
                dir: tdir,
                config,
                raw,
            })),
            Err(err) => {
                tracing::warn!(template = id, file = %err.file, reason = %err.reason, "templates: skip");
                Err(err)
            }
        }
    }

    /// `runtime_config.provision_timeout_seconds` of template `id`, with the file it came from.
    pub fn provision_timeout(&self, id: &str) -> Option<(u64, PathBuf)> {
        let t = self.get(id).ok()??;
        let secs = t.config.runtime_config.provision_timeout_seconds.filter(|s| *s > 0)?;
        Some((secs, t.dir.join(CONFIG_FILE)))
    }

    /// Writes template `id` from `files` (relative path → bytes). `config.yaml` must be among
    /// them and load; an existing template is replaced only with `overwrite`. The files are
    /// written to a sibling directory first and renamed into place, so a failed import leaves
    /// the previous template whole.
    pub fn import(
        &self,
        id: &str,
        files: &BTreeMap<String, Vec<u8>>,
        overwrite: bool,
    ) -> Result<Template, ImportError> {
        let dir = self.dir.as_ref().ok_or(ImportError::NoDirectory)?;
        check_id(id).map_err(|m| ImportError::Invalid {
            field: "name",
            message: m,
        })?;
        let config = files.get(CONFIG_FILE).ok_or_else(|| ImportError::Invalid {
            field: "files",
            message: format!("must include {CONFIG_FILE}"),
        })?;
        let text = std::str::from_utf8(config).map_err(|_| ImportError::Invalid {
            field: "files",
            message: format!("{CONFIG_FILE} must be UTF-8"),
        })?;
        parse_config(id, Path::new(CONFIG_FILE), text).map_err(|e| ImportError::Invalid {
            field: "files",
            message: format!("{CONFIG_FILE}: {}", e.reason),
        })?;
        if files.len() > MAX_TEMPLATE_FILES {
            return Err(ImportError::Invalid {
                field: "files",
                message: format!("at most {MAX_TEMPLATE_FILES} files"),
            });
        }
        let total: u64 = files.values().map(|b| b.len() as u64).sum();
        if total > MAX_TEMPLATE_BYTES {
            return Err(ImportError::Invalid {
                field: "files",
                message: format!("{total} bytes in all; at most {MAX_TEMPLATE_BYTES}"),
            });
        }
        let mut checked = Vec::with_capacity(files.len());
        for (path, body) in files {
            let rel = check_relative_path(path).map_err(|m| ImportError::Invalid {
                field: "files",
                message: format!("{path:?}: {m}"),
            })?;
            checked.push((rel, body));
        }
        let target = dir.join(id);
        if target.exists() && !overwrite {
            return Err(ImportError::Exists(id.to_owned()));
        }
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| ImportError::Io { path, source }
        };
        let staging = dir.join(format!(".import-{id}-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        let written = (|| {
            for (rel, body) in &checked {
                let path = staging.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::write(&path, body).map_err(io(&path))?;
            }
            Ok::<(), ImportError>(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        if target.exists() {
            let old = dir.join(format!(".replaced-{id}-{}", std::process::id()));
            std::fs::rename(&target, &old).map_err(io(&target))?;
            std::fs::rename(&staging, &target).map_err(io(&target))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&staging, &target).map_err(io(&target))?;
        }
        match self.get(id) {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(ImportError::Invalid {
                field: "name",
                message: "the template vanished while being imported".into(),
            }),
            Err(e) => Err(ImportError::Invalid {
                field: "files",
                message: e.reason,
            }),
        }
    }
}

impl Template {
    /// A directory used as a template without being in the registry (an org node's
    /// `files_dir`): its `config.yaml` is optional, and loads if present.
    pub fn from_dir(dir: &Path) -> Result<Template, LoadError> {
        let id = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !dir.is_dir() {
            return Err(load_error(&id, dir, "is not a directory"));
        }
        let file = dir.join(CONFIG_FILE);
        let (config, raw) = match std::fs::read_to_string(&file) {
            Ok(text) => parse_config(&id, &file, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                TemplateConfig::default(),
                serde_yaml_ng::Value::Mapping(serde_yaml_ng::Mapping::new()),
            ),
            Err(e) => return Err(load_error(&id, &file, format!("cannot read: {e}"))),
        };
        Ok(Template {
            id,
            dir: dir.to_owned(),
            config,
            raw,
        })
    }

    /// Every regular file under the template's directory (relative path → bytes), within the
    /// size limits. Symlinks are skipped (a template must not pull in files from elsewhere),
    /// and so is every `.env` (secrets, never files).
    pub fn files(&self) -> Result<BTreeMap<String, Vec<u8>>, LoadError> {
        let mut out = BTreeMap::new();
        let mut total = 0u64;
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            let entries =
                std::fs::read_dir(&dir).map_err(|e| load_error(&self.id, &dir, format!("cannot read: {e}")))?;
            for entry in entries {
                let entry = entry.map_err(|e| load_error(&self.id, &dir, format!("cannot read: {e}")))?;
                let path = entry.path();
                let ty = entry
                    .file_type()
                    .map_err(|e| load_error(&self.id, &path, format!("cannot read: {e}")))?;
                if ty.is_dir() {
                    stack.push(path);
                } else if ty.is_file() && entry.file_name() == ".env" {
                    // A `.env` holds secrets: they become workspace secrets (org import), never
                    // a file in /configs.
                    continue;
                } else if ty.is_file() {
                    let Ok(rel) = path.strip_prefix(&self.dir) else {
                        continue;
                    };
                    let Some(rel) = rel.to_str() else {
                        return Err(load_error(&self.id, &path, "file names must be UTF-8"));
                    };
                    let body =
                        std::fs::read(&path).map_err(|e| load_error(&self.id, &path, format!("cannot read: {e}")))?;
                    total += body.len() as u64;
                    if total > MAX_TEMPLATE_BYTES || out.len() >= MAX_TEMPLATE_FILES {
                        return Err(load_error(
                            &self.id,
                            &self.dir,
                            format!("more than {MAX_TEMPLATE_FILES} files or {MAX_TEMPLATE_BYTES} bytes"),
                        ));
                    }
                    out.insert(rel.replace('\\', "/"), body);
                } else {
                    tracing::warn!(template = %self.id, file = %path.display(), "templates: skipping a symlink or special file");
                }
            }
        }
        Ok(out)
    }
}

/// What a workspace's generated `config.yaml` says about it.
#[derive(Debug, Clone, Default)]
pub struct Seed<'a> {
    pub name: &'a str,
    pub role: Option<&'a str>,
    pub tier: i32,
    pub runtime: &'a str,
    pub model: Option<&'a str>,
    pub provider: Option<&'a str>,
    /// Written to [`SYSTEM_PROMPT_FILE`] and listed in `prompt_files`.
    pub system_prompt: Option<&'a str>,
}

fn set(map: &mut serde_yaml_ng::Mapping, key: &str, value: serde_yaml_ng::Value) {
    map.insert(serde_yaml_ng::Value::String(key.to_owned()), value);
}

/// The files a workload's `/configs` starts with: the template's (if any), then the
/// generated `config.yaml` (the template's own with this workspace's name, role, tier,
/// runtime, model and provider on top), then the system prompt.
pub fn seed_files(template: Option<&Template>, seed: &Seed<'_>) -> Result<BTreeMap<String, Vec<u8>>, LoadError> {
    use serde_yaml_ng::Value;
    let mut files = match template {
        Some(t) => t.files()?,
        None => BTreeMap::new(),
    };
    let mut map = template.and_then(|t| t.raw.as_mapping().cloned()).unwrap_or_default();
    set(&mut map, "name", Value::String(seed.name.to_owned()));
    if let Some(role) = seed.role {
        set(&mut map, "description", Value::String(role.to_owned()));
    }
    if !map.contains_key("version") {
        set(&mut map, "version", Value::String("1.0.0".into()));
    }
    set(&mut map, "tier", Value::Number(seed.tier.into()));
    set(&mut map, "runtime", Value::String(seed.runtime.to_owned()));
    if let Some(model) = seed.model {
        set(&mut map, "model", Value::String(model.to_owned()));
        if let Some(Value::Mapping(rc)) = map.get_mut("runtime_config") {
            set(rc, "model", Value::String(model.to_owned()));
        }
    }
    if let Some(p) = seed.provider {
        set(&mut map, "provider", Value::String(p.to_owned()));
    }
    if let Some(prompt) = seed.system_prompt {
        files.insert(SYSTEM_PROMPT_FILE.into(), prompt.as_bytes().to_vec());
        let mut prompts = match map.get("prompt_files") {
            Some(Value::Sequence(s)) => s.clone(),
            _ => Vec::new(),
        };
        let entry = Value::String(SYSTEM_PROMPT_FILE.into());
        if !prompts.contains(&entry) {
            prompts.insert(0, entry);
        }
        set(&mut map, "prompt_files", Value::Sequence(prompts));
    }
    let id = template.map_or("", |t| t.id.as_str());
    let text = serde_yaml_ng::to_string(&Value::Mapping(map))
        .map_err(|e| load_error(id, Path::new(CONFIG_FILE), format!("cannot render: {e}")))?;
    files.insert(CONFIG_FILE.into(), text.into_bytes());
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn a_broken_template_is_an_error_that_names_its_file_and_the_rest_still_load() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "good/config.yaml",
            "name: Good\ntier: 2\nruntime: hermes\nskills: [a, {name: b}]\nruntime_config:\n  model: m1\n  models: [m1, {id: m2, required_env: [M2_KEY]}]\n  providers: [anthropic]\n  provision_timeout_seconds: 1200\nproviders:\n  - {name: minimax, base_url: null, model_prefixes: [MiniMax-]}\n  - plain\nrequired_env: [{any_of: [A, B]}]\n",
        );
        write(tmp.path(), "broken/config.yaml", "runtime_config: [unclosed\n");
        write(tmp.path(), "badtier/config.yaml", "tier: 9\n");
        write(tmp.path(), "not-a-template/readme.md", "x");
        let reg = Registry::new(Some(tmp.path().to_owned()));
        let scan = reg.scan();
        let ids: Vec<_> = scan.templates.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["good"]);
        let errs: Vec<_> = scan.errors.iter().map(|e| (e.id.as_str(), e.reason.as_str())).collect();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(scan.errors[0].file.ends_with("badtier/config.yaml"));
        assert!(scan.errors[0].reason.contains("tier"));
        assert!(scan.errors[1].file.ends_with("broken/config.yaml"));
        assert!(scan.errors[1].reason.contains("not valid YAML"));
        let good = &scan.templates[0].config;
        assert_eq!(good.skills(), ["a", "b"]);
        assert_eq!(good.providers[0].base_url, "");
        assert_eq!(good.providers[1].name, "plain");
        let labels: Vec<_> = good.required_env(Some("m2")).iter().map(|r| r.label()).collect();
        assert_eq!(labels, ["one of A | B", "M2_KEY"]);
        assert_eq!(good.required_env(None).len(), 1);
        assert_eq!(reg.provision_timeout("good").map(|(s, _)| s), Some(1200));
        assert_eq!(reg.provision_timeout("broken"), None);
        assert_eq!(reg.provision_timeout("../etc"), None);
        assert!(reg.get("missing").unwrap().is_none());
    }

    #[test]
    fn paths_that_leave_their_root_are_refused() {
        for bad in ["", "/etc/passwd", "a/../b", "..", "./a", "a//b", "a\\b", "a\0b"] {
            assert!(check_relative_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_relative_path("a/b.txt/").unwrap(), "a/b.txt");
        assert_eq!(check_relative_path("..a/b..").unwrap(), "..a/b..");
        for bad in ["", ".hidden", "a/b", "a b", "é"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seeding_renders_config_over_the_template_and_imports_replace_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::new(Some(tmp.path().to_owned()));
        let mut files = BTreeMap::new();
        files.insert(
            "config.yaml".to_owned(),
            b"name: T\nruntime_config:\n  model: x\n  timeout: 0\ncustom: kept\n".to_vec(),
        );
        files.insert("prompts/a.md".to_owned(), b"hello".to_vec());
        let t = reg.import("tpl", &files, false).unwrap();
        assert!(matches!(reg.import("tpl", &files, false), Err(ImportError::Exists(_))));
        let mut bad = files.clone();
        bad.insert("../x".into(), b"x".to_vec());
        assert!(matches!(
            reg.import("tpl", &bad, true),
            Err(ImportError::Invalid { field: "files", .. })
        ));
        assert!(
            tmp.path().join("tpl/prompts/a.md").is_file(),
            "a failed import leaves the old one whole"
        );
        let seeded = seed_files(
            Some(&t),
            &Seed {
                name: "w",
                role: Some("r"),
                tier: 2,
                runtime: "hermes",
                model: Some("m"),
                provider: Some("p"),
                system_prompt: Some("be brief"),
            },
        )
        .unwrap();
        assert_eq!(seeded["prompts/a.md"], b"hello");
        assert_eq!(seeded[SYSTEM_PROMPT_FILE], b"be brief");
        let cfg: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&seeded[CONFIG_FILE]).unwrap();
        assert_eq!(cfg["name"], "w");
        assert_eq!(cfg["custom"], "kept");
        assert_eq!(cfg["runtime_config"]["model"], "m");
        assert_eq!(cfg["provider"], "p");
        assert_eq!(cfg["prompt_files"][0], SYSTEM_PROMPT_FILE);
        let bare = seed_files(
            None,
            &Seed {
                name: "n",
                tier: 3,
                runtime: "codex",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(bare.len(), 1);
    }
}
