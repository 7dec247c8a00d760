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

mod schema;
mod store;
mod sweeper;

use std::time::Duration;

pub use schema::schema_sql;
pub use store::{
    Delegation, Inserted, Ledger, NewDelegation, Outcome, PREVIEW_MAX_BYTES, Stats, StatusFilter, Update,
    truncate_preview,
};
pub use sweeper::{SweepReport, SweeperConfig};

/// Pool type the ledger works on (diesel-async over deadpool).
pub type Pool = diesel_async::pooled_connection::deadpool::Pool<diesel_async::AsyncPgConnection>;

/// Ledger errors.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    InvalidTransition(#[from] molecule_domain::InvalidTransition),
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("database: {0}")]
    Db(String),
}

impl From<diesel::result::Error> for LedgerError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.to_string())
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for LedgerError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Db(e.to_string())
    }
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Default deadline of a new delegation.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(6 * 3600);

/// The README's embedding example, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::SweeperConfig;

    #[test]
    fn invalid_sweeper_knobs_fall_back_to_the_defaults() {
        let c = SweeperConfig::from_raw(Some("abc"), Some("-5"));
        assert_eq!(
            (c.interval, c.stuck_threshold),
            (Duration::from_secs(300), Duration::from_secs(600))
        );
        let c = SweeperConfig::from_raw(Some(" 60 "), Some("0"));
        assert_eq!(
            (c.interval, c.stuck_threshold),
            (Duration::from_secs(60), Duration::from_secs(600))
        );
        let c = SweeperConfig::from_raw(None, Some("120"));
        assert_eq!(
            (c.interval, c.stuck_threshold),
            (Duration::from_secs(300), Duration::from_secs(120))
        );
    }
}
