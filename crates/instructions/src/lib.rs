//! `molecule-instructions`: platform instructions, the operator's rules for agents.
//!
//! Owns: the `platform_instructions` table (`store`: create, list, update, delete, each
//! checked: the scope is `global` or `workspace`, a workspace rule names a live workspace,
//! titles and contents are counted in characters) and `resolve`: the text an agent puts first
//! in its system prompt, global rules then its own, each group by priority, in the original's
//! layout.
//!
//! Must not know: HTTP, tokens, how an agent builds its prompt.

pub mod store;

pub use store::{Instruction, InstructionChange, Instructions, Listing, NewInstruction, render};
