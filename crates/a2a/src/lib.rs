//! Agent-to-agent messaging. A skeleton: the messaging issue fills it in.
//!
//! Owns (planned): the A2A proxy's rules (who may talk to whom in the tree, the URL policy,
//! JSON-RPC normalising across the v0.3 and v1.0 method names and headers) and the durable
//! message queue table with its enqueue, lease and drain statements. Must not know: actix (the
//! routes live in `molecule-http`) or backends (waking a paused workspace goes through the
//! service's `WorkloadHooks`).
