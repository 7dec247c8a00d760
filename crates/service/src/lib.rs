//! `molecule-service`: workspace-server's use-cases, composed.
//!
//! Owns: [`Services`], which holds one of each domain crate's use-case sets (the tree, the
//! vault, messaging, memory; schedules, fired through messaging) wired to the same pool,
//! event bus and hooks; the use-cases that
//! span them: create (`create`: the row, the model and secrets and the initial memories in
//! one change), patch and delete (which keep memory's scopes and storage in step with the
//! tree), org import (`org`), and the `/templates` listing and create's template preflight
//! (`templates`); `testing` (feature `testing`: fixtures for the tests of the crates above).
//!
//! Must not know: actix, OpenAPI or any HTTP type; backends; any table's SQL (each domain
//! crate owns its own). It adds no storage of its own: a new area gets a crate of its own.

pub mod create;
pub mod org;
pub mod templates;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use molecule_db::Pool;
pub use molecule_memory::Memory;
pub use molecule_messaging::Messaging;
pub use molecule_tree::{
    EventBus, HookChain, HookError, NoHooks, Result, ServiceConfig, ServiceError, Tree, WorkloadHooks,
};
pub use molecule_vault::Vault;

/// A message from no workspace (the operator's scheduler, a chat, a webhook) through the A2A
/// proxy: its checks, its queue for a busy agent; `via` names a system caller.
async fn send_as(
    messaging: &Messaging,
    target: uuid::Uuid,
    body: serde_json::Value,
    via: Option<String>,
) -> Result<molecule_api::a2a::ProxyOutcome> {
    messaging
        .proxy_a2a(molecule_messaging::proxy::ProxyRequest {
            target,
            caller: None,
            body,
            headers: Vec::new(),
            via,
        })
        .await
}

/// The use-cases of workspace-server. Each domain's are reached through its accessor
/// ([`Services::tree`], [`Services::vault`], [`Services::messaging`], [`Services::memory`]);
/// the ones that span domains are methods here.
#[derive(Clone)]
pub struct Services {
    tree: Tree,
    vault: Vault,
    messaging: Messaging,
    memory: Memory,
    /// The workspace templates under `CONFIGS_DIR`.
    templates: molecule_templates::Registry,
    /// The channels' process-wide part (vendors' client, knobs, this replica's pollers).
    channels: Arc<molecule_channels::Shared>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("config", self.tree.config()).finish()
    }
}

impl Services {
    /// Fails only if the TLS backend cannot initialise (the outbound A2A client).
    pub fn new(pool: Pool, config: ServiceConfig) -> Result<Self> {
        let tree = Tree::new(pool.clone(), config).with_hooks(Self::chain(None, &pool));
        let vault = Vault::new(tree.clone());
        let messaging = Messaging::new(tree.clone(), vault.clone())?;
        let memory = Memory::new(tree.clone());
        let vendors = molecule_channels::vendor::Vendors::new(molecule_channels::vendor::Bases::default())
            .map_err(|e| ServiceError::internal("building the chat vendors' HTTP client", e))?;
        Ok(Self {
            tree,
            vault,
            messaging,
            memory,
            templates: molecule_templates::Registry::default(),
            channels: molecule_channels::Shared::new(
                vendors,
                molecule_channels::Settings {
                    poller_lease: molecule_channels::DEFAULT_POLLER_LEASE,
                    poll_wait: molecule_channels::DEFAULT_POLL_WAIT,
                    ..Default::default()
                },
            ),
        }
        .observe_drains())
    }

    /// The chat channels with their vendors and knobs (the binary's configuration).
    pub fn with_channels(
        mut self,
        vendors: molecule_channels::vendor::Vendors,
        settings: molecule_channels::Settings,
    ) -> Self {
        self.channels = molecule_channels::Shared::new(vendors, settings);
        self.observe_drains()
    }

    /// The chat channels: messages go through messaging's A2A proxy as `channel:<type>`
    /// (GitHub's as `webhook:github`); GitHub's triggers make schedules due.
    pub fn channels(&self) -> molecule_channels::Channels {
        self.channels_over(self.messaging.clone())
    }

    fn channels_over(&self, messaging: Messaging) -> molecule_channels::Channels {
        let deliver: molecule_channels::Deliver = Arc::new(move |target, body, via| {
            let messaging = messaging.clone();
            Box::pin(async move { send_as(&messaging, target, body, Some(via)).await })
        });
        let schedules = molecule_schedules::Schedules::new(self.tree.pool().clone());
        let trigger: molecule_channels::Trigger = Arc::new(move |workspace, patterns| {
            let schedules = schedules.clone();
            Box::pin(async move { schedules.trigger_named(workspace, patterns).await })
        });
        molecule_channels::Channels::new(
            self.tree.clone(),
            self.vault.keyring().clone(),
            deliver,
            Some(trigger),
            self.channels.clone(),
        )
    }

    /// Tells the channels of every answer the queue drains, so a busy agent's answer to a chat
    /// message still reaches the chat. Rebuilt whenever the parts it holds change.
    fn observe_drains(mut self) -> Self {
        let channels = self.channels_over(self.messaging.clone());
        let observer: molecule_messaging::DrainObserver = Arc::new(move |d| {
            let channels = channels.clone();
            Box::pin(async move {
                channels
                    .on_queue_answer(molecule_channels::QueueAnswer {
                        workspace_id: d.workspace_id,
                        message_id: d.message_id,
                        status: d.status,
                        body: d.body,
                    })
                    .await;
            })
        });
        self.messaging = self.messaging.with_drain_observer(observer);
        self
    }

    /// The workload hooks (the dispatcher, when there is one) followed by the domains that act
    /// on removals themselves: schedules disable a removed workspace's schedules.
    fn chain(hooks: Option<Arc<dyn WorkloadHooks>>, pool: &Pool) -> Arc<dyn WorkloadHooks> {
        let schedules: Arc<dyn WorkloadHooks> = Arc::new(molecule_schedules::Schedules::new(pool.clone()));
        let channels: Arc<dyn WorkloadHooks> = Arc::new(molecule_channels::RemovalHook(pool.clone()));
        Arc::new(HookChain(hooks.into_iter().chain([schedules, channels]).collect()))
    }

    /// The schedules and their firing. A fire goes through messaging's A2A proxy as the
    /// operator's own messages do (no calling workspace): a busy agent's prompt waits in its
    /// queue, a hibernated one is woken.
    pub fn scheduler(&self) -> molecule_schedules::Scheduler {
        let messaging = self.messaging.clone();
        let deliver: molecule_schedules::Deliver = Arc::new(move |target, body| {
            let messaging = messaging.clone();
            Box::pin(async move { send_as(&messaging, target, body, None).await })
        });
        let tree = self.tree.clone();
        let runs_own: molecule_schedules::RunsOwnScheduler = Arc::new(move |id| {
            let tree = tree.clone();
            Box::pin(async move { tree.runs_own_scheduler(id).await })
        });
        let (ambient_channels, post_channels) = (self.channels(), self.channels());
        let ambient: molecule_schedules::fire::Ambient = Arc::new(move |ws| {
            let channels = ambient_channels.clone();
            Box::pin(async move { channels.ambient_context(ws).await })
        });
        let post: molecule_schedules::fire::AutoPost = Arc::new(move |ws, body| {
            let channels = post_channels.clone();
            Box::pin(async move { channels.auto_post(ws, body).await })
        });
        molecule_schedules::Scheduler::new(self.tree.pool().clone(), deliver)
            .with_runtime_schedulers(runs_own)
            .with_chat(ambient, post)
            .with_fire_lease(self.tree.config().schedule_fire_lease)
    }

    /// Approval requests and their decisions (the wait bounded by `APPROVAL_TIMEOUT_MINUTES`).
    pub fn approvals(&self) -> molecule_approvals::Approvals {
        molecule_approvals::Approvals::new(self.tree.clone(), self.tree.config().approval_timeout)
    }

    /// Platform instructions and the text an agent reads at boot.
    pub fn instructions(&self) -> molecule_instructions::Instructions {
        molecule_instructions::Instructions::new(self.tree.clone())
    }

    /// The workspaces' config blobs.
    pub fn config_blob(&self) -> molecule_workspace_config::ConfigBlob {
        molecule_workspace_config::ConfigBlob::new(self.tree.clone())
    }

    /// The workspaces' agent assignments.
    pub fn agents(&self) -> molecule_workspace_config::Agents {
        molecule_workspace_config::Agents::new(self.tree.clone())
    }

    /// The workspaces' key/value memory.
    pub fn kv_memory(&self) -> molecule_kv_memory::KvMemory {
        molecule_kv_memory::KvMemory::new(self.tree.clone())
    }

    /// Hands every domain the current tree and vault (after one of them was rebuilt).
    fn rewire(mut self) -> Self {
        self.vault = self.vault.with_tree(self.tree.clone());
        self.messaging = self.messaging.with_parts(self.tree.clone(), self.vault.clone());
        self.memory = self.memory.with_tree(self.tree.clone());
        self.observe_drains()
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn messaging(&self) -> &Messaging {
        &self.messaging
    }

    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The event bus (streams subscribe here; the binary starts its listener).
    pub fn bus(&self) -> &EventBus {
        self.tree.bus()
    }

    /// The delegation ledger (the binary starts its sweeper; admin routes read it).
    pub fn ledger(&self) -> &molecule_ledger::Ledger {
        self.messaging.ledger()
    }

    pub fn config(&self) -> &ServiceConfig {
        self.tree.config()
    }

    pub fn with_hooks(mut self, hooks: Arc<dyn WorkloadHooks>) -> Self {
        let chain = Self::chain(Some(hooks), self.tree.pool());
        self.tree = self.tree.with_hooks(chain);
        self.rewire()
    }

    pub fn with_messaging_config(mut self, config: molecule_messaging::proxy::MessagingConfig) -> Self {
        self.messaging = self.messaging.with_messaging_config(config);
        self
    }

    pub fn with_delegation_config(mut self, config: molecule_messaging::delegations::DelegationConfig) -> Self {
        self.messaging = self.messaging.with_delegation_config(config);
        self
    }

    /// Turns memory on: the tools and endpoints reach `client`, scoped by the live tree.
    pub fn with_memory(mut self, client: Arc<molecule_memory_contract::client::PluginClient>) -> Self {
        self.memory = self.memory.with_memory(client);
        self
    }

    /// Seals and opens secrets with `keyring` (plaintext until this is called).
    pub fn with_keyring(mut self, keyring: Arc<molecule_secrets::Keyring>) -> Self {
        self.vault = self.vault.with_keyring(keyring);
        self.rewire()
    }
}
