//! The TTL janitor's work function (the binary runs it once per cluster per tick).
//!
//! Must not know: scheduling (molecule-periodic does that).

use serde_json::json;

use crate::{Store, StoreError};

/// One janitor pass: deletes expired memories and namespaces in batches of 1000 (at most 50
/// batches, so one pass stays short). Returns counts for the periodic task's report.
pub async fn janitor_pass(store: &Store) -> Result<serde_json::Value, StoreError> {
    const BATCH: i64 = 1000;
    let (mut memories, mut namespaces) = (0usize, 0usize);
    for _ in 0..50 {
        let (m, n) = store.sweep_expired(BATCH).await?;
        memories += m;
        namespaces += n;
        if (m as i64) < BATCH && (n as i64) < BATCH {
            break;
        }
    }
    Ok(json!({ "memories_expired": memories, "namespaces_expired": namespaces }))
}
