//! workspace-server's wire types: the request bodies it accepts and the bodies it answers, with
//! their serde shapes and OpenAPI schemas, one module per resource (Omicron's `params` and
//! `views`).
//!
//! Owns: the JSON shape of every workspace-server body, and the HTTP status an outcome maps to
//! (`workspaces`, `registry`, `a2a`, `discovery`, `lifecycle`, `delegations`, `activity`, `tokens`,
//! `pins`, `org`, `events`, `hooks`, `memories`, `secrets`, `templates`, `files`, `schedules`,
//! `approvals`, `canvas`, `channels`, `instructions`, `workspace_config`, `kv_memory`). Must not know: storage (rows live with their store module in
//! the use-case crate that owns their table), HTTP frameworks, or how a use-case is carried out. The use-cases take
//! and return these; `molecule-http` serves and documents them.

pub mod a2a;
pub mod activity;
pub mod approvals;
pub mod canvas;
pub mod channels;
pub mod delegations;
pub mod discovery;
pub mod events;
pub mod files;
pub mod hooks;
pub mod instructions;
pub mod kv_memory;
pub mod lifecycle;
pub mod memories;
pub mod org;
pub mod pins;
pub mod registry;
pub mod schedules;
pub mod secrets;
pub mod templates;
pub mod tokens;
pub mod workspace_config;
pub mod workspaces;
