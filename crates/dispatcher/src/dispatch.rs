//! The dispatcher proper: provision (spawned and sync), stop with bounded retry and a
//! persisted `LEAK_SUSPECT`, restart coalescing, the per-workspace gate and the global permit.
//!
//! Must not know: SQL (it records through `molecule_tree::workloads`) or HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use molecule_api::hooks::RestartOutcome;
use molecule_api::hooks::StopFailure;
use molecule_domain::{FailureReason, FileAnswer, FileFailure, FileOp, TerminalFailure, Vocabulary};
use molecule_provisioner::{Backend, BackendError, FileTarget, ImageRef, ProvisionSpec, SecretDelivery, select_image};
use molecule_secrets::{ExposeSecret, SecretString};
use molecule_service::{ServiceError, Services, WorkloadHooks};
use molecule_tree::error::chain;
use molecule_tree::hooks::HookError;
use molecule_tree::workloads::{ProvisionTarget, Provisioned};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How workloads are started.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Provisions at once (`MOLECULE_PROVISION_CONCURRENCY`); `None` = unlimited.
    pub concurrency: Option<usize>,
    pub default_image: ImageRef,
    /// Image per runtime (`MOLECULE_RUNTIME_IMAGES`).
    pub runtime_images: BTreeMap<String, String>,
    /// `WORKSPACE_IMAGE_LOCAL_OVERRIDE=1`: ignore `runtime_image_pins`.
    pub local_image_override: bool,
    /// `PLATFORM_URL` as agents must use it.
    pub platform_url: String,
    /// Extra environment for every agent (`MOLECULE_AGENT_ENV`).
    pub agent_env: BTreeMap<String, String>,
    /// The tenant id (`MOLECULE_ORG_ID`), passed to every agent so it can send the tenant
    /// header the org-mode guard asks for.
    pub org_id: Option<String>,
    /// Stop attempts and the first wait between them (doubling: 1 s, 2 s, 4 s, …).
    pub stop_attempts: usize,
    pub stop_backoff: Duration,
    /// This platform's instance label: the reconciler touches nothing else.
    pub platform_instance: String,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            concurrency: Some(3),
            default_image: ImageRef {
                registry: None,
                repository: "molecule-agent".into(),
                tag: Some("latest".into()),
                digest: None,
            },
            runtime_images: BTreeMap::new(),
            local_image_override: false,
            platform_url: "http://127.0.0.1:8080".into(),
            agent_env: BTreeMap::new(),
            org_id: None,
            stop_attempts: 3,
            stop_backoff: Duration::from_secs(1),
            platform_instance: "default".into(),
        }
    }
}

/// Why a stop did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("stop of {workspace_id} failed after {attempts} attempts")]
    Exhausted {
        workspace_id: Uuid,
        attempts: usize,
        #[source]
        last_error: BackendError,
    },
    #[error("stop of {0} was cancelled")]
    Cancelled(Uuid),
    #[error("could not read which backend runs the workspace")]
    Database(#[from] ServiceError),
}

/// Why a provision did not happen. Its text (with the causes) becomes the workspace's
/// `last_sample_error`.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("workspace {0} not found")]
    NotFound(Uuid),
    #[error("no provisioner configured: set MOLECULE_BACKEND (docker or local) on the server")]
    NoProvisioner,
    #[error("could not mint the workspace token")]
    Token(#[source] ServiceError),
    #[error("the workspace's secrets cannot be delivered")]
    Secrets(#[source] ServiceError),
    /// The template (or files_dir) its `/configs` is seeded from cannot be read.
    #[error(transparent)]
    Template(#[from] molecule_templates::LoadError),
    #[error("could not read or record the workspace")]
    Database(#[from] ServiceError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("provisioning panicked in the {backend} backend: {message}")]
    Panicked { backend: &'static str, message: String },
    #[error("provisioning task cancelled")]
    Cancelled(#[source] tokio::task::JoinError),
    #[error("the dispatcher is shutting down")]
    ShuttingDown,
}

#[derive(Default)]
struct RestartState {
    running: bool,
    pending: bool,
    reset_session: bool,
}

struct Inner {
    backends: BTreeMap<&'static str, Arc<dyn Backend>>,
    /// The backend new workspaces go to.
    default_backend: Option<&'static str>,
    services: Services,
    config: DispatcherConfig,
    gates: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    permits: Option<Arc<Semaphore>>,
    restarts: Mutex<HashMap<Uuid, RestartState>>,
    cancel: CancellationToken,
}

/// The dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("backends", &self.inner.backends.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn reason(text: String) -> FailureReason {
    FailureReason::new(text).unwrap_or_else(unreachable_reason)
}

/// A literal non-empty reason: `FailureReason::new` only refuses blank text.
#[allow(clippy::expect_used)]
fn unreachable_reason() -> FailureReason {
    FailureReason::new("provisioning failed").expect("a non-blank literal is a valid reason")
}

impl Dispatcher {
    /// `backends` are all the configured ones; `default_backend` names the one new workspaces
    /// use (`None`: no provisioner). `services` is used for rows and events only.
    pub fn new(
        backends: Vec<Arc<dyn Backend>>,
        default_backend: Option<&'static str>,
        services: Services,
        config: DispatcherConfig,
    ) -> Self {
        let permits = config.concurrency.map(|n| Arc::new(Semaphore::new(n.max(1))));
        tracing::info!(
            MOLECULE_PROVISION_CONCURRENCY = config.concurrency.map_or("unlimited".to_owned(), |n| n.to_string()),
            backend = default_backend.unwrap_or("none"),
            "dispatcher ready"
        );
        Self {
            inner: Arc::new(Inner {
                backends: backends.into_iter().map(|b| (b.name(), b)).collect(),
                default_backend,
                services,
                config,
                gates: Mutex::new(HashMap::new()),
                permits,
                restarts: Mutex::new(HashMap::new()),
                cancel: CancellationToken::new(),
            }),
        }
    }

    pub(crate) fn backends(&self) -> impl Iterator<Item = &Arc<dyn Backend>> {
        self.inner.backends.values()
    }

    pub(crate) fn config(&self) -> &DispatcherConfig {
        &self.inner.config
    }

    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    pub fn has_provisioner(&self) -> bool {
        self.inner.default_backend.is_some()
    }

    /// Ends stop retries early (shutdown).
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    /// The server is exiting: each backend stops what cannot outlive it (the local backend's
    /// child processes). Returns how many workloads were stopped.
    pub async fn on_exit(&self) -> usize {
        let mut stopped = 0;
        for backend in self.backends() {
            stopped += backend.on_exit().await;
        }
        stopped
    }

    fn gate(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self
            .inner
            .gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gates.entry(id).or_default().clone()
    }

    /// Provisions in the background, detached from the caller.
    pub fn provision(&self, id: Uuid) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(molecule_actor::on_behalf(async move {
            // The outcome is already on the workspace row (failed + reason) and in the log.
            if let Err(e) = this.provision_sync(id, false).await {
                tracing::debug!(workspace_id = %id, error = %chain(&e), "background provision ended in failure");
            }
        }))
    }

    /// Provisions and waits, holding the workspace's gate (never two provisions of one
    /// workspace at once) and a global permit. Errors are also written to the workspace.
    pub async fn provision_sync(&self, id: Uuid, reset_session: bool) -> Result<(), ProvisionError> {
        let gate = self.gate(id);
        let _held = gate.lock().await;
        self.provision_locked(id, reset_session).await
    }

    async fn fail(&self, id: Uuid, error: ProvisionError, backend: Option<&str>) -> Result<(), ProvisionError> {
        let text = chain(&error);
        tracing::warn!(workspace_id = %id, error = %text, "provisioning failed");
        let payload = json!({ "source": "dispatcher", "backend": backend });
        if let Err(e) = self.inner.services.tree().mark_failed(id, reason(text), payload).await {
            tracing::error!(workspace_id = %id, error = %e.chain(), "could not record the provisioning failure");
        }
        Err(error)
    }

    async fn provision_locked(&self, id: Uuid, reset_session: bool) -> Result<(), ProvisionError> {
        let services = &self.inner.services;
        let Some(target) = services.tree().provision_target(id).await? else {
            return Err(ProvisionError::NotFound(id));
        };
        if !target.wants_workload() {
            tracing::info!(workspace_id = %id, status = %target.status, runtime = %target.runtime, "nothing to provision");
            return Ok(());
        }
        let runtime = target.runtime.as_str();
        let Some(backend) = self
            .inner
            .default_backend
            .and_then(|n| self.inner.backends.get(n))
            .cloned()
        else {
            return self.fail(id, ProvisionError::NoProvisioner, None).await;
        };
        let _permit = match &self.inner.permits {
            Some(p) => Some(
                p.clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| ProvisionError::ShuttingDown)?,
            ),
            None => None,
        };
        // Globals, then the workspace's own: opened before anything is revoked or started, so a
        // value that cannot be opened fails the provision with the key's name and nothing else.
        let mut secret_env = match services.vault().secret_env(id).await {
            Ok(s) => s,
            Err(e) => return self.fail(id, ProvisionError::Secrets(e), Some(backend.name())).await,
        };
        // A fresh credential per provision; the old workload's tokens stop working.
        let token = match services.tree().rotate_tokens(id).await {
            Ok(t) => t.auth_token,
            Err(e) => return self.fail(id, ProvisionError::Token(e), Some(backend.name())).await,
        };
        let image = match self.image_for(target.runtime).await {
            Ok(i) => i,
            // Running an unpinned image when a pin may exist would be wrong: fail instead.
            Err(e) => return self.fail(id, ProvisionError::Database(e), Some(backend.name())).await,
        };
        let mut env = self.inner.config.agent_env.clone();
        env.insert("WORKSPACE_ID".into(), id.to_string());
        env.insert("PLATFORM_URL".into(), self.inner.config.platform_url.clone());
        env.insert("MOLECULE_URL".into(), self.inner.config.platform_url.clone());
        if let Some(org) = &self.inner.config.org_id {
            env.insert("MOLECULE_ORG_ID".into(), org.clone());
        }
        env.insert("TIER".into(), target.tier.to_string());
        env.insert("MOLECULE_RUNTIME".into(), runtime.to_owned());
        // The model: the stored MODEL_PROVIDER secret (the slug verbatim), else the row's
        // model, for every runtime as MODEL (and hermes' own name). A workspace from before
        // the model was stored as secrets gets its provider derived here.
        let model = secret_env
            .get(molecule_vault::model::MODEL_PROVIDER)
            .map(|s| s.expose_secret().to_owned())
            .or_else(|| target.model.clone());
        if let Some(m) = &model {
            env.insert("MODEL".into(), m.clone());
            if target.runtime == molecule_domain::Runtime::Hermes {
                env.insert("HERMES_DEFAULT_MODEL".into(), m.clone());
            }
            secret_env
                .entry(molecule_vault::model::MODEL_PROVIDER.into())
                .or_insert_with(|| SecretString::from(m.as_str()));
            if let Some(p) = molecule_domain::provider_for_model(m) {
                secret_env
                    .entry(molecule_vault::model::LLM_PROVIDER.into())
                    .or_insert_with(|| SecretString::from(p));
            }
        }
        // The platform's own variables win over secrets of the same name.
        secret_env.retain(|k, _| !env.contains_key(k));
        secret_env.insert("MOLECULE_WORKSPACE_TOKEN".into(), SecretString::from(token));
        // /configs is seeded once, on the first provision that succeeds; later ones leave it
        // to the workload and the Files API. A backend that delivers by bootstrap code gets
        // the files with the secrets when its agent redeems the code (which marks them seeded).
        let seeding = !target.seed.seeded;
        let mut config_files = if seeding {
            let provider = secret_env
                .get(molecule_vault::model::LLM_PROVIDER)
                .map(|s| s.expose_secret().to_owned());
            let files = self.seed_files(&target, model.as_deref(), provider.as_deref()).await;
            match files {
                Ok(f) => f,
                Err(e) => return self.fail(id, ProvisionError::Template(e), Some(backend.name())).await,
            }
        } else {
            BTreeMap::new()
        };
        if backend.secret_delivery() == SecretDelivery::Bootstrap {
            // Launch parameters are readable through the provider's API: they carry only a
            // one-time code the agent redeems for the secrets (and the files of /configs).
            let code = match services.vault().stash_bootstrap(id, &secret_env, &config_files).await {
                Ok(c) => c,
                Err(e) => return self.fail(id, ProvisionError::Secrets(e), Some(backend.name())).await,
            };
            env.insert("MOLECULE_BOOTSTRAP_CODE".into(), code);
            secret_env.clear();
            config_files.clear();
        }
        let file_seeded = seeding && backend.secret_delivery() == SecretDelivery::File;
        let spec = ProvisionSpec {
            workspace_id: id,
            runtime: runtime.to_owned(),
            tier: target.tier,
            image,
            env,
            secret_env,
            config_files,
            reset_session,
        };
        let name = backend.name();
        // Its own task: a panicking backend fails this workspace, not the server.
        let outcome = tokio::spawn(async move { backend.provision(&spec).await }).await;
        match outcome {
            Ok(Ok(p)) => {
                // The agent may already have registered (online): record what runs either way,
                // unless the workspace was removed meanwhile, in which case the new workload
                // must not outlive it.
                let done = Provisioned {
                    backend: name,
                    instance_id: p.instance_id.as_deref(),
                    image_digest: p.image_digest.as_deref(),
                };
                if !services.tree().record_provisioned(id, done).await? {
                    tracing::warn!(workspace_id = %id, backend = name, "removed while provisioning; stopping the new workload");
                    if let Some(b) = self.inner.backends.get(name)
                        && let Err(e) = b.stop(id).await
                    {
                        tracing::error!(workspace_id = %id, backend = name, error = %e, "LEAK-SUSPECT: could not stop the workload of a removed workspace");
                    }
                    return Ok(());
                }
                if file_seeded {
                    services.tree().mark_seeded(id).await?;
                }
                tracing::info!(workspace_id = %id, backend = name, image = ?p.image, seeded = file_seeded, "provisioned");
                Ok(())
            }
            Ok(Err(e)) => self.fail(id, ProvisionError::Backend(e), Some(name)).await,
            Err(join) if join.is_panic() => {
                let message = molecule_periodic::panic_message(join.into_panic().as_ref());
                self.fail(id, ProvisionError::Panicked { backend: name, message }, Some(name))
                    .await
            }
            Err(join) => self.fail(id, ProvisionError::Cancelled(join), Some(name)).await,
        }
    }

    /// The image a workload of `runtime` runs: its pin (unless pins are ignored), else the
    /// runtime's image, else the default.
    async fn image_for(&self, runtime: molecule_domain::Runtime) -> Result<ImageRef, ServiceError> {
        let pin = if self.inner.config.local_image_override {
            None
        } else {
            self.inner.services.tree().pinned_digest(runtime).await?
        };
        Ok(select_image(
            pin.as_deref(),
            runtime.as_str(),
            &self.inner.config.runtime_images,
            &self.inner.config.default_image,
        ))
    }

    /// A file operation on `id`'s workload, through the backend that ran it (or the default
    /// one, for a workspace not provisioned yet).
    pub async fn files(&self, id: Uuid, op: FileOp) -> Result<FileAnswer, FileFailure> {
        let failed = |e: ServiceError| FileFailure::Failed(format!("reading the workspace: {}", e.chain()));
        let target = self
            .inner
            .services
            .tree()
            .provision_target(id)
            .await
            .map_err(failed)?
            .ok_or_else(|| FileFailure::NotFound(format!("workspace {id} not found")))?;
        let Some(backend) = self
            .backend_of(id)
            .await
            .map_err(|e| FileFailure::Failed(e.to_string()))?
        else {
            return Err(molecule_tree::hooks::no_files());
        };
        let root = match &op {
            FileOp::List { root, .. }
            | FileOp::Read { root, .. }
            | FileOp::Write { root, .. }
            | FileOp::Delete { root, .. } => *root,
        };
        let t = FileTarget {
            workspace_id: id,
            runtime: target.runtime.as_str().to_owned(),
            root,
            image: self.image_for(target.runtime).await.map_err(failed)?,
        };
        match op {
            FileOp::List { path, depth, .. } => backend.list_files(&t, &path, depth).await.map(FileAnswer::Listed),
            FileOp::Read { path, .. } => backend.read_file(&t, &path).await.map(FileAnswer::Read),
            FileOp::Write { path, bytes, .. } => backend.write_file(&t, &path, &bytes).await.map(|()| FileAnswer::Done),
            FileOp::Delete { path, .. } => backend.delete_file(&t, &path).await.map(|()| FileAnswer::Done),
        }
    }

    /// A shell in `id`'s running workload, through the backend that ran it.
    pub async fn terminal(&self, id: Uuid) -> Result<molecule_tree::hooks::Terminal, TerminalFailure> {
        let Some(backend) = self
            .backend_of(id)
            .await
            .map_err(|e| TerminalFailure::Unavailable(e.to_string()))?
        else {
            return Err(molecule_tree::hooks::no_terminal());
        };
        let shell = backend.open_shell(id).await?;
        Ok(molecule_tree::hooks::Terminal {
            program: shell.program,
            output: shell.output,
            input: shell.input,
            resize: shell.resize,
        })
    }

    /// What `/configs` starts with: the org node's `files_dir`, else its template, else
    /// `<runtime>-default` if there is one (config recovery); then the generated `config.yaml`
    /// and the system prompt.
    async fn seed_files(
        &self,
        target: &ProvisionTarget,
        model: Option<&str>,
        provider: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<u8>>, molecule_templates::LoadError> {
        let registry = self.inner.services.templates().clone();
        let seed = target.seed.clone();
        let runtime = target.runtime.as_str().to_owned();
        let (name, role, tier) = (target.name.clone(), target.role.clone(), target.tier);
        let (model, provider) = (model.map(str::to_owned), provider.map(str::to_owned));
        let read = tokio::task::spawn_blocking(move || {
            let template = if let Some(dir) = &seed.files_dir {
                Some(molecule_templates::Template::from_dir(std::path::Path::new(dir))?)
            } else if !seed.template.is_empty() {
                Some(registry.get(&seed.template)?.ok_or_else(|| {
                    molecule_templates::LoadError {
                        id: seed.template.clone(),
                        file: registry
                            .dir()
                            .map(|d| d.join(&seed.template).display().to_string())
                            .unwrap_or_else(|| "CONFIGS_DIR (unset)".into()),
                        reason:
                            "the workspace's template is gone: restore it, or import it again (POST /templates/import)"
                                .into(),
                    }
                })?)
            } else {
                registry.get(&format!("{runtime}-default")).ok().flatten()
            };
            molecule_templates::seed_files(
                template.as_ref(),
                &molecule_templates::Seed {
                    name: &name,
                    role: role.as_deref(),
                    tier,
                    runtime: &runtime,
                    model: model.as_deref(),
                    provider: provider.as_deref(),
                    system_prompt: seed.system_prompt.as_deref(),
                },
            )
        })
        .await;
        read.unwrap_or_else(|e| {
            Err(molecule_templates::LoadError {
                id: String::new(),
                file: String::new(),
                reason: format!("reading the template panicked: {e}"),
            })
        })
    }

    /// The backend that provisioned `id` (its row says which; else the default), if any.
    async fn backend_of(&self, id: Uuid) -> Result<Option<Arc<dyn Backend>>, StopError> {
        let name = self.inner.services.tree().backend_of(id).await?;
        let name = name.as_deref().or(self.inner.default_backend);
        Ok(name.and_then(|n| self.inner.backends.get(n).cloned()))
    }

    /// Stops the workload through the backend that started it: a bounded retry (3 attempts,
    /// waits doubling from 1 s). On exhaustion a `LEAK_SUSPECT` event is persisted and the
    /// caller goes on; a cancellation ends the retry without one.
    ///
    /// Waits for an in-flight provision of the same workspace (its gate) first, so a workload
    /// started concurrently is stopped too.
    pub async fn stop(&self, id: Uuid) -> Result<(), StopError> {
        let gate = self.gate(id);
        let _held = gate.lock().await;
        self.stop_unlocked(id).await
    }

    async fn stop_unlocked(&self, id: Uuid) -> Result<(), StopError> {
        let Some(backend) = self.backend_of(id).await? else {
            return Ok(()); // no backend: nothing can be running
        };
        let attempts = self.inner.config.stop_attempts.max(1);
        let mut last = BackendError::Failed("not attempted".into());
        let mut delay = self.inner.config.stop_backoff;
        for attempt in 1..=attempts {
            match backend.stop(id).await {
                Ok(()) => {
                    if attempt > 1 {
                        tracing::info!(workspace_id = %id, backend = backend.name(), attempt, "stop succeeded after retrying");
                    }
                    // The workload is gone; a failure to forget its instance id is only stale
                    // bookkeeping (the next provision overwrites it), so it is logged.
                    if let Err(e) = self.inner.services.tree().clear_instance(id).await {
                        tracing::warn!(workspace_id = %id, error = %e.chain(), "stopped, but the instance id was not cleared");
                    }
                    return Ok(());
                }
                Err(e) => last = e,
            }
            if attempt < attempts {
                tokio::select! {
                    () = self.inner.cancel.cancelled() => {
                        tracing::warn!(workspace_id = %id, backend = backend.name(), last_error = %last, "stop abandoned mid-retry: cancelled");
                        return Err(StopError::Cancelled(id));
                    }
                    () = tokio::time::sleep(delay) => {}
                }
                delay *= 2;
            }
        }
        tracing::error!(workspace_id = %id, backend = backend.name(), attempts, last_error = %last, "LEAK-SUSPECT: workload may still be running");
        let payload =
            json!({ "workspace_id": id, "backend": backend.name(), "attempts": attempts, "error": last.to_string() });
        if let Err(e) = self.inner.services.tree().record_leak_suspect(id, payload).await {
            tracing::error!(workspace_id = %id, error = %e.chain(), "could not persist the LEAK_SUSPECT event");
        }
        Err(StopError::Exhausted {
            workspace_id: id,
            attempts,
            last_error: last,
        })
    }

    async fn remove_volumes(&self, id: Uuid) -> Result<(), HookError> {
        match self.backend_of(id).await.map_err(HookError::from_source)? {
            Some(b) => b.remove_volumes(id).await.map_err(HookError::from_source),
            None => Ok(()),
        }
    }

    /// Stop then provision again, in the background. A restart requested while one runs sets
    /// one pending re-run (however many arrive), so N concurrent calls make at most 2 cycles.
    pub fn restart(&self, id: Uuid, reset_session: bool) -> RestartOutcome {
        if !self.has_provisioner() {
            return RestartOutcome::NoProvisioner;
        }
        {
            let mut restarts = self
                .inner
                .restarts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let state = restarts.entry(id).or_default();
            state.reset_session |= reset_session;
            if state.running {
                state.pending = true;
                return RestartOutcome::Coalesced;
            }
            state.running = true;
        }
        let this = self.clone();
        tokio::spawn(molecule_actor::on_behalf(async move {
            loop {
                let reset = {
                    let mut restarts = this
                        .inner
                        .restarts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    std::mem::take(&mut restarts.entry(id).or_default().reset_session)
                };
                this.restart_cycle(id, reset).await;
                let mut restarts = this
                    .inner
                    .restarts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Requests that arrived since this cycle was claimed (even before it began)
                // coalesce into exactly one more run.
                let s = restarts.entry(id).or_default();
                if s.pending {
                    s.pending = false;
                } else {
                    restarts.remove(&id);
                    break;
                }
            }
        }));
        RestartOutcome::Started
    }

    async fn restart_cycle(&self, id: Uuid, reset_session: bool) {
        let gate = self.gate(id);
        let _held = gate.lock().await;
        let claimed = self.inner.services.tree().claim_restart(id, reset_session).await;
        match claimed {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(workspace_id = %id, "restart skipped: removed or paused meanwhile, or external");
                return;
            }
            Err(e) => {
                tracing::warn!(workspace_id = %id, error = %e.chain(), "restart could not claim the workspace");
                return;
            }
        }
        // Replace the workload; a failed stop is logged (and leak-flagged) but provisioning
        // replaces the old workload anyway.
        if let Err(e) = self.stop_unlocked(id).await {
            tracing::warn!(workspace_id = %id, error = %e, "restart: stop failed; provisioning over it");
        }
        // A failure is on the workspace row (failed + reason) and in the log already.
        if let Err(e) = self.provision_locked(id, reset_session).await {
            tracing::debug!(workspace_id = %id, error = %chain(&e), "restart: provision failed");
        }
    }
}

#[async_trait::async_trait]
impl WorkloadHooks for Dispatcher {
    fn has_provisioner(&self) -> bool {
        Dispatcher::has_provisioner(self)
    }

    async fn provision(&self, id: Uuid) {
        Dispatcher::provision(self, id);
    }

    async fn restart(&self, id: Uuid, reset_session: bool) -> RestartOutcome {
        Dispatcher::restart(self, id, reset_session)
    }

    async fn bootstrap_failed(
        &self,
        id: Uuid,
        reason: FailureReason,
        payload: serde_json::Value,
    ) -> Result<bool, HookError> {
        // After any provision of this workspace in flight: its outcome is recorded first.
        let gate = self.gate(id);
        let _held = gate.lock().await;
        self.inner
            .services
            .tree()
            .mark_failed_from(id, reason, &[molecule_domain::WorkspaceStatus::Provisioning], payload)
            .await
            .map_err(HookError::from_source)
    }

    async fn stop_one(&self, id: Uuid) -> Result<(), HookError> {
        Dispatcher::stop(self, id).await.map_err(HookError::from_source)
    }

    async fn files(&self, id: Uuid, op: FileOp) -> Result<FileAnswer, FileFailure> {
        Dispatcher::files(self, id, op).await
    }

    async fn terminal(&self, id: Uuid) -> Result<molecule_tree::hooks::Terminal, TerminalFailure> {
        Dispatcher::terminal(self, id).await
    }

    async fn stop(&self, ids: &[Uuid]) -> Vec<StopFailure> {
        let mut failures = Vec::new();
        for id in ids {
            let result = match Dispatcher::stop(self, *id).await {
                Ok(()) => self.remove_volumes(*id).await,
                Err(e) => Err(HookError::from_source(e)),
            };
            if let Err(error) = result {
                failures.push(StopFailure {
                    workspace_id: *id,
                    error: error.to_string(),
                });
            }
        }
        failures
    }

    async fn purge(&self, ids: &[Uuid]) {
        for id in ids {
            if let Err(e) = self.remove_volumes(*id).await {
                tracing::warn!(workspace_id = %id, error = %e, "purge: volumes not removed");
            }
        }
    }

    async fn is_running(&self, id: Uuid) -> Option<bool> {
        // Only a backend that recorded running this workspace can say it is dead: an
        // external agent (or one never provisioned) is nobody's workload.
        let recorded = match self.inner.services.tree().backend_of(id).await {
            Ok(name) => name.and_then(|n| self.inner.backends.get(n.as_str()).cloned()),
            Err(e) => {
                tracing::warn!(workspace_id = %id, error = %e.chain(), "cannot tell which backend runs the workspace");
                return None;
            }
        };
        let backend = recorded?;
        match backend.is_running(id).await {
            Ok(running) => Some(running),
            Err(e) => {
                tracing::warn!(workspace_id = %id, backend = backend.name(), error = %e, "cannot tell whether the workload runs");
                None
            }
        }
    }
}
