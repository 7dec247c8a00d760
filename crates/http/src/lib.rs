//! `molecule-http`: the HTTP face of workspace-server.
//!
//! Owns: actix-web routing, auth extractors (admin bearer, workspace tokens, tenant guard),
//! the JSON error shape (`{"error": "..."}` plus fields that say what to fix), event streams
//! (WebSocket and SSE), health and readiness probes, the OpenAPI document generated from the
//! router, and serving with graceful shutdown.
//!
//! Must not know: SQL or business rules. Handlers call `molecule-service`; they never build
//! queries.
//!
//! Modules: `routes` (one module per resource), `auth`, `browser` (CORS and the security
//! headers), `limits` (the per-client rate limit), `observe` (per-request
//! Prometheus series), `errors` (JSON errors, request ids),
//! `health`, `state` (what every handler shares), `terminals` (the open workload terminals' cap
//! and idle deadline), `server` (middleware, serving).

mod auth;
pub mod browser;
mod errors;
mod health;
pub mod limits;
mod observe;
pub mod routes;
mod server;
mod state;
mod terminals;

pub use auth::Caller;
pub use errors::ApiError;
pub use server::{Server, app, bind, openapi, serve};
pub use state::{AppState, AuthConfig, MetricsRender};
pub use terminals::Terminals;
