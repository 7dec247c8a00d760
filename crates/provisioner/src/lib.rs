//! `molecule-provisioner`: where workloads run.
//!
//! Owns: the [`Backend`] trait (provision, stop, remove_volumes, is_running, list_managed, the
//! workload file operations, and a [`Shell`] in a workload) and
//! its implementations (Docker through bollard, a local-process backend for development), the
//! naming and labelling of what they create, image references and the moving-tag rule, and
//! image selection (pin → runtime map → default).
//!
//! Must not know: the database, HTTP, or who calls it. Only `molecule-dispatcher` calls the
//! mutating methods (`cargo xtask lint-arch` checks it).
//!
//! Modules: `docker`, `local` and `ec2` (the backends), `image` (references and selection),
//! names, labels and the secrets file's format live in the crate root.

mod docker;
#[cfg(feature = "ec2")]
mod ec2;
mod image;
mod local;

use std::collections::BTreeMap;

pub use molecule_domain::{FileEntry, FileFailure, FileRoot, TerminalFailure};
use secrecy::{ExposeSecret, SecretString};

pub use docker::{DockerBackend, DockerConfig};
#[cfg(feature = "ec2")]
pub use ec2::{Ec2Backend, Ec2Config, TAG_TOKEN, user_data};
pub use image::{ImageRef, MOVING_TAGS, select_image};
pub use local::{LocalConfig, LocalProcessBackend};
use uuid::Uuid;

/// Label on everything this platform creates.
pub const LABEL_MANAGED: &str = "molecule.platform.managed";
/// Label naming the platform instance (so co-resident platforms never touch each other's).
pub const LABEL_INSTANCE: &str = "molecule.platform.instance";
/// Label naming the workspace.
pub const LABEL_WORKSPACE: &str = "molecule.workspace.id";
pub const LABEL_RUNTIME: &str = "molecule.workspace.runtime";

/// Container name of a workspace: the full id, never truncated.
pub fn container_name(id: Uuid) -> String {
    format!("ws-{id}")
}

/// Volume names of a workspace: configs and workspace.
pub fn volume_names(id: Uuid) -> [String; 2] {
    [format!("ws-{id}-configs"), format!("ws-{id}-workspace")]
}

/// The claude-code session volume (`/root/.claude/sessions`), which a reset removes first.
pub fn session_volume_name(id: Uuid) -> String {
    format!("ws-{id}-claude-sessions")
}

/// Where the claude-code session volume is mounted.
pub const SESSION_MOUNT: &str = "/root/.claude/sessions";

/// The tiers' resource limits (`TIER{n}_MEMORY_MB`, `TIER{n}_CPU_SHARES`) and whether tiers 3
/// and 4 get the original's host privileges (`MOLECULE_ALLOW_PRIVILEGED_TIERS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    pub memory_mb: [u64; 4],
    /// 1024 = one CPU.
    pub cpu_shares: [u64; 4],
    pub allow_privileged: bool,
}

impl Default for Tiers {
    fn default() -> Self {
        Self {
            memory_mb: [512, 512, 2048, 4096],
            cpu_shares: [1024, 1024, 2048, 4096],
            allow_privileged: false,
        }
    }
}

/// What a tier makes of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierShape {
    pub memory_bytes: i64,
    pub cpu_shares: i64,
    /// A hard limit of `cpu_shares / 1024` CPUs.
    pub nano_cpus: i64,
    /// T1: read-only root filesystem, tmpfs `/tmp`, and the configs volume only.
    pub locked_down: bool,
    pub privileged: bool,
    pub host_pid: bool,
    pub host_network: bool,
    pub docker_socket: bool,
}

impl Tiers {
    /// The shape of `tier` (an unknown tier is tier 2, as in the original).
    pub fn shape(&self, tier: i32) -> TierShape {
        let t = if (1..=4).contains(&tier) { tier } else { 2 };
        let i = usize::try_from(t - 1).unwrap_or(1);
        let mb = i64::try_from(self.memory_mb[i]).unwrap_or(i64::MAX / (1024 * 1024));
        let shares = i64::try_from(self.cpu_shares[i]).unwrap_or(1024);
        let privileged = self.allow_privileged && t >= 3;
        TierShape {
            memory_bytes: mb.saturating_mul(1024 * 1024),
            cpu_shares: shares,
            nano_cpus: shares.saturating_mul(1_000_000_000) / 1024,
            locked_down: t == 1,
            privileged,
            host_pid: privileged,
            host_network: privileged && t == 4,
            docker_socket: privileged && t == 4,
        }
    }
}

/// The variable that tells the agent where its secrets file is.
pub const SECRETS_FILE_ENV: &str = "MOLECULE_SECRETS_FILE";
/// The secrets file's place on the configs volume, relative to the volume's root.
pub const SECRETS_FILE_NAME: &str = ".molecule/secrets.json";

/// The secrets file's bytes: one JSON object of the secret environment.
pub fn secrets_file(env: &BTreeMap<String, SecretString>) -> Vec<u8> {
    let map: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
    // A map of strings always serializes.
    serde_json::to_vec(&map).unwrap_or_default()
}

/// What to run for a workspace.
#[derive(Debug, Clone)]
pub struct ProvisionSpec {
    pub workspace_id: Uuid,
    pub runtime: String,
    pub tier: i32,
    /// The image to run (chosen by the caller with [`select_image`]); backends without images
    /// ignore it.
    pub image: ImageRef,
    /// The agent's public environment (WORKSPACE_ID, PLATFORM_URL, MODEL, …): what a backend
    /// may show through its API (`docker inspect`).
    pub env: BTreeMap<String, String>,
    /// The agent's secret environment (its secrets, then MOLECULE_WORKSPACE_TOKEN): never put
    /// where the backend's API shows it. Docker and local deliver it as a mode-0600 file
    /// ([`secrets_file`]) named by `MOLECULE_SECRETS_FILE`.
    pub secret_env: BTreeMap<String, SecretString>,
    /// Files to write under the workload's `/configs` before it starts (relative path →
    /// bytes): the template's files and the generated `config.yaml`. Empty after the first
    /// seeding, so later provisions keep what the workload or an operator changed there.
    pub config_files: BTreeMap<String, Vec<u8>>,
    /// Start from a fresh session (drop session state kept between restarts).
    pub reset_session: bool,
}

/// What a backend started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Where the agent will listen (it registers this itself too).
    pub url: Option<String>,
    /// Backend-specific handle: container id, instance id, pid.
    pub instance_id: Option<String>,
    /// The image reference run and its content digest, when the backend knows them.
    pub image: Option<String>,
    pub image_digest: Option<String>,
}

/// One resource a backend manages, as listed for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedResource {
    pub resource_id: String,
    pub workspace_id: Option<Uuid>,
    /// The platform instance label; resources of other instances must never be touched.
    pub platform_instance: Option<String>,
    pub running: bool,
    /// When the resource was created (seconds since the epoch), if the backend knows.
    pub created_unix: Option<i64>,
}

/// Why a backend call failed. The text is what ends up in `last_sample_error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("image {image} cannot be obtained: {reason}")]
    ImageUnavailable { image: String, reason: String },
    #[error("{backend} backend unavailable: {reason}")]
    Unavailable { backend: &'static str, reason: String },
    #[error("{0}")]
    Failed(String),
}

/// How a backend hands a workload its secret environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDelivery {
    /// `ProvisionSpec::secret_env` is written as a private file the agent reads.
    File,
    /// The backend's launch parameters are readable through its API: it takes no secrets, only
    /// a one-time `MOLECULE_BOOTSTRAP_CODE` in the public environment that the agent redeems
    /// at `POST /registry/bootstrap`.
    Bootstrap,
}

/// Which workload's files a file operation is on, and how to reach them when it is stopped.
#[derive(Debug, Clone)]
pub struct FileTarget {
    pub workspace_id: Uuid,
    pub runtime: String,
    pub root: FileRoot,
    /// The image the workload runs (present locally once it has run): Docker starts a helper
    /// from it on the volumes when the workload is stopped, so no image is ever pulled.
    pub image: ImageRef,
}

fn files_unsupported(backend: &str) -> FileFailure {
    FileFailure::Unsupported(format!(
        "the {backend} backend cannot reach a workload's files from the platform"
    ))
}

/// A place workloads run. Only the dispatcher calls `provision`, `stop` and `remove_volumes`
/// (and the file operations, which it routes to the backend that ran the workload).
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Short name recorded on the workspace row (`docker`, `local`, `ec2`).
    fn name(&self) -> &'static str;
    /// How this backend hands over secrets (a file unless it says otherwise).
    fn secret_delivery(&self) -> SecretDelivery {
        SecretDelivery::File
    }
    /// Starts the workload; replaces a previous one of the same workspace.
    async fn provision(&self, spec: &ProvisionSpec) -> Result<Provisioned, BackendError>;
    /// Stops and removes the workload. Nothing to stop is success.
    async fn stop(&self, workspace_id: Uuid) -> Result<(), BackendError>;
    /// Removes the workspace's persistent data. Nothing to remove is success.
    async fn remove_volumes(&self, workspace_id: Uuid) -> Result<(), BackendError>;
    async fn is_running(&self, workspace_id: Uuid) -> Result<bool, BackendError>;
    /// Everything this backend manages (of every platform instance: callers filter).
    async fn list_managed(&self) -> Result<Vec<ManagedResource>, BackendError>;
    /// The server is exiting: stop what cannot outlive it. Containers and instances are left
    /// running for the next server to find (the default); the local backend's processes are
    /// this server's children, which no later server could stop or tell apart from the ones
    /// it would start, so they stop with it. Returns how many workloads were stopped.
    async fn on_exit(&self) -> usize {
        0
    }
    /// Entries under `path` (checked, relative; `""` is the root) down to `depth` levels.
    async fn list_files(&self, t: &FileTarget, path: &str, depth: u8) -> Result<Vec<FileEntry>, FileFailure> {
        let _ = (t, path, depth);
        Err(files_unsupported(self.name()))
    }
    /// The bytes of file `path` (checked, relative, not empty).
    async fn read_file(&self, t: &FileTarget, path: &str) -> Result<Vec<u8>, FileFailure> {
        let _ = (t, path);
        Err(files_unsupported(self.name()))
    }
    /// Writes file `path`, creating its directories.
    async fn write_file(&self, t: &FileTarget, path: &str, bytes: &[u8]) -> Result<(), FileFailure> {
        let _ = (t, path, bytes);
        Err(files_unsupported(self.name()))
    }
    /// Deletes file or directory `path` (recursively).
    async fn delete_file(&self, t: &FileTarget, path: &str) -> Result<(), FileFailure> {
        let _ = (t, path);
        Err(files_unsupported(self.name()))
    }
    /// An interactive shell on a TTY in the running workload (`/bin/bash`, else `/bin/sh`).
    async fn open_shell(&self, workspace_id: Uuid) -> Result<Shell, TerminalFailure> {
        let _ = workspace_id;
        Err(TerminalFailure::Unsupported(format!(
            "the {} backend cannot open a terminal into its workloads",
            self.name()
        )))
    }
}

/// Resizes a shell's TTY to (columns, rows); the error says why it could not.
pub type Resizer =
    std::sync::Arc<dyn Fn(u16, u16) -> futures_util::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A shell attached to a TTY in a workload: its output (stdout and stderr, merged by the TTY),
/// its input, and its resizer. Dropping it detaches.
pub struct Shell {
    /// The shell that runs (`/bin/bash` or `/bin/sh`).
    pub program: String,
    pub output: futures_util::stream::BoxStream<'static, std::io::Result<Vec<u8>>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    pub resize: Resizer,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}
