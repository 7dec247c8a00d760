//! Template bodies: the listing `GET /templates` answers (the later original's shape), the
//! load errors of the admin view, and `POST /templates/import`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One model a template offers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateModel {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Each entry is a variable name, or `{any_of: [..]}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub required_env: Vec<Value>,
}

/// One entry of a template's structured provider registry (its top-level `providers:`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderRegistryEntry {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_prefixes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub model_aliases: Option<Value>,
    /// Empty: the provider's default.
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub auth_env: Option<Value>,
}

/// A template under `CONFIGS_DIR`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateSummary {
    /// Its directory's name: what `POST /workspaces {template}` takes.
    pub id: String,
    pub name: String,
    pub description: String,
    pub tier: i32,
    pub runtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_display_name: Option<String>,
    /// The default model.
    pub model: String,
    pub models: Vec<TemplateModel>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub required_env: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub recommended_env: Vec<Value>,
    /// `runtime_config.providers`: provider slugs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// The structured registry (top-level `providers:`), absent when the template has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provider_registry: Vec<ProviderRegistryEntry>,
    pub skills: Vec<String>,
    pub skill_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provision_timeout_seconds: Option<u64>,
}

/// A template that did not load: `GET /admin/templates/errors`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateLoadError {
    /// The template's directory name (empty when the directory itself is unreadable).
    pub id: String,
    /// The file to fix.
    pub file: String,
    pub reason: String,
}

/// `POST /templates/import` body: a template's files, written to `CONFIGS_DIR/<name>/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportTemplate {
    /// The directory name: letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Relative path → UTF-8 content; must include `config.yaml`, which must load.
    pub files: BTreeMap<String, String>,
    /// Replace an existing template of that name (default: 409).
    #[serde(default)]
    pub overwrite: bool,
}
