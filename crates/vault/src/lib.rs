//! `molecule-vault`: secrets at rest for workspace-server.
//!
//! Owns: workspace and global secrets (`secrets`: sealed rows, merged values for a workload,
//! the keyring boot check, rotate-key), a workspace's model and provider as the runtime's
//! secrets (`model`), the platform's inbound secret per workspace (`inbound`, with its cache)
//! and the one-time bootstrap codes that hand EC2 workloads their secrets (`bootstrap`).
//! Sealing itself is `molecule-secrets`' [`molecule_secrets::Keyring`].
//!
//! Must not know: HTTP, backends (a secret change restarts a workload through the tree's
//! `WorkloadHooks`), messaging or memory. The tree's rows are read and written through
//! `molecule-tree`.

pub mod bootstrap;
pub mod inbound;
pub mod model;
pub mod secrets;

use std::sync::Arc;

use molecule_db::Pool;
use molecule_tree::{Tree, WorkloadHooks};

pub use molecule_tree::{Result, ServiceError};

/// The secrets use-cases over the tree.
#[derive(Clone)]
pub struct Vault {
    pool: Pool,
    hooks: Arc<dyn WorkloadHooks>,
    tree: Tree,
    /// Seals and opens secrets (plaintext when no key is configured).
    keyring: Arc<molecule_secrets::Keyring>,
    /// The inbound secrets read lately.
    inbound: inbound::InboundCache,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    pub fn new(tree: Tree) -> Self {
        Self {
            pool: tree.pool().clone(),
            hooks: tree.hooks().clone(),
            tree,
            keyring: Arc::new(molecule_secrets::Keyring::plaintext()),
            inbound: inbound::InboundCache::default(),
        }
    }

    /// Takes the tree (with its hooks) the composer built last.
    pub fn with_tree(mut self, tree: Tree) -> Self {
        self.hooks = tree.hooks().clone();
        self.tree = tree;
        self
    }

    pub fn keyring(&self) -> &Arc<molecule_secrets::Keyring> {
        &self.keyring
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }
}
