//! `terminal`: why a terminal into a workload could not be opened.
//!
//! Must not know: how a shell is attached (the backends do), WebSockets.

/// Why a terminal could not be opened. The text says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerminalFailure {
    /// 501: this backend cannot give a shell; the text says why.
    #[error("{0}")]
    Unsupported(String),
    /// 404: the workload is not running (the original's `container not running`).
    #[error("{0}")]
    NotRunning(String),
    /// 503: the backend could not be reached, or no shell would start.
    #[error("{0}")]
    Unavailable(String),
}
