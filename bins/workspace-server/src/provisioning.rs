//! Wiring of the backends and the dispatcher from configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use molecule_config::{BackendChoice, ServerConfig};
use molecule_dispatcher::{Dispatcher, DispatcherConfig};
use molecule_provisioner::{Backend, DockerBackend, DockerConfig, ImageRef, LocalConfig, LocalProcessBackend};
use molecule_service::Services;

/// `MOLECULE_PLATFORM_INSTANCE`, or the first 16 hex digits of sha256(DATABASE_URL).
fn platform_instance(cfg: &ServerConfig) -> String {
    cfg.molecule_platform_instance.clone().unwrap_or_else(|| {
        molecule_tree::tokens::hash(&cfg.database_url)
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The tiers' limits: `TIER{n}_MEMORY_MB` and `TIER{n}_CPU_SHARES` over the defaults.
pub fn tiers(cfg: &ServerConfig) -> molecule_provisioner::Tiers {
    let mut t = molecule_provisioner::Tiers {
        allow_privileged: cfg.molecule_allow_privileged_tiers,
        ..Default::default()
    };
    let memory = [
        cfg.tier1_memory_mb,
        cfg.tier2_memory_mb,
        cfg.tier3_memory_mb,
        cfg.tier4_memory_mb,
    ];
    let cpu = [
        cfg.tier1_cpu_shares,
        cfg.tier2_cpu_shares,
        cfg.tier3_cpu_shares,
        cfg.tier4_cpu_shares,
    ];
    for i in 0..4 {
        if let Some(m) = memory[i] {
            t.memory_mb[i] = m;
        }
        if let Some(c) = cpu[i] {
            t.cpu_shares[i] = c;
        }
    }
    t
}

pub async fn dispatcher(cfg: &ServerConfig, services: Services) -> anyhow::Result<Dispatcher> {
    let instance = platform_instance(cfg);
    let docker_config = DockerConfig {
        platform_instance: instance.clone(),
        network_mode: cfg.molecule_docker_network.clone(),
        advertise_host: "127.0.0.1".into(),
        tiers: tiers(cfg),
    };
    let backend: Option<Arc<dyn Backend>> = match cfg.backend()? {
        Some(BackendChoice::Docker) => {
            Some(Arc::new(DockerBackend::connect(docker_config).await.context(
                "MOLECULE_BACKEND=docker: the Docker engine (DOCKER_HOST or /var/run/docker.sock)",
            )?))
        }
        Some(BackendChoice::Local) => {
            tracing::warn!("MOLECULE_BACKEND=local: workspaces run as local processes (development only)");
            Some(Arc::new(LocalProcessBackend::new(LocalConfig {
                command: cfg.molecule_local_agent_command.clone().into(),
                data_dir: cfg.molecule_data_dir.clone().into(),
                platform_instance: instance.clone(),
            })))
        }
        Some(BackendChoice::Ec2) => ec2_backend(cfg, &instance).await?,
        Some(BackendChoice::None) => None,
        None => match DockerBackend::connect(docker_config).await {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                tracing::warn!(error = %e, "no Docker engine: workspaces will fail with \"no provisioner configured\" (set MOLECULE_BACKEND=local for development)");
                None
            }
        },
    };
    let concurrency = cfg.provision_concurrency();
    let default_image = ImageRef::parse(&cfg.molecule_workspace_image).with_context(|| {
        format!(
            "MOLECULE_WORKSPACE_IMAGE={:?} is not an image reference",
            cfg.molecule_workspace_image
        )
    })?;
    let config = DispatcherConfig {
        concurrency,
        default_image,
        runtime_images: cfg.runtime_images()?,
        local_image_override: cfg.workspace_image_local_override,
        platform_url: cfg
            .molecule_container_platform_url
            .clone()
            .unwrap_or_else(|| cfg.platform_url()),
        agent_env: cfg.agent_env()?,
        org_id: cfg.molecule_org_id.clone(),
        stop_attempts: 3,
        stop_backoff: Duration::from_secs(1),
        platform_instance: instance.clone(),
    };
    let name = backend.as_ref().map(|b| b.name());
    tracing::info!(backend = name.unwrap_or("none"), platform_instance = %instance, "provisioning");
    Ok(Dispatcher::new(backend.into_iter().collect(), name, services, config))
}

#[cfg(feature = "ec2")]
async fn ec2_backend(cfg: &ServerConfig, instance: &str) -> anyhow::Result<Option<Arc<dyn Backend>>> {
    let config = molecule_provisioner::Ec2Config {
        platform_instance: instance.to_owned(),
        amis: cfg.ec2_amis()?,
        default_ami: cfg.molecule_ec2_default_ami.clone().unwrap_or_default(),
        instance_types: cfg.ec2_instance_types()?,
        default_instance_type: cfg.molecule_ec2_default_instance_type.clone(),
        subnet_id: cfg.molecule_ec2_subnet_id.clone(),
        security_group_ids: cfg
            .molecule_ec2_security_group_ids
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        max_attempts: 4,
    };
    let backend = molecule_provisioner::Ec2Backend::connect(config)
        .await
        .context("MOLECULE_BACKEND=ec2")?;
    Ok(Some(Arc::new(backend)))
}

#[cfg(not(feature = "ec2"))]
async fn ec2_backend(_: &ServerConfig, _: &str) -> anyhow::Result<Option<Arc<dyn Backend>>> {
    anyhow::bail!("MOLECULE_BACKEND=ec2: this build has no EC2 backend (built with --no-default-features)")
}
