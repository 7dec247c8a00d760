//! Extension points filled by later layers: the dispatcher provisions and stops workloads,
//! the memory layer cleans up namespaces on purge. Until they are wired, every hook is a no-op.

use std::sync::Arc;

use molecule_api::hooks::{RestartOutcome, StopFailure};
use uuid::Uuid;

/// Why a hook failed: the implementation's own error, kept as the source. Its text (with
/// the causes) is what a bulk outcome reports per workspace.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::chain(source.as_ref()))]
pub struct HookError {
    #[source]
    source: crate::error::BoxError,
}

impl HookError {
    pub fn from_source(e: impl Into<crate::error::BoxError>) -> Self {
        Self { source: e.into() }
    }
}

/// What happens to workloads when the tree changes. The dispatcher implements it; the
/// defaults are those of a platform with no provisioner.
#[async_trait::async_trait]
pub trait WorkloadHooks: Send + Sync {
    /// Whether a backend can run workloads.
    fn has_provisioner(&self) -> bool {
        false
    }
    /// A workspace was created (or resumed) and should be provisioned, detached from the request.
    async fn provision(&self, _id: Uuid) {}
    /// Stop, then provision again (concurrent calls coalesce).
    async fn restart(&self, _id: Uuid, _reset_session: bool) -> RestartOutcome {
        RestartOutcome::NoProvisioner
    }
    /// Stop one workload, keeping its volumes (pause). The error says why it failed.
    async fn stop_one(&self, _id: Uuid) -> Result<(), HookError> {
        Ok(())
    }
    /// These workspaces were removed: stop their workloads and remove their volumes.
    async fn stop(&self, _ids: &[Uuid]) -> Vec<StopFailure> {
        Vec::new()
    }
    /// These rows were purged: drop whatever else belongs to them (memory namespaces, …).
    async fn purge(&self, _ids: &[Uuid]) {}
    /// Whether the workspace's workload is running: `None` when nobody can tell (no backend
    /// recorded for it, an external agent, or the backend could not be asked).
    async fn is_running(&self, _id: Uuid) -> Option<bool> {
        None
    }
    /// A bootstrap watcher saw the workload die before it registered: fail the workspace if it
    /// is still provisioning. Whether it changed; without a provisioner nothing is provisioning
    /// a workload, so nothing changes.
    async fn bootstrap_failed(
        &self,
        _id: Uuid,
        _reason: molecule_domain::FailureReason,
        _payload: serde_json::Value,
    ) -> Result<bool, HookError> {
        Ok(false)
    }
    /// A file operation on the workload, through the backend that ran it.
    async fn files(
        &self,
        _id: Uuid,
        _op: molecule_domain::FileOp,
    ) -> Result<molecule_domain::FileAnswer, molecule_domain::FileFailure> {
        Err(no_files())
    }
    /// A shell in the workspace's running workload, through the backend that ran it.
    async fn terminal(&self, _id: Uuid) -> Result<Terminal, molecule_domain::TerminalFailure> {
        Err(no_terminal())
    }
}

/// Resizes a terminal's TTY to (columns, rows); the error says why it could not.
pub type Resizer = Arc<dyn Fn(u16, u16) -> futures_util::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A shell on a TTY in a workload, as the dispatcher hands it over from the backend that ran
/// it: output (stdout and stderr, merged by the TTY), input and resizer. Dropping it detaches.
pub struct Terminal {
    /// The shell that runs (`/bin/bash` or `/bin/sh`).
    pub program: String,
    pub output: futures_util::stream::BoxStream<'static, std::io::Result<Vec<u8>>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    pub resize: Resizer,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

/// What a terminal answers when no backend can run one.
pub fn no_terminal() -> molecule_domain::TerminalFailure {
    molecule_domain::TerminalFailure::Unsupported(
        "no provisioner is configured (MOLECULE_BACKEND): a terminal runs in a workload".into(),
    )
}

/// What a file operation answers when no backend can run it.
pub fn no_files() -> molecule_domain::FileFailure {
    molecule_domain::FileFailure::NoBackend(
        "no provisioner is configured (MOLECULE_BACKEND): workload files live with a backend".into(),
    )
}

/// The hooks of a platform with no provisioner and no plugins.
#[derive(Debug, Default)]
pub struct NoHooks;

impl WorkloadHooks for NoHooks {}

/// Runs several hook sets in order (the dispatcher's, the memory layer's, …).
#[derive(Default, Clone)]
pub struct HookChain(pub Vec<Arc<dyn WorkloadHooks>>);

#[async_trait::async_trait]
impl WorkloadHooks for HookChain {
    fn has_provisioner(&self) -> bool {
        self.0.iter().any(|h| h.has_provisioner())
    }
    async fn restart(&self, id: Uuid, reset_session: bool) -> RestartOutcome {
        match self.0.iter().find(|h| h.has_provisioner()) {
            Some(h) => h.restart(id, reset_session).await,
            None => RestartOutcome::NoProvisioner,
        }
    }
    async fn stop_one(&self, id: Uuid) -> Result<(), HookError> {
        for h in &self.0 {
            h.stop_one(id).await?;
        }
        Ok(())
    }
    async fn provision(&self, id: Uuid) {
        for h in &self.0 {
            h.provision(id).await;
        }
    }
    async fn stop(&self, ids: &[Uuid]) -> Vec<StopFailure> {
        let mut failures = Vec::new();
        for h in &self.0 {
            failures.extend(h.stop(ids).await);
        }
        failures
    }
    async fn purge(&self, ids: &[Uuid]) {
        for h in &self.0 {
            h.purge(ids).await;
        }
    }
    async fn is_running(&self, id: Uuid) -> Option<bool> {
        match self.0.iter().find(|h| h.has_provisioner()) {
            Some(h) => h.is_running(id).await,
            None => None,
        }
    }
    async fn bootstrap_failed(
        &self,
        id: Uuid,
        reason: molecule_domain::FailureReason,
        payload: serde_json::Value,
    ) -> Result<bool, HookError> {
        match self.0.iter().find(|h| h.has_provisioner()) {
            Some(h) => h.bootstrap_failed(id, reason, payload).await,
            None => Ok(false),
        }
    }
    async fn files(
        &self,
        id: Uuid,
        op: molecule_domain::FileOp,
    ) -> Result<molecule_domain::FileAnswer, molecule_domain::FileFailure> {
        match self.0.iter().find(|h| h.has_provisioner()) {
            Some(h) => h.files(id, op).await,
            None => Err(no_files()),
        }
    }
    async fn terminal(&self, id: Uuid) -> Result<Terminal, molecule_domain::TerminalFailure> {
        match self.0.iter().find(|h| h.has_provisioner()) {
            Some(h) => h.terminal(id).await,
            None => Err(no_terminal()),
        }
    }
}
