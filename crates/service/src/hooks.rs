//! Extension points filled by later layers: the dispatcher provisions and stops workloads,
//! the memory layer cleans up namespaces on purge. Until they are wired, every hook is a no-op.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

/// A workload that could not be stopped (the workspace is still marked removed).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StopFailure {
    pub workspace_id: Uuid,
    pub error: String,
}

/// What happens to workloads when the tree changes.
#[async_trait::async_trait]
pub trait WorkloadHooks: Send + Sync {
    /// A workspace was created and should be provisioned (detached from the request).
    async fn provision(&self, _id: Uuid) {}
    /// These workspaces were removed: stop their workloads and remove their volumes.
    async fn stop(&self, _ids: &[Uuid]) -> Vec<StopFailure> {
        Vec::new()
    }
    /// These rows were purged: drop whatever else belongs to them (memory namespaces, …).
    async fn purge(&self, _ids: &[Uuid]) {}
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
}
