//! Wall time to provision an org of 50 workspaces on a backend with an artificial 500 ms
//! provision latency, at MOLECULE_PROVISION_CONCURRENCY 0 (unlimited), 3 and 10. Run by
//! `cargo xtask bench provision` against an empty database named by `DATABASE_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark driver
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::sync::Arc;
use std::time::{Duration, Instant};

use molecule_api::workspaces::CreateWorkspace;
use molecule_dispatcher::{Dispatcher, DispatcherConfig};
use molecule_provisioner::{Backend, BackendError, ManagedResource, ProvisionSpec, Provisioned};
use molecule_service::{ServiceConfig, Services};
use uuid::Uuid;

const ORG: usize = 50;
const LATENCY: Duration = Duration::from_millis(500);

struct Slow;

#[async_trait::async_trait]
impl Backend for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    async fn provision(&self, spec: &ProvisionSpec) -> Result<Provisioned, BackendError> {
        tokio::time::sleep(LATENCY).await;
        Ok(Provisioned {
            instance_id: Some(spec.workspace_id.to_string()),
            ..Provisioned::default()
        })
    }
    async fn stop(&self, _: Uuid) -> Result<(), BackendError> {
        Ok(())
    }
    async fn remove_volumes(&self, _: Uuid) -> Result<(), BackendError> {
        Ok(())
    }
    async fn is_running(&self, _: Uuid) -> Result<bool, BackendError> {
        Ok(true)
    }
    async fn list_managed(&self) -> Result<Vec<ManagedResource>, BackendError> {
        Ok(Vec::new())
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let pool = molecule_db::connect(
        &url,
        &molecule_db::PoolOptions {
            max_size: 32,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    molecule_db::Migrations::default().run_pending(&pool).await.unwrap();
    let services = Services::new(pool, ServiceConfig::default()).unwrap();
    let mut results = serde_json::Map::new();
    for raw in ["0", "3", "10"] {
        // MOLECULE_PROVISION_CONCURRENCY: 0 is unlimited.
        let concurrency = match raw.parse::<usize>().unwrap() {
            0 => None,
            n => Some(n),
        };
        let config = DispatcherConfig {
            concurrency,
            ..DispatcherConfig::default()
        };
        let dispatcher = Dispatcher::new(vec![Arc::new(Slow)], Some("slow"), services.clone(), config);
        // An org: one root and 49 children, created first (as an import would).
        let root = services
            .create_workspace(CreateWorkspace {
                name: format!("org-{raw}"),
                ..Default::default()
            })
            .await
            .unwrap()
            .id;
        let mut ids = vec![root];
        for i in 1..ORG {
            ids.push(
                services
                    .create_workspace(CreateWorkspace {
                        name: format!("ws-{raw}-{i}"),
                        parent_id: Some(root),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .id,
            );
        }
        let start = Instant::now();
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let d = dispatcher.clone();
                let id = *id;
                tokio::spawn(async move { d.provision_sync(id, false).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        results.insert(format!("concurrency_{raw}_seconds"), serde_json::json!(secs));
    }
    results.insert("workspaces".into(), serde_json::json!(ORG));
    results.insert("provision_latency_ms".into(), serde_json::json!(LATENCY.as_millis()));
    println!("{}", serde_json::Value::Object(results));
}
