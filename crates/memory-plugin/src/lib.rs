//! `molecule-memory-plugin`: the default Memory Plugin v1 implementation over Postgres.
//!
//! Owns: the plugin's HTTP routes (wire-compatible with the v1 contract of
//! `molecule-memory-contract`, errors always as the contract's `Error` JSON), its
//! `memory_plugin` schema (embedded migrations) and store, the search modes, and the TTL
//! janitor's work function.
//!
//! Must not know: workspace-server internals, the workspace tree, auth, redaction. It is a
//! standalone service that only speaks the plugin contract. It is the second crate allowed to
//! use actix-web (see ARCHITECTURE.md, "HTTP crates").
//!
//! Modules: `routes` (the handlers and their table), `errors` (the contract's `Error` JSON
//! for every failure), `server` (the app, binding and serving), `janitor` (the TTL pass),
//! `store` (the SQL).

mod errors;
mod janitor;
mod routes;
mod server;
pub mod store;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use molecule_db::{Migrations, Pool};
use molecule_memory_contract::CONTRACT_VERSION;

pub use errors::PluginError;
pub use janitor::janitor_pass;
pub use molecule_serve::{Server, ServerHandle};
pub use routes::routes;
pub use server::{app, bind, serve};
pub use store::{SearchMode, Store, StoreError};

/// Contract version this plugin speaks.
pub const PLUGIN_VERSION: &str = CONTRACT_VERSION;

const EMBEDDED: EmbeddedMigrations = embed_migrations!("migrations");

/// The plugin's schema as a migration set of its own, kept in schema `memory_plugin`.
pub fn migrations() -> Migrations {
    Migrations::new(|| EMBEDDED, env!("MEMORY_PLUGIN_MIGRATIONS_FINGERPRINT")).in_schema("memory_plugin")
}

/// What every request handler shares.
#[derive(Clone)]
pub struct PluginState {
    pub pool: Pool,
    pub store: Store,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
}

impl PluginState {
    pub fn new(pool: Pool) -> Self {
        Self {
            store: Store::new(pool.clone()),
            pool,
            max_body_bytes: 1 << 20,
        }
    }
}
