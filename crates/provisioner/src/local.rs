//! The local-process backend, for development on a machine without Docker: the runtime command
//! runs as a child process with the same environment, its output in `<data_dir>/<id>.log`;
//! the secret environment is a mode-0600 file in its data dir (`MOLECULE_SECRETS_FILE`), and
//! `<data_dir>/<id>/` is its `/configs` (seeded files are written there).
//! It is never selected automatically in production.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{
    Backend, BackendError, FileEntry, FileFailure, FileRoot, FileTarget, ManagedResource, ProvisionSpec, Provisioned,
};

/// Writes `body` to `path` readable by its owner only (its directory too), replacing it.
fn write_private(path: &std::path::Path, body: &[u8]) -> Result<(), BackendError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| BackendError::Failed(format!("{}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    // A file left by an older build may have other bits: narrow them before writing.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(body).map_err(fail)
}

#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The agent program (the reference agent by default).
    pub command: PathBuf,
    /// Logs and per-workspace data.
    pub data_dir: PathBuf,
    pub platform_instance: String,
}

#[derive(Debug)]
pub struct LocalProcessBackend {
    config: LocalConfig,
    children: Mutex<HashMap<Uuid, Child>>,
}

impl LocalProcessBackend {
    pub fn new(config: LocalConfig) -> Self {
        Self {
            config,
            children: Mutex::new(HashMap::new()),
        }
    }

    async fn terminate(child: &mut Child) {
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = child.kill().await;
    }
}

fn io_failure(path: &std::path::Path, e: &std::io::Error) -> FileFailure {
    if e.kind() == std::io::ErrorKind::NotFound {
        FileFailure::NotFound(format!("{}: no such file or directory", path.display()))
    } else {
        FileFailure::Failed(format!("{}: {e}", path.display()))
    }
}

/// `rel` under `root`, refusing any existing component that is a symlink (a link could lead
/// out of the root). Components that do not exist yet are fine (a write creates them).
fn resolve(root: &std::path::Path, rel: &str) -> Result<PathBuf, FileFailure> {
    let mut at = root.to_path_buf();
    for seg in rel.split('/').filter(|s| !s.is_empty()) {
        at.push(seg);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(FileFailure::Invalid(format!(
                    "path: {seg:?} is a symbolic link; the Files API does not follow links out of its root"
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(io_failure(&at, &e)),
        }
    }
    Ok(root.join(rel))
}

impl LocalProcessBackend {
    /// Where a root lives for this backend: `<data>/<id>` is `/configs`.
    fn root_dir(&self, t: &FileTarget) -> Result<PathBuf, FileFailure> {
        let configs = self.config.data_dir.join(t.workspace_id.to_string());
        Ok(match t.root {
            FileRoot::Configs => configs,
            FileRoot::Plugins => configs.join("plugins"),
            FileRoot::Workspace => self.config.data_dir.join(format!("{}-workspace", t.workspace_id)),
            FileRoot::Home => {
                return Err(FileFailure::Unsupported(
                    "the local backend's agents run as the server's user: their /home is the host's and is not served"
                        .into(),
                ));
            }
        })
    }
}

fn walk(dir: &std::path::Path, prefix: &str, depth: u8, out: &mut Vec<FileEntry>) -> Result<(), FileFailure> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io_failure(dir, &e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if out.len() >= molecule_domain::MAX_LIST_ENTRIES {
            return Ok(());
        }
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let dir = meta.is_dir();
        out.push(FileEntry {
            path: path.clone(),
            size: if dir { 0 } else { meta.len() },
            dir,
        });
        if dir && depth > 1 {
            walk(&e.path(), &path, depth - 1, out)?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Backend for LocalProcessBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn open_shell(&self, _workspace_id: Uuid) -> Result<crate::Shell, crate::TerminalFailure> {
        Err(crate::TerminalFailure::Unsupported(
            "the local backend runs workloads as processes of this server, with no TTY of their own; open a shell on the server host instead".into(),
        ))
    }

    async fn provision(&self, spec: &ProvisionSpec) -> Result<Provisioned, BackendError> {
        let id = spec.workspace_id;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| BackendError::Failed(format!("no free port for the agent: {e}")))?;
        let url = format!("http://127.0.0.1:{port}");
        let dir = self.config.data_dir.join(id.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| BackendError::Failed(format!("{}: {e}", dir.display())))?;
        for (rel, bytes) in &spec.config_files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| BackendError::Failed(format!("{}: {e}", parent.display())))?;
            }
            std::fs::write(&path, bytes).map_err(|e| BackendError::Failed(format!("{}: {e}", path.display())))?;
        }
        let secrets_path = dir.join(crate::SECRETS_FILE_NAME);
        write_private(&secrets_path, &crate::secrets_file(&spec.secret_env))?;
        let log_path = self.config.data_dir.join(format!("{id}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| BackendError::Failed(format!("{}: {e}", log_path.display())))?;
        let log2 = log.try_clone().map_err(|e| BackendError::Failed(e.to_string()))?;
        let mut children = self.children.lock().await;
        if let Some(mut old) = children.remove(&id) {
            Self::terminate(&mut old).await;
        }
        let child = Command::new(&self.config.command)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(&spec.env)
            .env("AGENT_PORT", port.to_string())
            .env("AGENT_URL", &url)
            .env("WORKSPACE_CONFIG_PATH", &dir)
            .env(crate::SECRETS_FILE_ENV, &secrets_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BackendError::Failed(format!("cannot start {}: {e}", self.config.command.display())))?;
        let pid = child.id().map(|p| p.to_string());
        children.insert(id, child);
        Ok(Provisioned {
            url: Some(url),
            instance_id: pid,
            image: None,
            image_digest: None,
        })
    }

    async fn on_exit(&self) -> usize {
        let children: Vec<(Uuid, Child)> = self.children.lock().await.drain().collect();
        let stopped = children.len();
        futures_util::future::join_all(children.into_iter().map(|(id, mut child)| async move {
            Self::terminate(&mut child).await;
            tracing::info!(workspace_id = %id, "local workload stopped with the server");
        }))
        .await;
        stopped
    }

    async fn stop(&self, workspace_id: Uuid) -> Result<(), BackendError> {
        let child = self.children.lock().await.remove(&workspace_id);
        if let Some(mut c) = child {
            Self::terminate(&mut c).await;
        }
        Ok(())
    }

    async fn remove_volumes(&self, workspace_id: Uuid) -> Result<(), BackendError> {
        let dir = self.config.data_dir.join(workspace_id.to_string());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BackendError::Failed(format!("{}: {e}", dir.display()))),
        }
    }

    async fn is_running(&self, workspace_id: Uuid) -> Result<bool, BackendError> {
        let mut children = self.children.lock().await;
        Ok(match children.get_mut(&workspace_id) {
            Some(c) => c.try_wait().map(|s| s.is_none()).unwrap_or(false),
            None => false,
        })
    }

    async fn list_files(&self, t: &FileTarget, path: &str, depth: u8) -> Result<Vec<FileEntry>, FileFailure> {
        let root = self.root_dir(t)?;
        let dir = resolve(&root, path)?;
        let meta = std::fs::metadata(&dir).map_err(|e| io_failure(&dir, &e))?;
        if !meta.is_dir() {
            return Err(FileFailure::Invalid(format!(
                "path: {path:?} is a file; read it with GET /files/{path}"
            )));
        }
        let mut out = Vec::new();
        walk(&dir, path, depth.max(1), &mut out)?;
        Ok(out)
    }

    async fn read_file(&self, t: &FileTarget, path: &str) -> Result<Vec<u8>, FileFailure> {
        let file = resolve(&self.root_dir(t)?, path)?;
        let meta = std::fs::metadata(&file).map_err(|e| io_failure(&file, &e))?;
        if meta.is_dir() {
            return Err(FileFailure::Invalid(format!(
                "path: {path:?} is a directory; list it with GET /files?path={path}"
            )));
        }
        if meta.len() > molecule_domain::MAX_FILE_BYTES as u64 {
            return Err(FileFailure::TooLarge(format!(
                "{path:?} is {} bytes; the Files API reads at most {}",
                meta.len(),
                molecule_domain::MAX_FILE_BYTES
            )));
        }
        std::fs::read(&file).map_err(|e| io_failure(&file, &e))
    }

    async fn write_file(&self, t: &FileTarget, path: &str, bytes: &[u8]) -> Result<(), FileFailure> {
        let file = resolve(&self.root_dir(t)?, path)?;
        if file.is_dir() {
            return Err(FileFailure::Invalid(format!("path: {path:?} is a directory")));
        }
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_failure(parent, &e))?;
        }
        std::fs::write(&file, bytes).map_err(|e| io_failure(&file, &e))
    }

    async fn delete_file(&self, t: &FileTarget, path: &str) -> Result<(), FileFailure> {
        let file = resolve(&self.root_dir(t)?, path)?;
        let meta = std::fs::symlink_metadata(&file).map_err(|e| io_failure(&file, &e))?;
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(&file)
        } else {
            std::fs::remove_file(&file)
        };
        removed.map_err(|e| io_failure(&file, &e))
    }

    async fn list_managed(&self) -> Result<Vec<ManagedResource>, BackendError> {
        let mut children = self.children.lock().await;
        Ok(children
            .iter_mut()
            .map(|(id, c)| ManagedResource {
                resource_id: c.id().map(|p| p.to_string()).unwrap_or_default(),
                workspace_id: Some(*id),
                platform_instance: Some(self.config.platform_instance.clone()),
                running: c.try_wait().map(|s| s.is_none()).unwrap_or(false),
                created_unix: None,
            })
            .collect())
    }
}
