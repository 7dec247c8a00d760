//! `molecule-memory`: agent memory for workspace-server.
//!
//! Owns: the memory use-cases behind the MCP tools and the HTTP memory endpoints (`memory`:
//! scope from the live tree through `molecule-namespace`, the plugin through the contract's
//! client, redaction, the org wrap, audit rows), the operator paths (`memory_admin`: export
//! paged per namespace, import by id, edit, `initial_memories`) and the original's table into
//! the plugin (`memory_backfill`, with the `memory_backfill_progress` table), and the resolver
//! that hands the live tree's lineages to `molecule-namespace`'s rules (`scopes`).
//!
//! Must not know: how the plugin stores memories (Memory Plugin v1 is the boundary), MCP or
//! HTTP, backends, secrets at rest. The tree is read through `molecule-tree`.

pub mod memory;
pub mod memory_admin;
pub mod memory_backfill;
pub mod scopes;

use molecule_db::Pool;
use molecule_tree::EventBus;

pub use memory::{MemoryError, MemoryLayer, MemoryResult};
pub use molecule_tree::{Result, ServiceError};

/// The memory use-cases over the tree; memory is off until [`Memory::with_memory`].
#[derive(Clone)]
pub struct Memory {
    pool: Pool,
    bus: EventBus,
    workspaces: molecule_tree::Tree,
    /// The memory plugin and the resolver; `None` when `MEMORY_PLUGIN_URL` is unset.
    memory: Option<MemoryLayer>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("configured", &self.memory.is_some())
            .finish_non_exhaustive()
    }
}

impl Memory {
    pub fn new(workspaces: molecule_tree::Tree) -> Self {
        Self {
            pool: workspaces.pool().clone(),
            bus: workspaces.bus().clone(),
            workspaces,
            memory: None,
        }
    }

    /// Takes the tree (with its hooks) the composer built last.
    pub fn with_tree(mut self, workspaces: molecule_tree::Tree) -> Self {
        self.workspaces = workspaces;
        self
    }
}
