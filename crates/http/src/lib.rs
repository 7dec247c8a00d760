//! `molecule-http`: the HTTP face of workspace-server.
//!
//! Owns: actix-web routing, request extraction and validation glue, auth extractors, the JSON
//! error shape (`{"error": "..."}` plus fields that say what to fix), health and readiness
//! probes, and serving with graceful shutdown.
//!
//! Must not know: SQL or business rules. Handlers call the service layer; they never build
//! queries. (Readiness asks `molecule-db` whether migrations are current.)

mod errors;
mod health;
mod server;

pub use errors::ApiError;
pub use server::{AppState, Server, bind};

/// Registers every route of workspace-server on `cfg`.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    health::routes(cfg);
}
