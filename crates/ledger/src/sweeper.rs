//! The sweeper: deadlines first (→ failed, the caller is told), then staleness (→ stuck, a
//! recoverable warning nobody is told about). Each rule is a bounded-batch
//! `UPDATE … RETURNING` on the partial in-flight indexes; a NULL heartbeat is a free pass.

use std::future::Future;
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use molecule_domain::{DelegationStatus, Vocabulary};
use molecule_periodic::Periodic;
use serde::Serialize;

use crate::store::Delegation;
use crate::{Ledger, LedgerError, Result};

/// Error detail written on deadline failures.
pub const DEADLINE_ERROR: &str = "deadline exceeded by sweeper";
/// Rows per statement.
const BATCH: i64 = 500;
/// Statements per rule per tick (so one tick stays bounded).
const MAX_BATCHES: usize = 20;

/// Sweeper knobs (`DELEGATION_SWEEPER_INTERVAL_S`, `DELEGATION_STUCK_THRESHOLD_S`).
#[derive(Debug, Clone, Copy)]
pub struct SweeperConfig {
    pub interval: Duration,
    pub stuck_threshold: Duration,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(Self::DEFAULT_INTERVAL_S),
            stuck_threshold: Duration::from_secs(Self::DEFAULT_STUCK_THRESHOLD_S),
        }
    }
}

impl SweeperConfig {
    pub const DEFAULT_INTERVAL_S: u64 = 300;
    pub const DEFAULT_STUCK_THRESHOLD_S: u64 = 600;
}

/// What one sweep did. `deadline_failed` are the rows whose caller must be told.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    pub deadline_failures: usize,
    pub stuck_marked: usize,
    #[serde(skip)]
    pub deadline_failed: Vec<Delegation>,
}

impl Ledger {
    /// One sweep (call it under a cluster-wide lock: [`Ledger::spawn_sweeper`] does).
    pub async fn sweep(&self, stuck_threshold: Duration) -> Result<SweepReport> {
        let in_flight = DelegationStatus::sql_list(DelegationStatus::IN_FLIGHT);
        let fresh = DelegationStatus::sql_list(&[
            DelegationStatus::Queued,
            DelegationStatus::Dispatched,
            DelegationStatus::InProgress,
        ]);
        let mut report = SweepReport::default();
        let mut conn = self.pool().get().await?;
        for _ in 0..MAX_BATCHES {
            let failed: Vec<Delegation> = diesel::sql_query(format!(
                "UPDATE delegations SET status = '{failed}', error_detail = '{DEADLINE_ERROR}', finished_at = now(), updated_at = now()
                  WHERE delegation_id IN (SELECT delegation_id FROM delegations
                                           WHERE status IN ({in_flight}) AND deadline < now()
                                           ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED)
                    AND status IN ({in_flight})
                  RETURNING {COLUMNS}",
                failed = DelegationStatus::Failed.as_str(),
            ))
            .bind::<BigInt, _>(BATCH)
            .load(&mut conn)
            .await?;
            let n = failed.len();
            report.deadline_failures += n;
            report.deadline_failed.extend(failed);
            if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        let secs = i64::try_from(stuck_threshold.as_secs()).unwrap_or(i64::MAX);
        for _ in 0..MAX_BATCHES {
            let n = diesel::sql_query(format!(
                "UPDATE delegations SET status = '{stuck}', updated_at = now(),
                        error_detail = 'no heartbeat for ' || extract(epoch FROM date_trunc('second', now() - last_heartbeat))::bigint || 's (DELEGATION_STUCK_THRESHOLD_S=' || $2 || ')'
                  WHERE delegation_id IN (SELECT delegation_id FROM delegations
                                           WHERE status IN ({fresh}) AND last_heartbeat IS NOT NULL
                                             AND last_heartbeat < now() - make_interval(secs => $2)
                                           ORDER BY last_heartbeat LIMIT $1 FOR UPDATE SKIP LOCKED)
                    AND status IN ({fresh})",
                stuck = DelegationStatus::Stuck.as_str(),
            ))
            .bind::<BigInt, _>(BATCH)
            .bind::<BigInt, _>(secs)
            .execute(&mut conn)
            .await?;
            report.stuck_marked += n;
            if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        Ok(report)
    }

    /// Runs [`Ledger::sweep`] every `config.interval`, once per cluster, surviving panics.
    /// `on_deadline` is told about each deadline failure (to notify the caller).
    pub fn spawn_sweeper<F, Fut>(
        &self,
        config: SweeperConfig,
        on_deadline: F,
    ) -> (Periodic, tokio::task::JoinHandle<()>)
    where
        F: Fn(Vec<Delegation>) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = usize> + Send + 'static,
    {
        let periodic = Periodic::new("delegation-sweeper", config.interval, self.pool().clone());
        let ledger = self.clone();
        let handle = periodic.spawn(move || {
            let ledger = ledger.clone();
            let on_deadline = on_deadline.clone();
            async move {
                let report = ledger.sweep(config.stuck_threshold).await?;
                let notify_errors = if report.deadline_failed.is_empty() {
                    0
                } else {
                    on_deadline(report.deadline_failed.clone()).await
                };
                Ok::<_, LedgerError>(serde_json::json!({
                    "deadline_failures": report.deadline_failures,
                    "stuck_marked": report.stuck_marked,
                    "notify_errors": notify_errors,
                }))
            }
        });
        (periodic, handle)
    }
}

use crate::store::COLUMNS;
