//! `Recent`: when each workspace last did something, kept in this replica's memory (the A2A
//! idle watchdog's last event, the proxy's last write of a workspace's in/outbound time).
//!
//! Owns only the map and its pruning; must not know what the times mean or touch the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

/// Entries kept before those older than [`HORIZON`] are dropped.
const PRUNE_AT: usize = 10_000;
/// Older than anything a reader asks about (idle timeouts, the once-a-second touch).
const HORIZON: Duration = Duration::from_secs(6 * 3600);

/// A shared map of workspace → last time; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Recent(Arc<Mutex<HashMap<Uuid, Instant>>>);

impl Recent {
    fn map(&self) -> MutexGuard<'_, HashMap<Uuid, Instant>> {
        // A poisoned lock only means a thread panicked between two map operations, each of
        // which leaves the map valid.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, id: Uuid) -> Option<Instant> {
        self.map().get(&id).copied()
    }

    /// Notes `id` now.
    pub fn note(&self, id: Uuid) {
        self.note_if_older(id, Duration::ZERO);
    }

    /// Notes `id` now unless it was noted less than `than` ago; says whether it did.
    pub fn note_if_older(&self, id: Uuid, than: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.map();
        if map.get(&id).is_some_and(|at| now.duration_since(*at) < than) {
            return false;
        }
        if map.len() >= PRUNE_AT {
            map.retain(|_, at| now.duration_since(*at) < HORIZON);
        }
        map.insert(id, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_note_within_the_window_is_refused() {
        let r = Recent::default();
        let id = Uuid::new_v4();
        assert!(r.get(id).is_none());
        assert!(r.note_if_older(id, Duration::from_secs(60)));
        assert!(!r.note_if_older(id, Duration::from_secs(60)));
        assert!(r.note_if_older(id, Duration::ZERO));
        assert!(r.get(id).is_some());
    }
}
