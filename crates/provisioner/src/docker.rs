//! The Docker backend (bollard). Containers are `ws-<full id>`, volumes `ws-<id>-configs` and
//! `ws-<id>-workspace`; everything carries the managed, platform-instance and workspace labels.
//! The secret environment goes into the configs volume as a mode-0600 file, never into the
//! container's environment.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, StartContainerOptions, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::{
    Backend, BackendError, FileEntry, FileFailure, FileRoot, FileTarget, ImageRef, LABEL_INSTANCE, LABEL_MANAGED,
    LABEL_RUNTIME, LABEL_WORKSPACE, ManagedResource, ProvisionSpec, Provisioned, Resizer, SECRETS_FILE_ENV,
    SECRETS_FILE_NAME, Shell, TerminalFailure, container_name, secrets_file, volume_names,
};

/// Owner of the delivered secrets file: uid/gid 1000, the agent user of the runtime images
/// (root, which the reference agent runs as, reads it too).
const AGENT_UID: u64 = 1000;

/// A tar of what `/configs` gets before the start: the seeded config files (0644, their
/// directories 0755), then `.molecule/` (0700) and the secrets file (0600), all owned by
/// [`AGENT_UID`].
fn configs_archive(spec: &ProvisionSpec) -> Result<Vec<u8>, BackendError> {
    let io = |e: std::io::Error| BackendError::Failed(format!("building the /configs archive: {e}"));
    let body = secrets_file(&spec.secret_env);
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for path in spec.config_files.keys() {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            dirs.insert(parent.to_owned());
            at = parent;
        }
    }
    for d in &dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(AGENT_UID);
        h.set_gid(AGENT_UID);
        h.set_size(0);
        h.set_cksum();
        tar.append_data(&mut h, format!("{d}/"), std::io::empty()).map_err(io)?;
    }
    for (path, bytes) in &spec.config_files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(AGENT_UID);
        h.set_gid(AGENT_UID);
        h.set_size(bytes.len() as u64);
        h.set_cksum();
        tar.append_data(&mut h, path, bytes.as_slice()).map_err(io)?;
    }
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o700);
    dir.set_uid(AGENT_UID);
    dir.set_gid(AGENT_UID);
    dir.set_size(0);
    dir.set_cksum();
    let dir_name = SECRETS_FILE_NAME.split_once('/').map_or(".molecule", |(d, _)| d);
    tar.append_data(&mut dir, format!("{dir_name}/"), std::io::empty())
        .map_err(io)?;
    let mut file = tar::Header::new_gnu();
    file.set_mode(0o600);
    file.set_uid(AGENT_UID);
    file.set_gid(AGENT_UID);
    file.set_size(body.len() as u64);
    file.set_cksum();
    tar.append_data(&mut file, SECRETS_FILE_NAME, body.as_slice())
        .map_err(io)?;
    tar.into_inner().map_err(io)
}

/// Docker backend settings.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// This platform's instance label value.
    pub platform_instance: String,
    /// `bridge` (default: port 8000 published on 127.0.0.1), `host`, or a network name.
    pub network_mode: String,
    /// Host the published ports are reachable on (the URL handed back).
    pub advertise_host: String,
    /// Limits and privileges per tier.
    pub tiers: crate::Tiers,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            platform_instance: "default".into(),
            network_mode: "bridge".into(),
            advertise_host: "127.0.0.1".into(),
            tiers: crate::Tiers::default(),
        }
    }
}

pub struct DockerBackend {
    docker: Docker,
    config: DockerConfig,
    /// The engine's CPU count: a hard CPU limit above it is refused, so limits are capped.
    engine_cpus: Option<i64>,
}

impl std::fmt::Debug for DockerBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerBackend").field("config", &self.config).finish()
    }
}

fn not_found(e: &DockerError) -> bool {
    matches!(e, DockerError::DockerResponseServerError { status_code: 404, .. })
}

fn failed(what: &str, e: DockerError) -> BackendError {
    BackendError::Failed(format!("docker {what}: {e}"))
}

fn free_port() -> Result<u16, BackendError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BackendError::Failed(format!("no free port for the agent: {e}")))
}

impl DockerBackend {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket) and checks it answers.
    pub async fn connect(config: DockerConfig) -> Result<Self, BackendError> {
        let unavailable = |reason: String| BackendError::Unavailable {
            backend: "docker",
            reason,
        };
        let docker = Docker::connect_with_local_defaults().map_err(|e| unavailable(e.to_string()))?;
        docker.ping().await.map_err(|e| unavailable(e.to_string()))?;
        let engine_cpus = docker.info().await.ok().and_then(|i| i.ncpu).filter(|n| *n > 0);
        Ok(Self {
            docker,
            config,
            engine_cpus,
        })
    }

    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    fn labels(&self, id: Uuid, runtime: Option<&str>) -> HashMap<String, String> {
        let mut l = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_INSTANCE.to_owned(), self.config.platform_instance.clone()),
            (LABEL_WORKSPACE.to_owned(), id.to_string()),
        ]);
        if let Some(rt) = runtime {
            l.insert(LABEL_RUNTIME.to_owned(), rt.to_owned());
        }
        l
    }

    async fn image_present(&self, image: &str) -> bool {
        self.docker.inspect_image(image).await.is_ok()
    }

    /// Makes `image` available: moving tags and missing images are pulled; a failed pull of a
    /// cached image keeps the cached one. Runs before anything is torn down.
    async fn ensure_image(&self, image: &ImageRef) -> Result<(), BackendError> {
        let name = image.to_string();
        let present = self.image_present(&name).await;
        if present && !image.is_moving() {
            return Ok(());
        }
        let mut opts = CreateImageOptionsBuilder::default().from_image(&image.base());
        opts = match (&image.digest, &image.tag) {
            (Some(d), _) => opts.tag(d),
            (None, Some(t)) => opts.tag(t),
            (None, None) => opts.tag("latest"),
        };
        let mut stream = self.docker.create_image(Some(opts.build()), None, None);
        let mut error = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        error = Some(detail);
                    }
                }
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        match error {
            None => Ok(()),
            Some(reason) if present => {
                tracing::warn!(image = %name, %reason, "pull failed; using the cached image");
                Ok(())
            }
            Some(reason) => Err(BackendError::ImageUnavailable { image: name, reason }),
        }
    }

    async fn image_digest(&self, image: &str) -> Option<String> {
        let inspect = self.docker.inspect_image(image).await.ok()?;
        inspect
            .repo_digests
            .and_then(|d| d.into_iter().next())
            .and_then(|d| d.split_once('@').map(|(_, digest)| digest.to_owned()))
            .or(inspect.id)
    }
}

/// Label on the short-lived containers that reach a workload's volumes for the Files API.
pub const LABEL_HELPER: &str = "molecule.platform.helper";
/// A listing or read downloads at most this much of the archive.
const MAX_ARCHIVE_BYTES: usize = 64 * 1024 * 1024;
/// Go's `os.ModeSymlink` in the archive stat's mode.
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DIR: u32 = 1 << 31;

fn file_failed(what: &str, e: DockerError) -> FileFailure {
    FileFailure::Failed(format!("docker {what}: {e}"))
}

/// Where a root is inside the container: the mount point, and the part below it.
fn mount_of(root: FileRoot) -> (&'static str, &'static str) {
    match root {
        FileRoot::Configs => ("/configs", ""),
        FileRoot::Plugins => ("/configs", "plugins"),
        FileRoot::Workspace => ("/workspace", ""),
        FileRoot::Home => ("/home", ""),
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

/// A container to reach files through; a helper is removed when dropped by [`DockerBackend::done`].
struct Via {
    name: String,
    helper: bool,
}

impl DockerBackend {
    /// The container file operations go through. `/home` exists only in the running
    /// workload; the volume roots go through a helper created (never started) from the
    /// workload's own image with its volumes, whether the workload runs or not: no pull, and
    /// a read-only rootfs (tier 1) does not matter.
    async fn via(&self, t: &FileTarget, entrypoint: Option<Vec<String>>) -> Result<Via, FileFailure> {
        let id = t.workspace_id;
        if t.root == FileRoot::Home {
            let name = container_name(id);
            return match self
                .docker
                .inspect_container(&name, None::<InspectContainerOptions>)
                .await
            {
                Ok(c) if c.state.as_ref().and_then(|s| s.running).unwrap_or(false) => Ok(Via { name, helper: false }),
                Ok(_) => Err(FileFailure::NotReady(
                    "/home lives in the running workload, which is not running".into(),
                )),
                Err(e) if not_found(&e) => Err(FileFailure::NotReady(
                    "/home lives in the running workload, which is not running".into(),
                )),
                Err(e) => Err(file_failed("inspect container", e)),
            };
        }
        let [configs, workspace] = volume_names(id);
        match self.docker.inspect_volume(&configs).await {
            Ok(_) => {}
            Err(e) if not_found(&e) => {
                return Err(FileFailure::NotFound(
                    "the workspace has no volumes: it has never been provisioned on Docker".into(),
                ));
            }
            Err(e) => return Err(file_failed("inspect volume", e)),
        }
        let image = t.image.to_string();
        if !self.image_present(&image).await {
            return Err(FileFailure::Failed(format!(
                "image {image} is not present on this engine: a stopped workload's volumes are reached through a container of its own image, and nothing is pulled for that"
            )));
        }
        let name = format!("ws-{id}-files-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let labels = HashMap::from([
            (LABEL_HELPER.to_owned(), "files".to_owned()),
            (LABEL_INSTANCE.to_owned(), self.config.platform_instance.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(image),
            entrypoint,
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("{configs}:/configs"), format!("{workspace}:/workspace")]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.docker
            .create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), body)
            .await
            .map_err(|e| file_failed("create the files helper", e))?;
        Ok(Via { name, helper: true })
    }

    /// Runs `program` on a TTY in container `name`. An exec of a missing binary fails only
    /// once started, so a probe (`program -c 'exit 0'`) must exit 0 first.
    async fn shell(&self, name: &str, program: &str) -> Result<Shell, String> {
        let probe = self
            .docker
            .create_exec(
                name,
                bollard::models::ExecConfig {
                    cmd: Some(vec![program.to_owned(), "-c".to_owned(), "exit 0".to_owned()]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        if let bollard::exec::StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&probe.id, None::<bollard::exec::StartExecOptions>)
            .await
            .map_err(|e| e.to_string())?
        {
            while output.next().await.is_some() {}
        }
        let code = self
            .docker
            .inspect_exec(&probe.id)
            .await
            .map_err(|e| e.to_string())?
            .exit_code;
        if code != Some(0) {
            return Err(format!("not runnable (exit code {code:?})"));
        }
        let exec = self
            .docker
            .create_exec(
                name,
                bollard::models::ExecConfig {
                    cmd: Some(vec![program.to_owned()]),
                    env: Some(vec!["TERM=xterm-256color".to_owned()]),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        let started = self
            .docker
            .start_exec(
                &exec.id,
                Some(bollard::exec::StartExecOptions {
                    detach: false,
                    tty: true,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| e.to_string())?;
        let bollard::exec::StartExecResults::Attached { output, input } = started else {
            return Err("the engine did not attach the exec".into());
        };
        let docker = self.docker.clone();
        let exec_id = exec.id;
        let resize: Resizer = std::sync::Arc::new(move |cols, rows| {
            let docker = docker.clone();
            let exec_id = exec_id.clone();
            Box::pin(async move {
                docker
                    .resize_exec(
                        &exec_id,
                        bollard::exec::ResizeExecOptions {
                            height: rows,
                            width: cols,
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        Ok(Shell {
            program: program.to_owned(),
            output: output
                .map(|chunk| chunk.map(|o| o.into_bytes().to_vec()).map_err(std::io::Error::other))
                .boxed(),
            input,
            resize,
        })
    }

    async fn done(&self, via: Via) {
        if via.helper
            && let Err(e) = self
                .docker
                .remove_container(
                    &via.name,
                    Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                )
                .await
        {
            tracing::warn!(container = %via.name, error = %e, "files helper not removed");
        }
    }

    /// Stats every component of `rel` under `base` in order, refusing a symlink anywhere
    /// (the archive API would follow it out of the root). The stat of the whole path, or
    /// `None` when some component does not exist.
    async fn check_links(
        &self,
        container: &str,
        base: &str,
        rel: &str,
    ) -> Result<Option<bollard::container::PathStatResponse>, FileFailure> {
        let mut at = base.to_owned();
        let mut last = None;
        for seg in rel.split('/').filter(|s| !s.is_empty()) {
            at = format!("{at}/{seg}");
            let opts = bollard::query_parameters::ContainerArchiveInfoOptionsBuilder::default()
                .path(&at)
                .build();
            match self.docker.get_container_archive_info(container, Some(opts)).await {
                Ok(stat) => {
                    if !stat.link_target.is_empty() || stat.file_mode & GO_MODE_SYMLINK != 0 {
                        return Err(FileFailure::Invalid(format!(
                            "path: {seg:?} is a symbolic link; the Files API does not follow links out of its root"
                        )));
                    }
                    last = Some(stat);
                }
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(file_failed("stat", e)),
            }
        }
        Ok(last)
    }

    /// The archive of `abs`, at most [`MAX_ARCHIVE_BYTES`].
    async fn download(&self, container: &str, abs: &str) -> Result<Vec<u8>, FileFailure> {
        let opts = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
            .path(abs)
            .build();
        let mut stream = self.docker.download_from_container(container, Some(opts));
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                if not_found(&e) {
                    FileFailure::NotFound(format!("{abs}: no such file or directory"))
                } else {
                    file_failed("download", e)
                }
            })?;
            if buf.len() + chunk.len() > MAX_ARCHIVE_BYTES {
                return Err(FileFailure::TooLarge(format!(
                    "{abs} is more than {} MiB as an archive; list or read something below it",
                    MAX_ARCHIVE_BYTES >> 20
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    async fn list_via(&self, via: &Via, t: &FileTarget, path: &str, depth: u8) -> Result<Vec<FileEntry>, FileFailure> {
        let (mount, sub) = mount_of(t.root);
        let rel = join(sub, path);
        match self.check_links(&via.name, mount, &rel).await? {
            None if !rel.is_empty() => return Err(FileFailure::NotFound(format!("{path:?}: no such directory"))),
            Some(stat) if stat.file_mode & GO_MODE_DIR == 0 => {
                return Err(FileFailure::Invalid(format!(
                    "path: {path:?} is a file; read it with GET /files/{path}"
                )));
            }
            _ => {}
        }
        let bytes = self
            .download(&via.name, format!("{mount}/{rel}").trim_end_matches('/'))
            .await?;
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries = archive
            .entries()
            .map_err(|e| FileFailure::Failed(format!("reading the archive: {e}")))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| FileFailure::Failed(format!("reading the archive: {e}")))?;
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            // The first component is the listed directory itself.
            let Some((_, below)) = name.trim_end_matches('/').split_once('/') else {
                continue;
            };
            if below.is_empty() || below.split('/').count() > usize::from(depth.max(1)) {
                continue;
            }
            let full = join(path, below);
            if molecule_domain::is_reserved(t.root, &join(sub, &full)) {
                continue;
            }
            let dir = entry.header().entry_type().is_dir();
            out.push(FileEntry {
                path: full,
                size: if dir { 0 } else { entry.header().size().unwrap_or(0) },
                dir,
            });
            if out.len() >= molecule_domain::MAX_LIST_ENTRIES {
                break;
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn read_via(&self, via: &Via, t: &FileTarget, path: &str) -> Result<Vec<u8>, FileFailure> {
        let (mount, sub) = mount_of(t.root);
        let rel = join(sub, path);
        let Some(stat) = self.check_links(&via.name, mount, &rel).await? else {
            return Err(FileFailure::NotFound(format!("{path:?}: no such file")));
        };
        if stat.file_mode & GO_MODE_DIR != 0 {
            return Err(FileFailure::Invalid(format!(
                "path: {path:?} is a directory; list it with GET /files?path={path}"
            )));
        }
        if stat.size > molecule_domain::MAX_FILE_BYTES as i64 {
            return Err(FileFailure::TooLarge(format!(
                "{path:?} is {} bytes; the Files API reads at most {}",
                stat.size,
                molecule_domain::MAX_FILE_BYTES
            )));
        }
        let bytes = self.download(&via.name, &format!("{mount}/{rel}")).await?;
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut entries = archive
            .entries()
            .map_err(|e| FileFailure::Failed(format!("reading the archive: {e}")))?;
        let Some(entry) = entries.next() else {
            return Err(FileFailure::NotFound(format!("{path:?}: no such file")));
        };
        let mut entry = entry.map_err(|e| FileFailure::Failed(format!("reading the archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            return Err(FileFailure::Invalid(format!("path: {path:?} is not a regular file")));
        }
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut out)
            .map_err(|e| FileFailure::Failed(format!("reading the archive: {e}")))?;
        Ok(out)
    }

    async fn write_via(&self, via: &Via, t: &FileTarget, path: &str, bytes: &[u8]) -> Result<(), FileFailure> {
        let (mount, sub) = mount_of(t.root);
        let rel = join(sub, path);
        if let Some(stat) = self.check_links(&via.name, mount, &rel).await?
            && stat.file_mode & GO_MODE_DIR != 0
        {
            return Err(FileFailure::Invalid(format!("path: {path:?} is a directory")));
        }
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(AGENT_UID);
        h.set_gid(AGENT_UID);
        h.set_size(bytes.len() as u64);
        h.set_cksum();
        let io = |e: std::io::Error| FileFailure::Failed(format!("building the archive: {e}"));
        tar.append_data(&mut h, &rel, bytes).map_err(io)?;
        let body = tar.into_inner().map_err(io)?;
        self.docker
            .upload_to_container(
                &via.name,
                Some(UploadToContainerOptionsBuilder::default().path(mount).build()),
                bollard::body_full(body.into()),
            )
            .await
            .map_err(|e| file_failed("upload", e))
    }
}

#[async_trait::async_trait]
impl Backend for DockerBackend {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn provision(&self, spec: &ProvisionSpec) -> Result<Provisioned, BackendError> {
        let id = spec.workspace_id;
        let image = spec.image.to_string();
        // The image first: a running container is never destroyed for an image that cannot be had.
        self.ensure_image(&spec.image).await?;
        let mut shape = self.config.tiers.shape(spec.tier);
        if let Some(n) = self.engine_cpus
            && shape.nano_cpus > n * 1_000_000_000
        {
            tracing::info!(workspace_id = %id, tier = spec.tier, engine_cpus = n, "the tier's CPU limit is above the engine's CPUs; limited to them");
            shape.nano_cpus = n * 1_000_000_000;
        }
        let sessions = (spec.runtime == "claude-code").then(|| crate::session_volume_name(id));
        let name = container_name(id);
        // The previous container goes first: a session volume it holds cannot be removed.
        match self
            .docker
            .remove_container(
                &name,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
        {
            Ok(()) => tracing::info!(container = %name, "replaced the previous container"),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(failed("remove stale container", e)),
        }
        if spec.reset_session
            && let Some(v) = &sessions
        {
            match self
                .docker
                .remove_volume(v, Some(RemoveVolumeOptionsBuilder::default().force(true).build()))
                .await
            {
                Ok(()) => tracing::info!(volume = %v, "session volume reset"),
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(failed("remove the session volume for a reset", e)),
            }
        }
        let [configs, workspace] = volume_names(id);
        for v in [Some(&configs), Some(&workspace), sessions.as_ref()]
            .into_iter()
            .flatten()
        {
            let req = VolumeCreateRequest {
                name: Some(v.clone()),
                labels: Some(self.labels(id, None)),
                ..Default::default()
            };
            self.docker
                .create_volume(req)
                .await
                .map_err(|e| failed("create volume", e))?;
        }
        let host = self.config.network_mode == "host" || shape.host_network;
        let host_port = free_port()?;
        let agent_port = if host { host_port } else { 8000 };
        let url = format!("http://{}:{host_port}", self.config.advertise_host);
        let mut env = spec.env.clone();
        env.insert("AGENT_PORT".into(), agent_port.to_string());
        env.insert("AGENT_URL".into(), url.clone());
        env.insert("WORKSPACE_CONFIG_PATH".into(), "/configs".into());
        env.insert(SECRETS_FILE_ENV.into(), format!("/configs/{SECRETS_FILE_NAME}"));
        let port_bindings = (!host).then(|| {
            HashMap::from([(
                "8000/tcp".to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host_port.to_string()),
                }]),
            )])
        });
        let mut binds = vec![format!("{configs}:/configs")];
        if !shape.locked_down {
            binds.push(format!("{workspace}:/workspace"));
        }
        if let Some(v) = &sessions {
            binds.push(format!("{v}:{}", crate::SESSION_MOUNT));
        }
        if shape.docker_socket {
            binds.push("/var/run/docker.sock:/var/run/docker.sock".into());
        }
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(self.labels(id, Some(&spec.runtime))),
            exposed_ports: (!host).then(|| vec!["8000/tcp".to_owned()]),
            host_config: Some(HostConfig {
                network_mode: Some(if shape.host_network {
                    "host".into()
                } else {
                    self.config.network_mode.clone()
                }),
                binds: Some(binds),
                port_bindings,
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                memory: Some(shape.memory_bytes),
                cpu_shares: Some(shape.cpu_shares),
                nano_cpus: Some(shape.nano_cpus),
                readonly_rootfs: Some(shape.locked_down),
                tmpfs: shape
                    .locked_down
                    .then(|| HashMap::from([("/tmp".to_owned(), "rw,size=64m".to_owned())])),
                privileged: Some(shape.privileged),
                pid_mode: shape.host_pid.then(|| "host".to_owned()),
                extra_hosts: (!host).then(|| vec!["host.docker.internal:host-gateway".to_owned()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), body)
            .await
            .map_err(|e| failed("create container", e))?;
        // The seeded files and the secrets reach the configs volume through the archive API
        // before the start, so the secrets are never part of the container's inspectable
        // environment.
        let delivered = self
            .docker
            .upload_to_container(
                &name,
                Some(UploadToContainerOptionsBuilder::default().path("/configs").build()),
                bollard::body_full(configs_archive(spec)?.into()),
            )
            .await
            .map_err(|e| failed("deliver /configs (seeded files and the secrets file)", e));
        let started = match delivered {
            Ok(()) => self
                .docker
                .start_container(&name, None::<StartContainerOptions>)
                .await
                .map_err(|e| failed("start container", e)),
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            let _ = self
                .docker
                .remove_container(
                    &name,
                    Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                )
                .await;
            return Err(e);
        }
        Ok(Provisioned {
            url: Some(url),
            instance_id: Some(created.id),
            image_digest: self.image_digest(&image).await,
            image: Some(image),
        })
    }

    async fn stop(&self, workspace_id: Uuid) -> Result<(), BackendError> {
        // Force-remove: a restart policy would bring a merely stopped container back.
        match self
            .docker
            .remove_container(
                &container_name(workspace_id),
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("in progress") => Ok(()),
            Err(e) => Err(failed("remove container", e)),
        }
    }

    async fn remove_volumes(&self, workspace_id: Uuid) -> Result<(), BackendError> {
        let [configs, workspace] = volume_names(workspace_id);
        for v in [configs, workspace, crate::session_volume_name(workspace_id)] {
            match self
                .docker
                .remove_volume(&v, Some(RemoveVolumeOptionsBuilder::default().force(true).build()))
                .await
            {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(failed("remove volume", e)),
            }
        }
        Ok(())
    }

    async fn is_running(&self, workspace_id: Uuid) -> Result<bool, BackendError> {
        match self
            .docker
            .inspect_container(&container_name(workspace_id), None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(c.state.and_then(|s| s.running).unwrap_or(false)),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(failed("inspect container", e)),
        }
    }

    async fn list_files(&self, t: &FileTarget, path: &str, depth: u8) -> Result<Vec<FileEntry>, FileFailure> {
        let via = self.via(t, None).await?;
        let out = self.list_via(&via, t, path, depth).await;
        self.done(via).await;
        out
    }

    async fn read_file(&self, t: &FileTarget, path: &str) -> Result<Vec<u8>, FileFailure> {
        let via = self.via(t, None).await?;
        let out = self.read_via(&via, t, path).await;
        self.done(via).await;
        out
    }

    async fn write_file(&self, t: &FileTarget, path: &str, bytes: &[u8]) -> Result<(), FileFailure> {
        let via = self.via(t, None).await?;
        let out = self.write_via(&via, t, path, bytes).await;
        self.done(via).await;
        out
    }

    /// The archive API cannot delete: a helper runs `rm -rf` on the volume (the workload's
    /// image must have `rm`), or, for `/home`, an exec in the running workload does.
    async fn delete_file(&self, t: &FileTarget, path: &str) -> Result<(), FileFailure> {
        let (mount, sub) = mount_of(t.root);
        let abs = format!("{mount}/{}", join(sub, path));
        // The links are checked through a plain helper first, so `rm` never follows one.
        let probe = self.via(t, None).await?;
        let found = self.check_links(&probe.name, mount, &join(sub, path)).await;
        self.done(probe).await;
        if found?.is_none() {
            return Err(FileFailure::NotFound(format!("{path:?}: no such file or directory")));
        }
        let argv = vec!["rm".to_owned(), "-rf".to_owned(), "--".to_owned(), abs];
        if t.root == FileRoot::Home {
            let exec = self
                .docker
                .create_exec(
                    &container_name(t.workspace_id),
                    bollard::models::ExecConfig {
                        cmd: Some(argv),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| file_failed("exec rm", e))?;
            let started = self
                .docker
                .start_exec(&exec.id, None::<bollard::exec::StartExecOptions>)
                .await
                .map_err(|e| file_failed("exec rm", e))?;
            // Attached: the output ends when `rm` does.
            if let bollard::exec::StartExecResults::Attached { mut output, .. } = started {
                while output.next().await.is_some() {}
            }
            return Ok(());
        }
        let via = self.via(t, Some(argv)).await?;
        let ran = async {
            self.docker
                .start_container(&via.name, None::<StartContainerOptions>)
                .await
                .map_err(|e| file_failed("start the files helper (does the image have `rm`?)", e))?;
            let mut wait = self.docker.wait_container(&via.name, None);
            while let Some(r) = wait.next().await {
                r.map_err(|e| file_failed("rm in the files helper", e))?;
            }
            Ok(())
        }
        .await;
        self.done(via).await;
        ran
    }

    /// `docker exec` of `/bin/bash`, else `/bin/sh`, with a TTY, in the running container.
    async fn open_shell(&self, workspace_id: Uuid) -> Result<Shell, TerminalFailure> {
        let name = container_name(workspace_id);
        let unavailable = |what: &str, e: DockerError| TerminalFailure::Unavailable(format!("{what}: {e}"));
        match self
            .docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) if c.state.as_ref().and_then(|s| s.running).unwrap_or(false) => {}
            Ok(_) => return Err(TerminalFailure::NotRunning("container not running".into())),
            Err(e) if not_found(&e) => return Err(TerminalFailure::NotRunning("container not running".into())),
            Err(e) => return Err(unavailable("inspect container", e)),
        }
        let mut tried = Vec::new();
        for program in ["/bin/bash", "/bin/sh"] {
            match self.shell(&name, program).await {
                Ok(shell) => return Ok(shell),
                Err(why) => tried.push(format!("{program}: {why}")),
            }
        }
        Err(TerminalFailure::Unavailable(format!(
            "failed to create shell session ({})",
            tried.join("; ")
        )))
    }

    async fn list_managed(&self) -> Result<Vec<ManagedResource>, BackendError> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_MANAGED}=true")])]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| failed("list containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                ManagedResource {
                    resource_id: c.id.unwrap_or_default(),
                    workspace_id: labels.get(LABEL_WORKSPACE).and_then(|s| s.parse().ok()),
                    platform_instance: labels.get(LABEL_INSTANCE).cloned(),
                    running: c.state.map(|s| s.to_string() == "running").unwrap_or(false),
                    created_unix: c.created,
                }
            })
            .collect())
    }
}
