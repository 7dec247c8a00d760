//! The dispatcher against a real database with scripted backends.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use molecule_api::workspaces::CreateWorkspace;
use molecule_dispatcher::{Dispatcher, DispatcherConfig, RestartOutcome, TimeoutConfig};
use molecule_domain::Vocabulary;
use molecule_provisioner::{Backend, BackendError, ManagedResource, ProvisionSpec, Provisioned};
use molecule_service::testing::workspace_with_token;
use molecule_service::{ServiceConfig, Services};
use molecule_testkit::TestDb;
use molecule_testkit::{until, until_ok};
use uuid::Uuid;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    NoImage,
    Panic,
    StopFails,
}

#[derive(Default)]
struct Counters {
    /// Stops of this workspace fail.
    fail_stop_for: std::sync::Mutex<Option<Uuid>>,
    /// The image of the last provision.
    last_image: std::sync::Mutex<Option<String>>,
    /// The agent environment of the last provision.
    last_env: std::sync::Mutex<Option<std::collections::BTreeMap<String, String>>>,
    /// The secret environment of the last provision (exposed: this is a test).
    last_secret_env: std::sync::Mutex<Option<std::collections::BTreeMap<String, String>>>,
    provisions: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    stops: AtomicUsize,
}

struct Fake {
    mode: Mode,
    delay: Duration,
    n: Arc<Counters>,
}

#[async_trait::async_trait]
impl Backend for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    async fn provision(&self, spec: &ProvisionSpec) -> Result<Provisioned, BackendError> {
        let now = self.n.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.n.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.n.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.n.provisions.fetch_add(1, Ordering::SeqCst);
        // The token travels with the secrets, never in the public environment.
        assert!(spec.secret_env.contains_key("MOLECULE_WORKSPACE_TOKEN"));
        assert!(!spec.env.contains_key("MOLECULE_WORKSPACE_TOKEN"));
        *self.n.last_image.lock().unwrap() = Some(spec.image.to_string());
        *self.n.last_env.lock().unwrap() = Some(spec.env.clone());
        *self.n.last_secret_env.lock().unwrap() = Some(
            spec.secret_env
                .iter()
                .map(|(k, v)| (k.clone(), secrecy::ExposeSecret::expose_secret(v).to_owned()))
                .collect(),
        );
        match self.mode {
            Mode::NoImage => Err(BackendError::ImageUnavailable {
                image: spec.image.to_string(),
                reason: "manifest unknown".into(),
            }),
            Mode::Panic => panic!("injected backend panic"),
            _ => Ok(Provisioned {
                url: None,
                instance_id: Some(format!("fake-{}", spec.workspace_id)),
                image: Some(spec.image.to_string()),
                image_digest: Some("sha256:abc".into()),
            }),
        }
    }
    async fn stop(&self, id: Uuid) -> Result<(), BackendError> {
        self.n.stops.fetch_add(1, Ordering::SeqCst);
        if *self.n.fail_stop_for.lock().unwrap() == Some(id) {
            return Err(BackendError::Failed("engine lost this one".into()));
        }
        if self.mode == Mode::StopFails {
            Err(BackendError::Failed("engine unreachable".into()))
        } else {
            Ok(())
        }
    }
    async fn remove_volumes(&self, _id: Uuid) -> Result<(), BackendError> {
        Ok(())
    }
    async fn is_running(&self, _id: Uuid) -> Result<bool, BackendError> {
        Ok(true)
    }
    async fn list_managed(&self) -> Result<Vec<ManagedResource>, BackendError> {
        Ok(Vec::new())
    }
}

struct Setup {
    _db: TestDb,
    services: Services,
    dispatcher: Dispatcher,
    n: Arc<Counters>,
}

async fn setup(mode: Option<Mode>, delay: Duration, concurrency: Option<usize>) -> Setup {
    setup_with(mode, delay, concurrency, None).await
}

async fn setup_with(mode: Option<Mode>, delay: Duration, concurrency: Option<usize>, org_id: Option<&str>) -> Setup {
    let db = TestDb::new().await;
    let base = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    let n = Arc::new(Counters::default());
    let backends: Vec<Arc<dyn Backend>> = match mode {
        Some(mode) => vec![Arc::new(Fake {
            mode,
            delay,
            n: n.clone(),
        })],
        None => Vec::new(),
    };
    let config = DispatcherConfig {
        concurrency,
        stop_backoff: Duration::from_millis(10),
        org_id: org_id.map(str::to_owned),
        ..DispatcherConfig::default()
    };
    let dispatcher = Dispatcher::new(backends, mode.map(|_| "fake"), base.clone(), config);
    let services = base.with_hooks(Arc::new(dispatcher.clone()));
    Setup {
        _db: db,
        services,
        dispatcher,
        n,
    }
}

async fn wait_status(s: &Services, id: Uuid, want: &str) -> molecule_api::workspaces::Workspace {
    until_ok(&format!("{id} to become {want}"), Duration::from_secs(10), || async {
        let w = s.tree().get_workspace(id).await.unwrap();
        if w.status.as_str() == want {
            Ok(w)
        } else {
            Err(format!("still {}; last error {:?}", w.status, w.last_sample_error))
        }
    })
    .await
}

async fn events(s: &Services, id: Uuid, ty: &str) -> Vec<serde_json::Value> {
    s.tree()
        .recent_events(Some(id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == ty)
        .map(|e| e.payload)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_backend_creation_fails_with_the_reason() {
    let t = setup(None, Duration::ZERO, Some(3)).await;
    let id = workspace_with_token(&t.services, "orphan").await.id;
    let w = wait_status(&t.services, id, "failed").await;
    assert!(w.last_sample_error.unwrap().contains("no provisioner configured"));
    assert!(
        events(&t.services, id, "WORKSPACE_PROVISION_FAILED").await[0]["error"]
            .as_str()
            .unwrap()
            .contains("no provisioner configured")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unobtainable_image_fails_the_workspace_with_the_reason() {
    let t = setup(Some(Mode::NoImage), Duration::ZERO, Some(3)).await;
    let id = workspace_with_token(&t.services, "no-image").await.id;
    let w = wait_status(&t.services, id, "failed").await;
    assert!(
        w.last_sample_error
            .as_deref()
            .unwrap()
            .contains("cannot be obtained: manifest unknown"),
        "{w:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_backend_fails_the_workspace_and_the_rest_goes_on() {
    let t = setup(Some(Mode::Panic), Duration::ZERO, Some(3)).await;
    let id = workspace_with_token(&t.services, "boom").await.id;
    let w = wait_status(&t.services, id, "failed").await;
    assert!(w.last_sample_error.unwrap().contains("injected backend panic"));
    assert_eq!(events(&t.services, id, "WORKSPACE_PROVISION_FAILED").await.len(), 1);
    // Still serving: another request goes through.
    assert!(t.services.tree().list_workspaces().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_provision_records_backend_instance_and_digest() {
    let t = setup(Some(Mode::Ok), Duration::ZERO, Some(3)).await;
    let id = workspace_with_token(&t.services, "fine").await.id;
    let w = until("the instance to be recorded", Duration::from_secs(10), || async {
        Some(t.services.tree().get_workspace(id).await.unwrap()).filter(|w| w.instance_id.is_some())
    })
    .await;
    assert_eq!(w.instance_id.as_deref(), Some(format!("fake-{id}").as_str()));
    assert_eq!(w.runtime_image_digest.as_deref(), Some("sha256:abc"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_retries_then_persists_a_leak_suspect_event() {
    let t = setup(Some(Mode::StopFails), Duration::ZERO, Some(3)).await;
    let id = workspace_with_token(&t.services, "sticky").await.id;
    t.dispatcher.provision_sync(id, false).await.unwrap();
    let err = t.dispatcher.stop(id).await.unwrap_err();
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
    assert_eq!(t.n.stops.load(Ordering::SeqCst), 3);
    let leak = events(&t.services, id, "LEAK_SUSPECT").await;
    assert_eq!(leak.len(), 1);
    assert_eq!(
        (leak[0]["backend"].as_str(), leak[0]["attempts"].as_u64()),
        (Some("fake"), Some(3))
    );
    assert!(leak[0]["error"].as_str().unwrap().contains("engine unreachable"));

    // A cancelled retry ends early, without a leak event.
    t.dispatcher.shutdown();
    assert!(matches!(
        t.dispatcher.stop(id).await,
        Err(molecule_dispatcher::StopError::Cancelled(_))
    ));
    assert_eq!(events(&t.services, id, "LEAK_SUSPECT").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn gates_bound_concurrency_globally_and_per_workspace() {
    let t = setup(Some(Mode::Ok), Duration::from_millis(150), Some(2)).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(workspace_with_token(&t.services, &format!("g{i}")).await.id);
    }
    until("six provisions", Duration::from_secs(20), || async {
        (t.n.provisions.load(Ordering::SeqCst) >= 6).then_some(())
    })
    .await;
    assert_eq!(
        t.n.max_in_flight.load(Ordering::SeqCst),
        2,
        "MOLECULE_PROVISION_CONCURRENCY=2"
    );

    // Never two provisions of one workspace at once.
    let t = setup(Some(Mode::Ok), Duration::from_millis(100), None).await;
    let id = workspace_with_token(&t.services, "single").await.id;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let d = t.dispatcher.clone();
            tokio::spawn(async move { d.provision_sync(id, false).await })
        })
        .collect();
    for r in runs {
        r.await.unwrap().unwrap();
    }
    assert_eq!(t.n.max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_restarts_coalesce_into_one_rerun() {
    let t = setup(Some(Mode::Ok), Duration::from_millis(200), None).await;
    let id = workspace_with_token(&t.services, "restarty").await.id;
    // Creation provisions in the background: let that one finish first.
    until("the creation's provision", Duration::from_secs(10), || async {
        (t.n.provisions.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    let before = t.n.provisions.load(Ordering::SeqCst);
    let outcomes: Vec<RestartOutcome> = (0..5).map(|_| t.dispatcher.restart(id, false)).collect();
    assert_eq!(outcomes[0], RestartOutcome::Started);
    assert!(outcomes[1..].iter().all(|o| *o == RestartOutcome::Coalesced));
    until("the run and one coalesced re-run", Duration::from_secs(10), || async {
        (t.n.provisions.load(Ordering::SeqCst) >= before + 2).then_some(())
    })
    .await;
    // Give a stray third cycle time to show up (there must be none).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(t.n.provisions.load(Ordering::SeqCst), before + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_past_its_timeout_fails_naming_the_timeout() {
    let t = setup(Some(Mode::Ok), Duration::ZERO, None).await;
    let id = workspace_with_token(&t.services, "slowpoke").await.id;
    let db_url = t._db.url.clone();
    let _ = db_url;
    t._db
        .execute_sql(&format!(
            "UPDATE workspaces SET updated_at = now() - interval '11 minutes' WHERE id = '{id}'"
        ))
        .await;
    let report = t
        .dispatcher
        .sweep_provision_timeouts(&TimeoutConfig::default())
        .await
        .unwrap();
    assert_eq!(report["timed_out"], 1);
    let w = t.services.tree().get_workspace(id).await.unwrap();
    assert_eq!(w.status.as_str(), "failed");
    assert!(
        w.last_sample_error
            .unwrap()
            .contains("timed out after 600s (the default")
    );
    let ev = events(&t.services, id, "WORKSPACE_PROVISION_FAILED").await;
    assert_eq!(ev[0]["source"], "provision_timeout_sweep");
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_reports_partial_and_total_failure_and_restart_respects_paused_ancestors() {
    let t = setup(Some(Mode::Ok), Duration::ZERO, None).await;
    let root = workspace_with_token(&t.services, "root").await.id;
    let child = t
        .services
        .create_workspace(CreateWorkspace {
            name: "child".into(),
            parent_id: Some(root),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    wait_status(&t.services, root, "provisioning").await;

    // The child's stop fails: 207, the root paused, the child not, with the stage and reason.
    *t.n.fail_stop_for.lock().unwrap() = Some(child);
    let partial = t.services.tree().pause_workspace(root).await.unwrap();
    assert_eq!(
        (partial.http_status(), partial.count, partial.failed_count),
        (207, 1, 1)
    );
    assert_eq!(
        (partial.failures[0].workspace_id, partial.failures[0].stage),
        (child, molecule_api::lifecycle::Stage::Stop)
    );
    assert!(partial.failures[0].error.contains("engine lost this one"));
    assert_eq!(
        t.services.tree().get_workspace(root).await.unwrap().status.as_str(),
        "paused"
    );
    assert_ne!(
        t.services.tree().get_workspace(child).await.unwrap().status.as_str(),
        "paused"
    );

    // A restart under a paused ancestor is refused.
    let err = t.services.tree().restart_workspace(child, false).await.unwrap_err();
    assert!(
        matches!(err, molecule_service::ServiceError::Conflict { .. })
            && err.to_string().contains("\"root\" is paused"),
        "{err}"
    );

    // Pausing only the failing child: nothing paused, 500.
    let none = t.services.tree().pause_workspace(child).await.unwrap();
    assert_eq!(
        (none.http_status(), none.count, none.status),
        (500, 0, molecule_api::lifecycle::BulkStatus::PauseFailed)
    );

    // Resume brings the root back to provisioning (and provisions it).
    *t.n.fail_stop_for.lock().unwrap() = None;
    let resumed = t.services.tree().resume_workspace(root).await.unwrap();
    assert_eq!((resumed.http_status(), resumed.count), (200, 1));
    assert_eq!(
        t.services.tree().get_workspace(root).await.unwrap().status.as_str(),
        "provisioning"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn collapse_removes_and_stops_the_direct_children() {
    let t = setup(Some(Mode::Ok), Duration::ZERO, None).await;
    let root = workspace_with_token(&t.services, "root").await.id;
    let mut kids = Vec::new();
    for name in ["a", "b"] {
        kids.push(
            t.services
                .create_workspace(CreateWorkspace {
                    name: name.into(),
                    parent_id: Some(root),
                    ..Default::default()
                })
                .await
                .unwrap()
                .id,
        );
    }
    let grandchild = t
        .services
        .create_workspace(CreateWorkspace {
            name: "a1".into(),
            parent_id: Some(kids[0]),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let stops_before = t.n.stops.load(Ordering::SeqCst);
    let collapsed = t.services.tree().collapse_workspace(root).await.unwrap();
    let mut removed = collapsed.removed.clone();
    removed.sort();
    assert_eq!(removed, ["a", "b"]);
    for id in kids.iter().chain([&grandchild]) {
        assert_eq!(
            t.services.tree().get_workspace(*id).await.unwrap().status.as_str(),
            "removed"
        );
    }
    assert_ne!(
        t.services.tree().get_workspace(root).await.unwrap().status.as_str(),
        "removed"
    );
    assert!(
        t.n.stops.load(Ordering::SeqCst) >= stops_before + 3,
        "every removed workload was stopped"
    );
    assert_eq!(events(&t.services, root, "WORKSPACE_COLLAPSED").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_digest_is_what_runs_unless_overridden() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let t = setup(Some(Mode::Ok), Duration::ZERO, None).await;
    let pin = molecule_api::pins::PinRequest {
        digest: digest.clone(),
        notes: Some("rollback".into()),
        updated_by: None,
    };
    t.services.tree().put_pin("claude-code", pin).await.unwrap();
    let id = workspace_with_token(&t.services, "pinned").await.id;
    t.dispatcher.provision_sync(id, false).await.unwrap();
    assert_eq!(
        t.n.last_image.lock().unwrap().clone().unwrap(),
        format!("molecule-agent@{digest}")
    );

    // WORKSPACE_IMAGE_LOCAL_OVERRIDE=1 skips the pin.
    let config = DispatcherConfig {
        local_image_override: true,
        ..DispatcherConfig::default()
    };
    let n = Arc::new(Counters::default());
    let overriding = Dispatcher::new(
        vec![Arc::new(Fake {
            mode: Mode::Ok,
            delay: Duration::ZERO,
            n: n.clone(),
        })],
        Some("fake"),
        t.services.clone(),
        config,
    );
    overriding.provision_sync(id, false).await.unwrap();
    assert_eq!(n.last_image.lock().unwrap().clone().unwrap(), "molecule-agent:latest");

    // Which workspaces still run an old digest is one query on runtime_image_digest.
    let bad = t
        .services
        .tree()
        .put_pin(
            "claude-code",
            molecule_api::pins::PinRequest {
                digest: "latest".into(),
                notes: None,
                updated_by: None,
            },
        )
        .await;
    assert!(matches!(
        bad,
        Err(molecule_service::ServiceError::Invalid { field: "digest", .. })
    ));
    t.services.tree().delete_pin("claude-code").await.unwrap();
    assert!(
        t.services.tree().delete_pin("claude-code").await.is_err(),
        "404 the second time"
    );
    assert!(t.services.tree().list_pins().await.unwrap().is_empty());
}

const ORG: &str = r#"
name: acme
defaults: { runtime: claude-code, tier: 2 }
workspaces:
  - name: lead
    role: coordinator
    children:
      - name: dev
        children:
          - name: dev-helper
      - name: qa
  - name: ops
    children:
      - name: oncall
"#;

#[tokio::test(flavor = "multi_thread")]
async fn org_import_is_idempotent_and_provisions_everything_under_a_tight_cap() {
    use molecule_api::org::ImportRequest;
    let t = setup(Some(Mode::Ok), Duration::from_millis(50), Some(1)).await;
    let req = |replace| ImportRequest {
        template: Some(ORG.into()),
        replace_if_exists: replace,
        ..ImportRequest::default()
    };
    let first = t.services.import_org(req(false), None).await.unwrap();
    assert_eq!(
        (first.http_status(), first.count, first.created, first.skipped),
        (201, 6, 6, 0)
    );
    assert_eq!(
        first.workspaces.iter().find(|w| w.name == "dev-helper").unwrap().node,
        "workspaces[0].children[0].children[0]"
    );

    let again = t.services.import_org(req(false), None).await.unwrap();
    assert_eq!(
        (again.http_status(), again.created, again.skipped),
        (201, 0, 6),
        "re-importing creates nothing"
    );
    assert_eq!(
        t.services.tree().list_workspaces().await.unwrap().len(),
        6,
        "one set of workspaces"
    );
    let ids_first: Vec<_> = first.workspaces.iter().map(|w| w.id).collect();
    let ids_again: Vec<_> = again.workspaces.iter().map(|w| w.id).collect();
    assert_eq!(ids_first, ids_again);

    // MOLECULE_PROVISION_CONCURRENCY=1: every workspace still gets provisioned, one at a time.
    until_ok("every workspace provisioned", Duration::from_secs(30), || async {
        let all = t.services.tree().list_workspaces().await.unwrap();
        if all.iter().all(|w| w.instance_id.is_some()) {
            Ok(())
        } else {
            Err(format!(
                "not all provisioned: {:?}",
                all.iter().map(|w| (&w.name, &w.instance_id)).collect::<Vec<_>>()
            ))
        }
    })
    .await;
    assert_eq!(t.n.max_in_flight.load(Ordering::SeqCst), 1);

    // replace_if_exists recreates.
    let replaced = t.services.import_org(req(true), None).await.unwrap();
    assert_eq!(
        replaced
            .workspaces
            .iter()
            .filter(|w| w.status == molecule_api::org::NodeStatus::Replaced)
            .count(),
        2,
        "the two roots (their subtrees are recreated under them)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn org_import_refuses_bad_trees_by_node_and_reports_partial_failure() {
    use molecule_api::org::ImportRequest;
    let t = setup(Some(Mode::Ok), Duration::ZERO, None).await;
    let import = |yaml: &str| {
        t.services.import_org(
            ImportRequest {
                template: Some(yaml.into()),
                ..ImportRequest::default()
            },
            None,
        )
    };
    let err = import("workspaces:\n  - name: a\n    children:\n      - name: ok\n      - name: 'bad|name'\n")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("workspaces[0].children[1]") && err.contains("name"),
        "{err}"
    );
    let err = import("workspaces:\n  - name: twin\n  - name: twin\n")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("workspaces[1]") && err.contains("two siblings"), "{err}");
    assert!(import("workspaces: [").await.is_err());
    assert!(
        t.services.tree().list_workspaces().await.unwrap().is_empty(),
        "nothing written for an invalid tree"
    );

    // One node fails (a URL that is not http): 207 with its reason, the rest created.
    let partial = import("workspaces:\n  - name: fine\n  - name: broken\n    external: true\n    url: 'ftp://x'\n")
        .await
        .unwrap();
    assert_eq!((partial.http_status(), partial.created, partial.failed), (207, 1, 1));
    let failed = partial
        .workspaces
        .iter()
        .find(|w| w.status == molecule_api::org::NodeStatus::Failed)
        .unwrap();
    assert!(failed.error.as_deref().unwrap().contains("url"), "{failed:?}");
}

/// In org mode every agent gets the tenant id, so it can send the header the tenant guard asks
/// for on its inbox polls and delegation heartbeats; outside it, no such variable.
#[tokio::test(flavor = "multi_thread")]
async fn agents_get_the_tenant_id_in_org_mode() {
    for org in [Some("org-7"), None] {
        let t = setup_with(Some(Mode::Ok), Duration::ZERO, None, org).await;
        workspace_with_token(&t.services, "tenant").await;
        let env = until("the provision's environment", Duration::from_secs(10), || async {
            t.n.last_env.lock().unwrap().clone()
        })
        .await;
        assert_eq!(env.get("MOLECULE_ORG_ID").map(String::as_str), org, "{env:?}");
    }
}

/// The workload gets globals, then its own secrets, then the platform's variables (which win),
/// with the model as MODEL everywhere (HERMES_DEFAULT_MODEL on hermes) and the provider derived;
/// secrets and the token never sit in the public environment.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_and_the_model_reach_the_workload_apart_from_its_public_environment() {
    let t = setup(Some(Mode::Ok), Duration::ZERO, None).await;
    t.services
        .vault()
        .set_global_secret(molecule_api::secrets::SetSecret {
            key: "SHARED".into(),
            value: "from-global".into(),
        })
        .await
        .unwrap();
    let id = t
        .services
        .create_workspace(CreateWorkspace {
            name: "hermes".into(),
            runtime: Some("hermes".into()),
            model: Some("minimax/MiniMax-M2.7".into()),
            secrets: [
                ("SHARED".to_owned(), "from-workspace".into()),
                ("MINIMAX_API_KEY".to_owned(), "mm-secret".into()),
                ("WORKSPACE_ID".to_owned(), "spoofed".into()),
            ]
            .into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let secret = until("the provision's secrets", Duration::from_secs(10), || async {
        t.n.last_secret_env.lock().unwrap().clone()
    })
    .await;
    let env = t.n.last_env.lock().unwrap().clone().unwrap();
    assert_eq!(secret["SHARED"], "from-workspace");
    assert_eq!(secret["MINIMAX_API_KEY"], "mm-secret");
    assert_eq!(secret["MODEL_PROVIDER"], "minimax/MiniMax-M2.7");
    assert_eq!(secret["LLM_PROVIDER"], "minimax");
    assert!(!secret.contains_key("WORKSPACE_ID"), "the platform's own variable wins");
    assert_eq!(env["WORKSPACE_ID"], id.to_string());
    assert_eq!(env["MODEL"], "minimax/MiniMax-M2.7");
    assert_eq!(env["HERMES_DEFAULT_MODEL"], "minimax/MiniMax-M2.7");
    for v in ["mm-secret", "from-workspace", "from-global"] {
        assert!(env.values().all(|e| e != v), "{v} in the public environment");
    }
    assert!(
        t.services
            .tree()
            .authorize_workspace(&secret["MOLECULE_WORKSPACE_TOKEN"], id)
            .await
            .is_ok()
    );
}

/// A stored value that cannot be opened fails the provision with the key's name, before any
/// token is revoked or workload started.
#[tokio::test(flavor = "multi_thread")]
async fn an_unopenable_secret_fails_the_provision_naming_the_key() {
    let t = setup(Some(Mode::Ok), Duration::ZERO, None).await;
    let id = workspace_with_token(&t.services, "sealed").await.id;
    wait_status(&t.services, id, "provisioning").await;
    until("the first provision", Duration::from_secs(10), || async {
        (t.n.provisions.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let mut c = t._db.pool().get().await.unwrap();
    let insert = diesel::sql_query(
        "INSERT INTO workspace_secrets (workspace_id, key, encrypted_value, encryption_version, key_id)
         VALUES ($1, 'SEALED_ELSEWHERE', '\\x00112233445566778899aabbccddeeff', 2, 'deadbeefdeadbe')",
    )
    .bind::<diesel::sql_types::Uuid, _>(id);
    diesel_async::RunQueryDsl::execute(insert, &mut c).await.unwrap();
    assert!(t.dispatcher.provision_sync(id, false).await.is_err());
    let failed = wait_status(&t.services, id, "failed").await;
    let reason = failed.last_sample_error.unwrap();
    assert!(
        reason.contains("SEALED_ELSEWHERE") && reason.contains("SECRETS_ENCRYPTION_KEY"),
        "{reason}"
    );
    assert_eq!(t.n.provisions.load(Ordering::SeqCst), 1, "nothing was started");
}

/// A bootstrap watcher's report fails a provisioning workspace through the dispatcher, with the
/// reason and a redacted log tail; a later report changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_bootstrap_failure_fails_a_provisioning_workspace_once() {
    let t = setup(Some(Mode::Ok), Duration::ZERO, None).await;
    let id = workspace_with_token(&t.services, "booting").await.id;
    wait_status(&t.services, id, "provisioning").await;
    let tail = format!(
        "{}\nAuthorization: Bearer sk-ant-api03-{}\nexit 1",
        "x".repeat(70_000),
        "a".repeat(40)
    );
    let report = |error: &str, log_tail: Option<String>| molecule_api::lifecycle::BootstrapFailed {
        error: error.into(),
        log_tail,
    };
    let first = t
        .services
        .tree()
        .bootstrap_failed(id, report("agent exited with code 1", Some(tail)))
        .await
        .unwrap();
    assert!(!first.no_change);
    let w = wait_status(&t.services, id, "failed").await;
    assert_eq!(w.last_sample_error.as_deref(), Some("agent exited with code 1"));
    let ev = events(&t.services, id, "WORKSPACE_PROVISION_FAILED").await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    let payload = &ev[0];
    assert_eq!(payload["source"], "bootstrap_watcher");
    let kept = payload["log_tail"].as_str().unwrap();
    assert!(
        kept.ends_with("exit 1") && kept.len() <= 64 * 1024 + 64,
        "{}",
        kept.len()
    );
    assert!(!kept.contains("sk-ant-api03"), "the tail is redacted");
    let again = t
        .services
        .tree()
        .bootstrap_failed(id, report("late", None))
        .await
        .unwrap();
    assert!(again.no_change);
}
