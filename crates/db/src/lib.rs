//! `molecule-db`: the workspace-server's database layer.
//!
//! Owns: the connection pool (diesel-async over deadpool, no libpq), the schema in
//! `migrations/` embedded into the binary, running and reverting those migrations, the
//! readiness check ("reachable and migrations current"), the diesel `table!` definitions, and
//! the mapping of the domain's status enums to their SQL types.
//!
//! Must not know: HTTP, business rules, provisioning. Queries that embody a use-case live in
//! the crates that own the use-case.
//!
//! Modules: `pool` (the pool, ping), `migrate` (embedded migrations, readiness), `schema`
//! (diesel `table!`s), `sql_types` (enum ↔ SQL mapping).

pub mod migrate;
mod pool;
pub mod schema;
pub mod sql_types;

pub use migrate::{MIGRATIONS, Migrations};
pub use pool::{Conn, Pool, PoolOptions, connect, ping};

/// Errors from the database layer. Each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL: cannot connect to {target} within {timeout_s}s: {reason}")]
    Unreachable {
        target: String,
        timeout_s: u64,
        reason: String,
    },
    #[error("DATABASE_URL is not a valid postgres URL: {0}")]
    BadUrl(String),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}
