//! `molecule-channels`: people talking to agents from chat (Telegram, Slack, Lark/Feishu,
//! Discord) and GitHub events waking them.
//!
//! Owns: [`verify`], the check of every inbound request against its channel row's
//! secret, per vendor, in constant time; [`chunk`], an answer cut into each vendor's message
//! sizes. The adapters (parse, send, typing, config schemas),
//! the `workspace_channels` table, routing through the A2A proxy and the Telegram pollers come
//! next (the channels issue).
//!
//! Must not know: HTTP frameworks, the database, the A2A proxy. Callers hand in header values
//! and the raw body.

pub mod chunk;
pub mod verify;
