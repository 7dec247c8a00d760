//! `molecule-approvals`: human (or ancestor) decisions on what an agent wants to do.
//!
//! Owns: the `approval_requests` table (`store`): a request (checked, with its deadline), the
//! lists, a decision (only the operator or an **ancestor** of the requester decides; the
//! requester itself never does), a withdrawal (only the requester), expiry (a request nobody
//! decided by its `expires_at` becomes `expired`), and the events each change sends through
//! the tree: `APPROVAL_REQUESTED`, `APPROVAL_ESCALATED` on the parent, the original canvas's
//! `APPROVAL_APPROVED`/`APPROVAL_DENIED`, `APPROVAL_WITHDRAWN`, and `APPROVAL_DECIDED`
//! (`{approval_id, status, decided_by}`) at every end, which a waiting agent listens for.
//! [`wait`] waits for that end on the event bus, expiring the request itself at its deadline.
//!
//! Must not know: HTTP or MCP (the routes and the `request_approval` tool call in), tokens
//! (the caller says who decides as a [`Decider`]), what an action means.

pub mod store;
pub mod wait;

pub use store::{Approval, Approvals, Decider, NewApproval};
