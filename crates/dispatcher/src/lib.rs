//! `molecule-dispatcher`: the ONLY caller of provisioner backends' `provision`, `stop` and
//! `remove_volumes` (`cargo xtask lint-arch` enforces it).
//!
//! Owns: provisioning (spawned and synchronous), the no-backend contract ("no provisioner
//! configured" → failed), panic isolation (a panicking backend fails the workspace with the
//! panic's message), a per-workspace gate and a global concurrency gate, stop with bounded
//! retry and a durable `LEAK_SUSPECT` event, restart coalescing, which backend provisioned a
//! workspace, and the provisioning-timeout sweeper (with its template loader).
//!
//! Must not know: HTTP. It plugs into the service layer as its [`WorkloadHooks`].
//!
//! Modules: `dispatch` (the dispatcher and its hooks), `timeout` (the provisioning-timeout sweeper), `templates` (its template loader), `reconcile`
//! (the leak reconciler).

mod dispatch;
mod reconcile;
mod timeout;

pub use dispatch::{Dispatcher, DispatcherConfig, StopError};
pub use molecule_api::hooks::RestartOutcome;
pub use molecule_service::WorkloadHooks;
pub use reconcile::ReconcileConfig;
pub use timeout::{TimeoutConfig, timeout_for};
