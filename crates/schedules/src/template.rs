//! `template`: the `schedules:` of an org template's node, checked and resolved.
//!
//! Owns: the item's shape (`name`, `cron_expr`, `timezone` default `UTC`, `prompt` or
//! `prompt_file`, `enabled` default true), where a `prompt_file` may be read from (inside the
//! org's directory, or the node's `files_dir` when it has one; nothing that leaves it), and the
//! checks made before an import writes anything: the error names the item and what to fix.
//!
//! Must not know: the org import's other keys, the table (the store upserts what this
//! resolves), HTTP.

use std::path::Path;

use molecule_domain::ScheduleSource;
use serde::Deserialize;

use crate::spec::Spec;
use crate::store::NewSchedule;

/// One item of a node's `schedules:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSchedule {
    /// Required: a re-import updates the schedule of this name.
    pub name: Option<String>,
    pub cron_expr: Option<String>,
    pub timezone: Option<String>,
    /// Inline; wins over `prompt_file`.
    pub prompt: Option<String>,
    /// A file inside the org's directory (or the node's `files_dir`).
    pub prompt_file: Option<String>,
    pub enabled: Option<bool>,
}

impl TemplateSchedule {
    /// The schedule to upsert, its prompt read: `base` is where `prompt_file` is resolved
    /// (`None`: an inline template, which has no files). `Err` says what is wrong, without the
    /// item's position (the caller prefixes it).
    pub fn resolve(&self, base: Option<&Path>) -> Result<NewSchedule, String> {
        let name = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or("name is required (a re-import updates a schedule by its name)")?;
        let cron_expr = self.cron_expr.as_deref().unwrap_or_default();
        let timezone = self.timezone.as_deref().unwrap_or("UTC");
        Spec::parse(cron_expr, timezone).map_err(|e| format!("{}: {e}", e.field()))?;
        let prompt = match (&self.prompt, &self.prompt_file) {
            (Some(p), _) if !p.trim().is_empty() => p.clone(),
            (_, Some(file)) => read_prompt(base, file)?,
            _ => return Err("prompt or prompt_file is required".into()),
        };
        if prompt.trim().is_empty() {
            return Err("the prompt is empty".into());
        }
        Ok(NewSchedule {
            name: Some(name.to_owned()),
            cron_expr: cron_expr.to_owned(),
            timezone: Some(timezone.to_owned()),
            prompt,
            enabled: self.enabled,
            source: Some(ScheduleSource::Template),
        })
    }
}

/// The text of `file` under `base`, refused when it is absolute, climbs out (`..`, or a
/// symlink that leads outside), or there is no directory to read from.
fn read_prompt(base: Option<&Path>, file: &str) -> Result<String, String> {
    let Some(base) = base else {
        return Err(format!(
            "prompt_file {file:?} works only in a directory template (import with dir)"
        ));
    };
    let rel = molecule_domain::check_relative(file).map_err(|e| format!("prompt_file {file:?}: {e}"))?;
    if rel.is_empty() {
        return Err("prompt_file must not be empty".into());
    }
    let path = base.join(rel);
    let inside = std::fs::canonicalize(&path)
        .ok()
        .zip(std::fs::canonicalize(base).ok())
        .is_some_and(|(p, b)| p.starts_with(b) && p.is_file());
    if !inside {
        return Err(format!("prompt_file {file:?} is not a file inside the org's directory"));
    }
    // `\r` removed, as from prompts given inline (the original left it in file prompts).
    std::fs::read_to_string(&path)
        .map(|t| t.replace('\r', ""))
        .map_err(|e| format!("prompt_file {file:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(yaml: &str) -> TemplateSchedule {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn items_are_checked_and_prompt_files_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("prompts")).unwrap();
        std::fs::write(dir.path().join("prompts/daily.md"), "standup\r\n").unwrap();
        std::fs::write(dir.path().parent().unwrap().join("outside.md"), "secret").ok();

        let ok = item("{name: daily, cron_expr: '0 9 * * *', prompt_file: prompts/daily.md}")
            .resolve(Some(dir.path()))
            .unwrap();
        assert_eq!(
            (ok.prompt.as_str(), ok.source),
            ("standup\n", Some(ScheduleSource::Template))
        );
        for (yaml, says) in [
            ("{cron_expr: '0 9 * * *', prompt: x}", "name is required"),
            ("{name: a, cron_expr: '0 9 * *', prompt: x}", "cron_expr:"),
            (
                "{name: a, cron_expr: '0 9 * * *', timezone: Nowhere/Land, prompt: x}",
                "timezone:",
            ),
            ("{name: a, cron_expr: '0 9 * * *'}", "prompt or prompt_file"),
            (
                "{name: a, cron_expr: '0 9 * * *', prompt_file: ../outside.md}",
                "prompt_file",
            ),
            (
                "{name: a, cron_expr: '0 9 * * *', prompt_file: /etc/passwd}",
                "prompt_file",
            ),
            (
                "{name: a, cron_expr: '0 9 * * *', prompt_file: missing.md}",
                "not a file inside",
            ),
        ] {
            let e = item(yaml).resolve(Some(dir.path())).unwrap_err();
            assert!(e.contains(says), "{yaml}: {e}");
        }
        let e = item("{name: a, cron_expr: '0 9 * * *', prompt_file: prompts/daily.md}")
            .resolve(None)
            .unwrap_err();
        assert!(e.contains("directory template"), "{e}");
        assert!(serde_yaml_ng::from_str::<TemplateSchedule>("{name: a, every: day}").is_err());
    }
}
