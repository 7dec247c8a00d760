use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{EventType, FailureReason, WorkspaceStatus};
use molecule_provisioner::{Backend, ImageRef, ProvisionSpec, select_image};
use molecule_service::hooks::StopFailure;
use molecule_service::{RestartOutcome, Services, WorkloadHooks, events};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How workloads are started.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// `None` = unlimited (see [`crate::parse_concurrency`]).
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
    /// Stop attempts and the first wait between them (doubling: 1 s, 2 s, 4 s, …).
    pub stop_attempts: usize,
    pub stop_backoff: Duration,
    /// This platform's instance label: the reconciler touches nothing else.
    pub platform_instance: String,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            concurrency: Some(crate::DEFAULT_CONCURRENCY),
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
            stop_attempts: 3,
            stop_backoff: Duration::from_secs(1),
            platform_instance: "default".into(),
        }
    }
}

/// Why a stop did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StopError {
    #[error("stop of {workspace_id} failed after {attempts} attempts: {last_error}")]
    Exhausted {
        workspace_id: Uuid,
        attempts: usize,
        last_error: String,
    },
    #[error("stop of {0} was cancelled")]
    Cancelled(Uuid),
    #[error("{0}")]
    Database(String),
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
        tokio::spawn(async move {
            let _ = this.provision_sync(id, false).await;
        })
    }

    /// Provisions and waits, holding the workspace's gate (never two provisions of one
    /// workspace at once) and a global permit. Errors are also written to the workspace.
    pub async fn provision_sync(&self, id: Uuid, reset_session: bool) -> Result<(), String> {
        let gate = self.gate(id);
        let _held = gate.lock().await;
        self.provision_locked(id, reset_session).await
    }

    async fn fail(&self, id: Uuid, text: String, backend: Option<&str>) -> Result<(), String> {
        tracing::warn!(workspace_id = %id, error = %text, "provisioning failed");
        let payload = json!({ "source": "dispatcher", "backend": backend });
        if let Err(e) = self.inner.services.mark_failed(id, reason(text.clone()), payload).await {
            tracing::error!(workspace_id = %id, error = %e, "could not record the provisioning failure");
        }
        Err(text)
    }

    async fn provision_locked(&self, id: Uuid, reset_session: bool) -> Result<(), String> {
        let services = &self.inner.services;
        let row: Option<(DbWorkspaceStatus, String, i32, Option<String>)> = {
            let mut conn = services.pool.get().await.map_err(|e| e.to_string())?;
            w::table
                .find(id)
                .select((w::status, w::runtime, w::tier, w::model))
                .first(&mut conn)
                .await
                .optional()
                .map_err(|e| e.to_string())?
        };
        let Some((status, runtime, tier, model)) = row else {
            return Err(format!("workspace {id} not found"));
        };
        if matches!(status.0, WorkspaceStatus::Removed | WorkspaceStatus::Paused) || runtime == "external" {
            tracing::info!(workspace_id = %id, status = %status.0, runtime, "nothing to provision");
            return Ok(());
        }
        let Some(backend) = self
            .inner
            .default_backend
            .and_then(|n| self.inner.backends.get(n))
            .cloned()
        else {
            return self
                .fail(
                    id,
                    "no provisioner configured: set MOLECULE_BACKEND (docker or local) on the server".into(),
                    None,
                )
                .await;
        };
        let _permit = match &self.inner.permits {
            Some(p) => Some(p.clone().acquire_owned().await.map_err(|e| e.to_string())?),
            None => None,
        };
        // A fresh credential per provision; the old workload's tokens stop working.
        let token = match services.rotate_tokens(id).await {
            Ok(t) => t.auth_token,
            Err(e) => {
                return self
                    .fail(
                        id,
                        format!("could not mint the workspace token: {e}"),
                        Some(backend.name()),
                    )
                    .await;
            }
        };
        let pin = if self.inner.config.local_image_override {
            None
        } else {
            self.pin_for(&runtime).await
        };
        let image = select_image(
            pin.as_deref(),
            &runtime,
            &self.inner.config.runtime_images,
            &self.inner.config.default_image,
        );
        let mut env = self.inner.config.agent_env.clone();
        env.insert("WORKSPACE_ID".into(), id.to_string());
        env.insert("PLATFORM_URL".into(), self.inner.config.platform_url.clone());
        env.insert("MOLECULE_URL".into(), self.inner.config.platform_url.clone());
        env.insert("MOLECULE_WORKSPACE_TOKEN".into(), token);
        env.insert("TIER".into(), tier.to_string());
        env.insert("MOLECULE_RUNTIME".into(), runtime.clone());
        if let Some(m) = &model {
            env.insert("MODEL".into(), m.clone());
            if let Some((provider, _)) = m.split_once(':') {
                env.insert("MODEL_PROVIDER".into(), provider.to_owned());
                env.insert("LLM_PROVIDER".into(), provider.to_owned());
            }
        }
        let spec = ProvisionSpec {
            workspace_id: id,
            runtime: runtime.clone(),
            tier,
            image,
            env,
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
                let recorded = {
                    let mut conn = services.pool.get().await.map_err(|e| e.to_string())?;
                    diesel::update(
                        w::table
                            .find(id)
                            .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed))),
                    )
                    .set((
                        w::backend.eq(name),
                        w::instance_id.eq(&p.instance_id),
                        w::runtime_image_digest.eq(&p.image_digest),
                    ))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?
                };
                if recorded == 0 {
                    tracing::warn!(workspace_id = %id, backend = name, "removed while provisioning; stopping the new workload");
                    if let Some(b) = self.inner.backends.get(name)
                        && let Err(e) = b.stop(id).await
                    {
                        tracing::error!(workspace_id = %id, backend = name, error = %e, "LEAK-SUSPECT: could not stop the workload of a removed workspace");
                    }
                    return Ok(());
                }
                tracing::info!(workspace_id = %id, backend = name, image = ?p.image, "provisioned");
                Ok(())
            }
            Ok(Err(e)) => self.fail(id, e.to_string(), Some(name)).await,
            Err(join) if join.is_panic() => {
                let msg = molecule_periodic::panic_message(join.into_panic().as_ref());
                self.fail(
                    id,
                    format!("provisioning panicked in the {name} backend: {msg}"),
                    Some(name),
                )
                .await
            }
            Err(join) => {
                self.fail(id, format!("provisioning task cancelled: {join}"), Some(name))
                    .await
            }
        }
    }

    async fn pin_for(&self, runtime: &str) -> Option<String> {
        #[derive(diesel::QueryableByName)]
        struct Pin {
            #[diesel(sql_type = Text)]
            digest: String,
        }
        let mut conn = self.inner.services.pool.get().await.ok()?;
        let pins: Vec<Pin> = diesel::sql_query("SELECT digest FROM runtime_image_pins WHERE template_name = $1")
            .bind::<Text, _>(runtime)
            .load(&mut conn)
            .await
            .ok()?;
        pins.into_iter().next().map(|p| p.digest)
    }

    /// The backend that provisioned `id` (its row says which), if any.
    async fn backend_of(&self, id: Uuid) -> Result<Option<Arc<dyn Backend>>, StopError> {
        let mut conn = self
            .inner
            .services
            .pool
            .get()
            .await
            .map_err(|e| StopError::Database(e.to_string()))?;
        let name: Option<Option<String>> = w::table
            .find(id)
            .select(w::backend)
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| StopError::Database(e.to_string()))?;
        let name = name.flatten().or_else(|| self.inner.default_backend.map(str::to_owned));
        Ok(name.and_then(|n| self.inner.backends.get(n.as_str()).cloned()))
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
        let mut last = String::new();
        let mut delay = self.inner.config.stop_backoff;
        for attempt in 1..=attempts {
            match backend.stop(id).await {
                Ok(()) => {
                    if attempt > 1 {
                        tracing::info!(workspace_id = %id, backend = backend.name(), attempt, "stop succeeded after retrying");
                    }
                    self.clear_instance(id).await;
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
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
        let payload = json!({ "workspace_id": id, "backend": backend.name(), "attempts": attempts, "error": last });
        if let Ok(mut conn) = self.inner.services.pool.get().await
            && let Err(e) = events::record(&mut conn, EventType::LeakSuspect, Some(id), payload).await
        {
            tracing::error!(workspace_id = %id, error = %e, "could not persist the LEAK_SUSPECT event");
        }
        Err(StopError::Exhausted {
            workspace_id: id,
            attempts,
            last_error: last,
        })
    }

    async fn clear_instance(&self, id: Uuid) {
        if let Ok(mut conn) = self.inner.services.pool.get().await {
            let _ = diesel::update(w::table.find(id))
                .set(w::instance_id.eq(None::<String>))
                .execute(&mut conn)
                .await;
        }
    }

    async fn remove_volumes(&self, id: Uuid) -> Result<(), String> {
        match self.backend_of(id).await.map_err(|e| e.to_string())? {
            Some(b) => b.remove_volumes(id).await.map_err(|e| e.to_string()),
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
        tokio::spawn(async move {
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
        });
        RestartOutcome::Started
    }

    async fn restart_cycle(&self, id: Uuid, reset_session: bool) {
        let gate = self.gate(id);
        let _held = gate.lock().await;
        let claimed = async {
            let mut conn = self.inner.services.pool.get().await.map_err(|e| e.to_string())?;
            let n = diesel::update(w::table.find(id).filter(w::status.ne_all([
                DbWorkspaceStatus(WorkspaceStatus::Removed),
                DbWorkspaceStatus(WorkspaceStatus::Paused),
            ])))
            .set((
                w::status.eq(DbWorkspaceStatus(WorkspaceStatus::Provisioning)),
                w::url.eq(None::<String>),
                w::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
            if n == 1 {
                events::record(
                    &mut conn,
                    EventType::WorkspaceProvisioning,
                    Some(id),
                    json!({ "restart": true, "reset_session": reset_session }),
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(n == 1)
        }
        .await;
        match claimed {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(workspace_id = %id, "restart skipped: removed or paused meanwhile");
                return;
            }
            Err(e) => {
                tracing::warn!(workspace_id = %id, error = %e, "restart could not claim the workspace");
                return;
            }
        }
        // Replace the workload; a failed stop is logged (and leak-flagged) but provisioning
        // replaces the old workload anyway.
        if let Err(e) = self.stop_unlocked(id).await {
            tracing::warn!(workspace_id = %id, error = %e, "restart: stop failed; provisioning over it");
        }
        let _ = self.provision_locked(id, reset_session).await;
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

    async fn stop_one(&self, id: Uuid) -> Result<(), String> {
        Dispatcher::stop(self, id).await.map_err(|e| e.to_string())
    }

    async fn stop(&self, ids: &[Uuid]) -> Vec<StopFailure> {
        let mut failures = Vec::new();
        for id in ids {
            let result = match Dispatcher::stop(self, *id).await {
                Ok(()) => self.remove_volumes(*id).await,
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = result {
                failures.push(StopFailure {
                    workspace_id: *id,
                    error,
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
}
