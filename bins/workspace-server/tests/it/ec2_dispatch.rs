//! The EC2 backend end to end against moto (`moto_server` on loopback, started here): create,
//! delete, idempotent client tokens, and a delete while EC2 is unreachable, resolved later by
//! the reconciler.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test code
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use molecule_api::workspaces::Removal;
use molecule_tree::workspaces::Children;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, InstanceAttributeName, InstanceStateName};
use base64::Engine;
use molecule_api::workspaces::CreateWorkspace;
use molecule_dispatcher::{Dispatcher, DispatcherConfig, ReconcileConfig};
use molecule_provisioner::{Backend, Ec2Backend, Ec2Config, ImageRef, ProvisionSpec};
use molecule_service::{ServiceConfig, Services};
use molecule_testkit::until;
use molecule_testkit::{Moto, TestDb};
use uuid::Uuid;

/// A TCP proxy in front of moto that can play "EC2 is unreachable" without losing moto's state.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound); // connection reset: EC2 unreachable
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { port, up }
    }
}

async fn sdk(endpoint: String) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing", "testing", None, None, "static",
        ))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

fn moto_or_skip() -> Option<Moto> {
    match Moto::start() {
        Ok(m) => Some(m),
        Err(problem) => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
                "the EC2 tests must run in CI: {problem}"
            );
            eprintln!("\n!!!!!!!! SKIPPING the EC2 tests: {problem} !!!!!!!!\n");
            None
        }
    }
}

async fn instances(client: &aws_sdk_ec2::Client, key: &str, value: &str) -> Vec<aws_sdk_ec2::types::Instance> {
    let resp = client
        .describe_instances()
        .filters(Filter::builder().name(format!("tag:{key}")).values(value).build())
        .send()
        .await
        .unwrap();
    resp.reservations()
        .iter()
        .flat_map(|r| r.instances().iter().cloned())
        .collect()
}

fn state(i: &aws_sdk_ec2::types::Instance) -> Option<InstanceStateName> {
    i.state().and_then(|s| s.name()).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn ec2_create_delete_tokens_and_a_leak_resolved_by_the_reconciler() {
    let Some(moto) = moto_or_skip() else { return };
    let proxy = Proxy::start(moto.port).await;
    let ours = format!("ec2-{}", Uuid::new_v4().simple());
    let backend_cfg = Ec2Config {
        platform_instance: ours.clone(),
        default_ami: "ami-12345678".into(),
        ..Ec2Config::default()
    };
    let backend = Arc::new(Ec2Backend::with_sdk_config(
        &sdk(format!("http://127.0.0.1:{}", proxy.port)).await,
        backend_cfg,
    ));
    let direct = aws_sdk_ec2::Client::new(&sdk(moto.endpoint()).await); // bypasses the proxy

    let db = TestDb::new().await;
    let base = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    let config = DispatcherConfig {
        platform_instance: ours.clone(),
        stop_backoff: Duration::from_millis(20),
        ..DispatcherConfig::default()
    };
    let dispatcher = Dispatcher::new(
        vec![backend.clone() as Arc<dyn Backend>],
        Some("ec2"),
        base.clone(),
        config,
    );
    let services = base.with_hooks(Arc::new(dispatcher.clone()));

    // create → an instance is running with our tags, and user-data carries the env.
    let id = services
        .create_workspace(CreateWorkspace {
            name: "cloud".into(),
            model: Some("anthropic:claude".into()),
            secrets: [("CLOUD_KEY".to_owned(), "cloud-canary-5e1b".into())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let instance_id = until("an instance recorded", Duration::from_secs(30), || async {
        services.tree().get_workspace(id).await.unwrap().instance_id
    })
    .await;
    let found = instances(&direct, "molecule.workspace.id", &id.to_string()).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].instance_id(), Some(instance_id.as_str()));
    // No terminal into an instance: the reason says so (the route answers 501 with it).
    match services.tree().open_terminal(id).await.unwrap() {
        Err(molecule_provisioner::TerminalFailure::Unsupported(why)) => assert!(why.contains("EC2"), "{why}"),
        other => panic!("an EC2 terminal should be unsupported, got {other:?}"),
    }
    assert_eq!(state(&found[0]), Some(InstanceStateName::Running));
    let tags: std::collections::HashMap<_, _> = found[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(
        (
            tags["molecule.platform.managed"],
            tags["molecule.platform.instance"],
            tags["molecule.workspace.runtime"]
        ),
        ("true", ours.as_str(), "claude-code")
    );
    let attr = direct
        .describe_instance_attribute()
        .instance_id(&instance_id)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let script = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(attr.user_data().and_then(|v| v.value()).unwrap())
            .unwrap(),
    )
    .unwrap();
    // User-data (readable through DescribeInstanceAttribute) carries the public environment
    // and a one-time code, never a secret or the token.
    assert!(
        script.contains(&format!("export WORKSPACE_ID='{id}'")) && script.contains("export MODEL='anthropic:claude'"),
        "{script}"
    );
    for hidden in [
        "cloud-canary-5e1b",
        "MOLECULE_WORKSPACE_TOKEN",
        "MODEL_PROVIDER",
        "LLM_PROVIDER",
    ] {
        assert!(!script.contains(hidden), "user-data shows {hidden}: {script}");
    }
    let code = script
        .lines()
        .find_map(|l| l.strip_prefix("export MOLECULE_BOOTSTRAP_CODE='"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("a bootstrap code in user-data");
    // The agent redeems it once for its secrets and a live token; a second time is refused.
    let redeemed = services.vault().redeem_bootstrap(id, code).await.unwrap();
    // The first provision's /configs travels with the secrets: the generated config.yaml.
    let config = String::from_utf8(redeemed.files["config.yaml"].clone()).unwrap();
    assert!(config.contains("name: cloud"), "{config}");
    let env = redeemed.env;
    let shown = |k: &str| secrecy::ExposeSecret::expose_secret(&env[k]).to_owned();
    assert_eq!(shown("CLOUD_KEY"), "cloud-canary-5e1b");
    assert_eq!(shown("LLM_PROVIDER"), "anthropic");
    assert!(
        services
            .tree()
            .authorize_workspace(&shown("MOLECULE_WORKSPACE_TOKEN"), id)
            .await
            .is_ok()
    );
    assert!(matches!(
        services.vault().redeem_bootstrap(id, code).await,
        Err(molecule_service::ServiceError::Unauthorized(_))
    ));

    // A retried provision with the same client token gives one instance.
    let spec = ProvisionSpec {
        workspace_id: Uuid::new_v4(),
        runtime: "hermes".into(),
        tier: 2,
        image: ImageRef::parse("unused").unwrap(),
        env: Default::default(),
        secret_env: Default::default(),
        config_files: Default::default(),
        reset_session: false,
    };
    let a = backend.provision_with_token(&spec, "retry-token-1").await.unwrap();
    let b = backend.provision_with_token(&spec, "retry-token-1").await.unwrap();
    assert_eq!(a.instance_id, b.instance_id);
    assert_eq!(
        instances(&direct, "molecule.provision.token", "retry-token-1")
            .await
            .len(),
        1
    );
    // Cleaned up through EC2 itself: only the dispatcher calls a backend's stop.
    direct
        .terminate_instances()
        .instance_ids(a.instance_id.clone().unwrap())
        .send()
        .await
        .unwrap();

    // delete → terminated and instance_id cleared.
    services
        .delete_workspace(id, Children::Refuse, Removal::Removed)
        .await
        .unwrap();
    let gone = instances(&direct, "molecule.workspace.id", &id.to_string()).await;
    assert!(
        matches!(
            state(&gone[0]),
            Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
        ),
        "{:?}",
        state(&gone[0])
    );
    assert_eq!(services.tree().get_workspace(id).await.unwrap().instance_id, None);

    // EC2 unreachable during a delete: retries exhaust and LEAK_SUSPECT is persisted.
    let id2 = services
        .create_workspace(CreateWorkspace {
            name: "orphan".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    until("an instance recorded", Duration::from_secs(30), || async {
        services.tree().get_workspace(id2).await.unwrap().instance_id
    })
    .await;
    proxy.up.store(false, Ordering::SeqCst);
    let deleted = services
        .delete_workspace(id2, Children::Refuse, Removal::Removed)
        .await
        .unwrap();
    assert_eq!(deleted.stop_failures.len(), 1, "{deleted:?}");
    let leaks: Vec<_> = services
        .tree()
        .recent_events(Some(id2), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "LEAK_SUSPECT")
        .collect();
    assert_eq!(leaks.len(), 1);
    assert_eq!(leaks[0].payload["backend"], "ec2");
    assert_eq!(
        state(&instances(&direct, "molecule.workspace.id", &id2.to_string()).await[0]),
        Some(InstanceStateName::Running),
        "the orphan still runs"
    );

    let still = services.tree().get_workspace(id2).await.unwrap();
    assert!(
        still.instance_id.is_some(),
        "instance_id is kept until a terminate is confirmed"
    );

    // The reconciler runs as in the server (a cluster-wide periodic task). Its first tick meets
    // the dead endpoint and fails; once the endpoint returns, the next tick (one interval later)
    // terminates the orphan. Zero instances remain.
    let interval = Duration::from_secs(2);
    let periodic = molecule_periodic::Periodic::new("reconciler", interval, db.pool().clone());
    let task = {
        let dispatcher = dispatcher.clone();
        let rc = ReconcileConfig {
            grace: Duration::ZERO,
            interval,
        };
        periodic.spawn(move || {
            let dispatcher = dispatcher.clone();
            async move { dispatcher.reconcile(&rc).await }
        })
    };
    until("the reconciler's first tick", Duration::from_secs(30), || async {
        periodic.stats().last_tick_at
    })
    .await;
    let first = periodic.stats();
    assert_eq!(
        first.errors, 1,
        "the first tick should fail on the dead endpoint: {first:?}"
    );
    proxy.up.store(true, Ordering::SeqCst);
    let back = Instant::now();
    let live_instances = || async {
        instances(&direct, "molecule.platform.instance", &ours)
            .await
            .into_iter()
            .filter(|i| {
                !matches!(
                    state(i),
                    Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
                )
            })
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    // One interval plus the time a pass takes against moto. The report is recorded when the
    // pass ends, after the terminate and the event updates.
    let deadline = back + interval + Duration::from_secs(10);
    loop {
        let stats = periodic.stats();
        if stats.last_report.as_ref().is_some_and(|r| r["orphans_stopped"] == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no pass stopped the orphan in time: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    eprintln!(
        "orphan terminated {:?} after the endpoint returned (interval {interval:?})",
        back.elapsed()
    );
    let live = live_instances().await;
    assert!(live.is_empty(), "instances left: {live:?}");
    let resolved = services
        .tree()
        .recent_events(Some(id2), 50)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event == "LEAK_SUSPECT")
        .unwrap();
    assert_eq!(resolved.payload["resolved_by"], "reconciler");
}
