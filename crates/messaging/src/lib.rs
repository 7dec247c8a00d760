//! `molecule-messaging`: agent traffic through workspace-server.
//!
//! Owns: registration and heartbeats (`registry`), the hierarchy rule applied to the tree's
//! lineages, peers, discover and card updates (`discovery`), the A2A proxy (`proxy`: checks,
//! forward, the busy rule, the target cache, token usage), the queue drain on heartbeats, the
//! reaper, drop-stale, the queue view and budgets (`messaging`), delegations through the
//! ledger and a durable outbox (`delegations`), and hibernate and wake (`hibernation`).
//! The queue's table and statements are `molecule-a2a`'s; the ledger's are `molecule-ledger`'s.
//!
//! Must not know: actix or any HTTP type, backends (wakes and restarts go through the tree's
//! `WorkloadHooks`), memory. The tree's rows are read and written through `molecule-tree`, the
//! inbound secret through `molecule-vault`.

pub mod delegations;
pub mod discovery;
pub mod hibernation;
pub mod messaging;
pub mod proxy;
pub mod registry;

use std::sync::Arc;

use molecule_db::Pool;
use molecule_tree::{EventBus, ServiceConfig, Tree, WorkloadHooks};
use molecule_vault::Vault;
use uuid::Uuid;

pub use molecule_tree::{Result, ServiceError};

/// The messaging use-cases over the tree and the vault.
#[derive(Clone)]
pub struct Messaging {
    pool: Pool,
    bus: EventBus,
    hooks: Arc<dyn WorkloadHooks>,
    config: ServiceConfig,
    tree: Tree,
    vault: Vault,
    ledger: molecule_ledger::Ledger,
    delegation: delegations::DelegationConfig,
    messaging: proxy::MessagingConfig,
    touches: proxy::Touches,
    targets: proxy::TargetCache,
    /// Outbound HTTP (A2A to agents).
    http: reqwest::Client,
    /// Told of every answer a queue drain delivered (the channels send a chat's reply).
    drained: Option<DrainObserver>,
}

/// An answer the queue drain got for a message that waited (a busy agent's).
#[derive(Debug, Clone)]
pub struct Drained {
    pub workspace_id: Uuid,
    /// The message's `messageId`.
    pub message_id: Option<String>,
    /// The system caller that sent it (`channel:telegram`), if one did.
    pub via: Option<String>,
    pub status: u16,
    pub body: Vec<u8>,
}

/// Called (on the draining replica) after a drained message's answer was recorded.
pub type DrainObserver = Arc<dyn Fn(Drained) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

impl std::fmt::Debug for Messaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messaging").finish_non_exhaustive()
    }
}

impl Messaging {
    /// Fails only if the TLS backend cannot initialise (the outbound A2A client).
    pub fn new(tree: Tree, vault: Vault) -> Result<Self> {
        Ok(Self {
            pool: tree.pool().clone(),
            bus: tree.bus().clone(),
            hooks: tree.hooks().clone(),
            config: tree.config().clone(),
            ledger: molecule_ledger::Ledger::new(tree.pool().clone()),
            tree,
            vault,
            delegation: delegations::DelegationConfig::default(),
            messaging: proxy::MessagingConfig::default(),
            touches: proxy::Touches::default(),
            targets: proxy::TargetCache::default(),
            // No redirects: an agent URL that redirects elsewhere is not followed. A builder
            // error is returned, never replaced by a default client that would follow them.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| ServiceError::internal("building the outbound HTTP client", e))?,
            drained: None,
        })
    }

    /// Takes the tree and vault (with their hooks) the composer built last.
    pub fn with_parts(mut self, tree: Tree, vault: Vault) -> Self {
        self.hooks = tree.hooks().clone();
        self.tree = tree;
        self.vault = vault;
        self
    }

    /// The delegation ledger (the binary starts its sweeper; admin routes read it).
    pub fn ledger(&self) -> &molecule_ledger::Ledger {
        &self.ledger
    }

    pub fn with_messaging_config(mut self, config: proxy::MessagingConfig) -> Self {
        self.messaging = config;
        self
    }

    /// Who is told of drained answers.
    pub fn with_drain_observer(mut self, observer: DrainObserver) -> Self {
        self.drained = Some(observer);
        self
    }

    pub fn with_delegation_config(mut self, config: delegations::DelegationConfig) -> Self {
        self.delegation = config;
        self
    }
}
