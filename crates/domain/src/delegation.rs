//! The delegation status vocabulary and its transition rules.
//!
//! Must not know: the ledger's SQL.

use crate::vocab::vocabulary;

vocabulary! {
    /// The life of one agent-to-agent delegation.
    ///
    /// `queued → dispatched → in_progress → completed | failed`. `stuck` is a recoverable
    /// warning (set only by the ledger's sweeper): from it a delegation can still complete or
    /// fail, and a fresh heartbeat returns it to `in_progress`. `completed` and `failed` are
    /// terminal.
    pub enum DelegationStatus ("delegation status") {
        Queued => "queued",
        Dispatched => "dispatched",
        InProgress => "in_progress",
        Stuck => "stuck",
        Completed => "completed",
        Failed => "failed",
    }
}

/// A transition the state machine forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid delegation transition {from} -> {to}")]
pub struct InvalidTransition {
    pub from: DelegationStatus,
    pub to: DelegationStatus,
}

impl DelegationStatus {
    /// Terminal statuses: nothing leaves them.
    pub const TERMINAL: &'static [Self] = &[Self::Completed, Self::Failed];
    /// Awaiting a reply: everything that is not terminal, `stuck` included.
    pub const IN_FLIGHT: &'static [Self] = &[Self::Queued, Self::Dispatched, Self::InProgress, Self::Stuck];

    pub fn is_terminal(self) -> bool {
        Self::TERMINAL.contains(&self)
    }

    pub fn is_in_flight(self) -> bool {
        !self.is_terminal()
    }

    /// The statuses this one may move to (a same-status replay is not a transition).
    pub fn successors(self) -> &'static [Self] {
        use DelegationStatus::*;
        match self {
            Queued => &[Dispatched, InProgress, Stuck, Completed, Failed],
            Dispatched => &[InProgress, Stuck, Completed, Failed],
            InProgress => &[Stuck, Completed, Failed],
            Stuck => &[InProgress, Completed, Failed],
            Completed | Failed => &[],
        }
    }

    /// The statuses from which `to` can be reached in one step.
    pub fn predecessors(to: Self) -> Vec<Self> {
        use crate::Vocabulary;
        Self::ALL
            .iter()
            .copied()
            .filter(|from| from.successors().contains(&to))
            .collect()
    }

    /// `Ok(true)` for a real transition, `Ok(false)` for a same-status replay (a no-op), and
    /// an error for anything the state machine forbids.
    pub fn check_transition(self, to: Self) -> Result<bool, InvalidTransition> {
        if self == to {
            Ok(false)
        } else if self.successors().contains(&to) {
            Ok(true)
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DelegationStatus::*;
    use super::*;
    use crate::Vocabulary;

    #[test]
    fn terminal_and_in_flight_partition_the_vocabulary() {
        let mut all: Vec<_> = DelegationStatus::TERMINAL
            .iter()
            .chain(DelegationStatus::IN_FLIGHT)
            .copied()
            .collect();
        all.sort();
        let mut expected = DelegationStatus::ALL.to_vec();
        expected.sort();
        assert_eq!(all, expected);
    }

    #[test]
    fn terminal_states_have_no_successors() {
        for s in DelegationStatus::TERMINAL {
            assert!(s.successors().is_empty());
            for to in DelegationStatus::ALL {
                if to != s {
                    assert!(s.check_transition(*to).is_err());
                }
            }
        }
    }

    #[test]
    fn stuck_is_recoverable() {
        assert_eq!(Stuck.check_transition(Completed), Ok(true));
        assert_eq!(Stuck.check_transition(Failed), Ok(true));
        assert_eq!(Stuck.check_transition(InProgress), Ok(true));
        assert!(Stuck.is_in_flight());
    }

    #[test]
    fn same_status_is_a_replay_and_backwards_is_an_error() {
        assert_eq!(Completed.check_transition(Completed), Ok(false));
        assert_eq!(
            Dispatched.check_transition(Queued),
            Err(InvalidTransition {
                from: Dispatched,
                to: Queued
            })
        );
    }

    #[test]
    fn predecessors_invert_successors() {
        assert_eq!(DelegationStatus::predecessors(Queued), Vec::<DelegationStatus>::new());
        assert!(DelegationStatus::predecessors(Completed).contains(&Stuck));
    }
}
