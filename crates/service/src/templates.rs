//! Workspace templates as use-cases: the `/templates` listing, the admin view of templates
//! that failed to load, import, and what `POST /workspaces {template}` takes from one (its
//! defaults and the `required_env` preflight).
//!
//! Must not know: how a template's files reach a workload (the dispatcher seeds them through
//! its backend). The loader itself is `molecule-templates`.

use std::collections::BTreeSet;

use molecule_api::templates::{
    ImportTemplate, ProviderRegistryEntry, TemplateLoadError, TemplateModel, TemplateSummary,
};
use molecule_templates::{EnvRequirement, ImportError, LoadError, Registry, Template};
use serde_json::{Value, json};

use crate::{Result, ServiceError, Services};

fn env_json(reqs: &[EnvRequirement]) -> Vec<Value> {
    reqs.iter()
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect()
}

/// The listing entry of a template.
pub fn summary(t: &Template) -> TemplateSummary {
    let c = &t.config;
    let skills = c.skills();
    TemplateSummary {
        id: t.id.clone(),
        name: c.name.clone().unwrap_or_else(|| t.id.clone()),
        description: c.description.clone().unwrap_or_default(),
        tier: c.tier.unwrap_or(molecule_tree::workspaces::DEFAULT_TIER),
        runtime: c.runtime.clone().unwrap_or_default(),
        runtime_display_name: c.runtime_display_name.clone(),
        model: c.default_model().unwrap_or_default().to_owned(),
        models: c
            .runtime_config
            .models
            .iter()
            .map(|m| TemplateModel {
                id: m.id.clone(),
                name: m.name.clone(),
                provider: m.provider.clone(),
                required_env: env_json(&m.required_env),
            })
            .collect(),
        required_env: env_json(&{
            let mut all = c.required_env.clone();
            all.extend(c.runtime_config.required_env.iter().cloned());
            all
        }),
        recommended_env: env_json(&c.recommended_env),
        providers: c.runtime_config.providers.clone(),
        provider_registry: c
            .providers
            .iter()
            .map(|p| ProviderRegistryEntry {
                name: p.name.clone(),
                auth_mode: p.auth_mode.clone(),
                model_prefixes: p.model_prefixes.clone(),
                model_aliases: p.model_aliases.clone(),
                base_url: p.base_url.clone(),
                auth_env: p.auth_env.clone(),
            })
            .collect(),
        skill_count: skills.len(),
        skills,
        provision_timeout_seconds: c.runtime_config.provision_timeout_seconds,
    }
}

fn load_error(e: LoadError) -> TemplateLoadError {
    TemplateLoadError {
        id: e.id,
        file: e.file,
        reason: e.reason,
    }
}

/// Runs a directory read off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::internal("reading the templates directory", e))
}

impl Services {
    /// The templates under `CONFIGS_DIR` (empty when it is unset).
    pub fn templates(&self) -> &Registry {
        &self.templates
    }

    pub fn with_templates(mut self, templates: Registry) -> Self {
        self.templates = templates;
        self
    }

    /// `GET /templates`: every template that loads. The others are logged and listed by
    /// [`Services::template_errors`].
    pub async fn list_templates(&self) -> Result<Vec<TemplateSummary>> {
        let reg = self.templates.clone();
        let scan = blocking(move || reg.scan()).await?;
        Ok(scan.templates.iter().map(summary).collect())
    }

    /// The templates that did not load, each with its file and reason.
    pub async fn template_errors(&self) -> Result<Vec<TemplateLoadError>> {
        let reg = self.templates.clone();
        let scan = blocking(move || reg.scan()).await?;
        Ok(scan.errors.into_iter().map(load_error).collect())
    }

    /// `POST /templates/import`: writes the files, replacing a template only with `overwrite`.
    pub async fn import_template(&self, req: ImportTemplate) -> Result<TemplateSummary> {
        let reg = self.templates.clone();
        let files = req.files.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        let name = req.name;
        let overwrite = req.overwrite;
        let imported = blocking(move || reg.import(&name, &files, overwrite)).await?;
        match imported {
            Ok(t) => {
                tracing::info!(template = %t.id, dir = %t.dir.display(), "template imported");
                Ok(summary(&t))
            }
            Err(ImportError::Invalid { field, message }) => Err(ServiceError::invalid(field, message)),
            Err(e @ ImportError::Exists(_)) => Err(ServiceError::conflict(e.to_string(), json!({ "field": "name" }))),
            Err(e @ ImportError::NoDirectory) => Err(ServiceError::conflict(e.to_string(), json!({}))),
            Err(e @ ImportError::Io { .. }) => Err(ServiceError::internal("writing an imported template", e)),
        }
    }

    /// The template `id` for a create: 422 `TEMPLATE_UNAVAILABLE` when it is missing or does
    /// not load (the reason and file are named).
    pub(crate) async fn template_for_create(&self, id: &str) -> Result<Template> {
        let reg = self.templates.clone();
        let key = id.to_owned();
        match blocking(move || reg.get(&key)).await? {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(ServiceError::Unprocessable {
                code: "TEMPLATE_UNAVAILABLE",
                message: format!(
                    "template: no template {id:?} under CONFIGS_DIR{} (GET /templates lists them)",
                    if self.templates.dir().is_none() {
                        " (CONFIGS_DIR is unset)"
                    } else {
                        ""
                    }
                ),
                details: json!({ "field": "template", "template": id }),
            }),
            Err(e) => Err(ServiceError::Unprocessable {
                code: "TEMPLATE_UNAVAILABLE",
                message: format!("template: {id:?} does not load: {} ({})", e.reason, e.file),
                details: json!({ "field": "template", "template": id, "file": e.file }),
            }),
        }
    }

    /// 422 `MISSING_REQUIRED_ENV` naming every requirement of `template` (with `model`) that
    /// neither `given` (the create's secrets) nor a global secret meets.
    pub(crate) async fn check_required_env(
        &self,
        template: &Template,
        model: Option<&str>,
        given: &BTreeSet<String>,
    ) -> Result<()> {
        let required = template.config.required_env(model);
        if required.is_empty() {
            return Ok(());
        }
        let globals = self.vault().global_secret_keys().await?;
        let have = |k: &str| given.contains(k) || globals.contains(k);
        let missing: Vec<String> = required
            .iter()
            .filter(|r| !r.met_by(&have))
            .map(|r| r.label())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(ServiceError::Unprocessable {
            code: "MISSING_REQUIRED_ENV",
            message: format!(
                "template {:?} requires {}: set it in `secrets` or as a global secret (PUT /settings/secrets)",
                template.id,
                missing.join(", ")
            ),
            details: json!({ "field": "secrets", "missing": missing, "template": template.id }),
        })
    }
}
