//! `molecule-domain`: the platform's vocabulary.
//!
//! Owns typed ids, the workspace and delegation status vocabularies (with the delegation
//! transition rules), runtimes, memory namespace names and the memory contract's vocabularies
//! (namespace kinds, memory kinds and sources, plugin capabilities). Every SQL CHECK, partial-index
//! predicate and API allowlist elsewhere is derived from the lists defined here, or tested
//! against them.
//!
//! Must not know: I/O, async, SQL, HTTP. It is plain data and pure functions.
//!
//! Modules: `ids`, `workspace`, `delegation`, `activity`, `events`, `files` (workload file roots, path rules, file failures), `runtime`, `memory`, `model` (model slugs → `LLM_PROVIDER`, secret scopes),
//! `namespace`, `queue` (the A2A queue's statuses and priorities), `schedule` (schedule sources and run outcomes), `approval` (approval
//! statuses, instruction scopes, agent assignment statuses), `channel` (channel vendors, inbound message statuses), `terminal` (why a workload terminal could not open), and `vocab` (the `vocabulary!` macro and trait).

mod activity;
mod approval;
mod channel;
mod delegation;
mod events;
mod files;
mod ids;
mod memory;
mod model;
mod namespace;
mod queue;
mod runtime;
mod schedule;
mod terminal;
mod vocab;
mod workspace;

pub use activity::{ActivityStatus, ActivityType};
pub use approval::{AgentStatus, ApprovalStatus, InstructionScope};
pub use channel::{ChannelMessageStatus, ChannelType};
pub use delegation::{DelegationStatus, InvalidTransition};
pub use events::EventType;
pub use files::{
    FileAnswer, FileEntry, FileFailure, FileOp, FileRoot, MAX_FILE_BYTES, MAX_LIST_ENTRIES, RESERVED_CONFIGS_DIR,
    check_relative, is_reserved, sanitize_file_name,
};
pub use ids::{DelegationId, IdParseError, WorkspaceId};
pub use memory::{MemoryCapability, MemoryKind, MemorySource, NamespaceKind};
pub use model::{PROVIDER_PREFIXES, SecretScope, provider_for_model};
pub use namespace::{NamespaceError, NamespaceName};
pub use queue::{QueueStatus, priority};
pub use runtime::Runtime;
pub use schedule::{ScheduleHealthStatus, ScheduleRunStatus, ScheduleSource};
pub use terminal::TerminalFailure;
pub use vocab::{UnknownValue, Vocabulary};
pub use workspace::{
    DEGRADED_ERROR_RATE, DeliveryMode, FailureReason, HeartbeatHealth, MAX_TREE_DEPTH, RECOVERED_ERROR_RATE,
    StatusChange, WorkspaceName, WorkspaceNameError, WorkspaceStatus, heartbeat_transition,
};
