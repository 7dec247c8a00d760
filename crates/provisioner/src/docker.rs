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
    Backend, BackendError, ImageRef, LABEL_INSTANCE, LABEL_MANAGED, LABEL_RUNTIME, LABEL_WORKSPACE, ManagedResource,
    ProvisionSpec, Provisioned, SECRETS_FILE_ENV, SECRETS_FILE_NAME, container_name, secrets_file, volume_names,
};

/// Owner of the delivered secrets file: uid/gid 1000, the agent user of the runtime images
/// (root, which the reference agent runs as, reads it too).
const AGENT_UID: u64 = 1000;

/// A tar of `.molecule/` (0700) and the secrets file (0600), both owned by [`AGENT_UID`].
fn secrets_archive(spec: &ProvisionSpec) -> Result<Vec<u8>, BackendError> {
    let io = |e: std::io::Error| BackendError::Failed(format!("building the secrets archive: {e}"));
    let body = secrets_file(&spec.secret_env);
    let mut tar = tar::Builder::new(Vec::new());
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
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            platform_instance: "default".into(),
            network_mode: "bridge".into(),
            advertise_host: "127.0.0.1".into(),
        }
    }
}

pub struct DockerBackend {
    docker: Docker,
    config: DockerConfig,
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
        Ok(Self { docker, config })
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
        let [configs, workspace] = volume_names(id);
        for v in [&configs, &workspace] {
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
        let name = container_name(id);
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
        let host = self.config.network_mode == "host";
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
        let memory = match spec.tier {
            1 | 2 => Some(512 * 1024 * 1024),
            3 => Some(2048 * 1024 * 1024),
            _ => Some(4096_i64 * 1024 * 1024),
        };
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(self.labels(id, Some(&spec.runtime))),
            exposed_ports: (!host).then(|| vec!["8000/tcp".to_owned()]),
            host_config: Some(HostConfig {
                network_mode: Some(self.config.network_mode.clone()),
                binds: Some(vec![format!("{configs}:/configs"), format!("{workspace}:/workspace")]),
                port_bindings,
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                memory,
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
        // The secrets reach the configs volume through the archive API before the start, so
        // they are never part of the container's inspectable environment.
        let delivered = self
            .docker
            .upload_to_container(
                &name,
                Some(UploadToContainerOptionsBuilder::default().path("/configs").build()),
                bollard::body_full(secrets_archive(spec)?.into()),
            )
            .await
            .map_err(|e| failed("deliver the secrets file", e));
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
        for v in volume_names(workspace_id) {
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
