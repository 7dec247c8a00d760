//! The platform's tools as MCP (Model Context Protocol) tools. A skeleton: the MCP memory
//! issue fills it in, on the official `rmcp` SDK.
//!
//! Owns (planned): the tool definitions and their annotations, per-workspace rate limits, the
//! org wrap of memory results, and the audit of tool calls. Must not know: storage (it calls
//! the memory contract's client, the namespace resolver and service use-cases) or actix beyond
//! the mount that `molecule-http` gives it.
