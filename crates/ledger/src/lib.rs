//! `molecule-ledger`: the durable record of agent-to-agent delegations.
//!
//! Owns: the `delegations` table (its SQL is rendered here from
//! [`molecule_domain::DelegationStatus`], so CHECK lists and partial-index predicates cannot
//! drift), the state machine as one compare-and-set statement per transition (reporting who
//! made it: applied, replayed, lost the race, not found), idempotent inserts, heartbeats, the
//! deadline/staleness sweeper, and the admin queries.
//!
//! Must not know: HTTP, workspaces, provisioning. Callers and callees are plain UUIDs with no
//! foreign keys, so history survives whatever the embedding service deletes. See README.md for
//! embedding it in another tokio service.
//!
//! Modules: `store` (the statements, on a pool or a held connection), `schema` (the DDL),
//! `sweeper`.

mod schema;
mod store;
mod sweeper;

use std::time::Duration;

pub use schema::schema_sql;
pub use store::{
    Delegation, Inserted, Ledger, LedgerConn, NewDelegation, Outcome, PREVIEW_MAX_BYTES, Stats, StatusFilter, Update,
    truncate_preview,
};
pub use sweeper::{SweepReport, SweeperConfig};

/// Pool type the ledger works on (diesel-async over deadpool).
pub type Pool = diesel_async::pooled_connection::deadpool::Pool<diesel_async::AsyncPgConnection>;

/// Ledger errors. Database failures keep their cause as `#[source]`.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    InvalidTransition(#[from] molecule_domain::InvalidTransition),
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// No connection could be had (pool wait timeout, connect failure, closed pool).
    #[error("no database connection")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    /// A statement failed.
    #[error("ledger query failed")]
    Query(#[from] diesel::result::Error),
    /// The table broke an invariant the ledger relies on (a bug or a manual edit).
    #[error("ledger inconsistency: {0}")]
    Inconsistent(&'static str),
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Default deadline of a new delegation.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(6 * 3600);

/// The README's embedding example, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
