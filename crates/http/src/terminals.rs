//! The workload terminals open on this replica: the per-workspace cap
//! (`TERMINAL_MAX_SESSIONS_PER_WORKSPACE`) and the idle deadline
//! (`TERMINAL_IDLE_TIMEOUT_SECONDS`). The count is per replica, kept in memory: a terminal is
//! a live socket held by one process, and the cap bounds what one process runs.
//!
//! Must not know: WebSockets, shells.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

/// The terminals open on this replica, per workspace, and their limits.
#[derive(Debug, Clone)]
pub struct Terminals {
    max_per_workspace: usize,
    idle: Duration,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl Default for Terminals {
    fn default() -> Self {
        Self::new(4, Duration::from_secs(30 * 60))
    }
}

impl Terminals {
    pub fn new(max_per_workspace: usize, idle: Duration) -> Self {
        Self {
            max_per_workspace,
            idle,
            open: Arc::default(),
        }
    }

    /// How many terminals one workspace may have open here.
    pub fn max_per_workspace(&self) -> usize {
        self.max_per_workspace
    }

    /// How long a terminal may stay silent both ways.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// A slot for one more terminal of `id`, or `None` at the cap.
    pub(crate) fn claim(&self, id: Uuid) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(id).or_default();
        if *n >= self.max_per_workspace {
            return None;
        }
        *n += 1;
        Some(Slot {
            id,
            open: self.open.clone(),
        })
    }
}

/// One open terminal's place under the cap; given back on drop.
pub(crate) struct Slot {
    id: Uuid,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_open_slots() {
        let t = Terminals::new(2, Duration::from_secs(1));
        let id = Uuid::new_v4();
        let a = t.claim(id);
        let b = t.claim(id);
        assert!(a.is_some() && b.is_some());
        assert!(t.claim(id).is_none(), "a third is refused");
        assert!(t.claim(Uuid::new_v4()).is_some(), "another workspace has its own cap");
        drop(a);
        assert!(t.claim(id).is_some(), "a closed one frees its place");
    }
}
