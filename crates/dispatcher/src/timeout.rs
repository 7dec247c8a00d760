//! The provisioning-timeout sweeper: a workspace still `provisioning` past its timeout fails,
//! with a message naming the timeout and where it came from. Resolution order:
//! `PROVISION_TIMEOUT_SECONDS` → `runtime_config.provision_timeout_seconds` of the workspace's
//! template, else of `<runtime>-default`, else of `<runtime>` (one loader, `molecule-templates`)
//! → 30 min for hermes → 10 min.

use std::time::Duration;

use molecule_domain::{FailureReason, WorkspaceStatus};
use molecule_service::ServiceError;
use serde_json::json;

use crate::dispatch::Dispatcher;

#[derive(Debug, Clone, Default)]
pub struct TimeoutConfig {
    /// `PROVISION_TIMEOUT_SECONDS`: overrides every runtime.
    pub global: Option<u64>,
    pub templates: molecule_templates::Registry,
    pub interval: Duration,
}

/// The timeout for `runtime` and a phrase naming its source.
pub fn timeout_for(cfg: &TimeoutConfig, runtime: &str, template: &str) -> (u64, String) {
    if let Some(s) = cfg.global {
        return (s, "PROVISION_TIMEOUT_SECONDS".into());
    }
    let found = [template.to_owned(), format!("{runtime}-default"), runtime.to_owned()]
        .iter()
        .filter(|t| !t.is_empty())
        .find_map(|t| cfg.templates.provision_timeout(t));
    if let Some((s, path)) = found {
        return (
            s,
            format!("runtime_config.provision_timeout_seconds in {}", path.display()),
        );
    }
    if runtime == "hermes" {
        return (1800, "the default for hermes".into());
    }
    (
        600,
        "the default (set PROVISION_TIMEOUT_SECONDS or the template's runtime_config.provision_timeout_seconds)".into(),
    )
}

impl Dispatcher {
    /// One sweep: fails every workspace provisioning for longer than its timeout.
    pub async fn sweep_provision_timeouts(&self, cfg: &TimeoutConfig) -> Result<serde_json::Value, ServiceError> {
        let services = self.services();
        let rows = services.tree().provisioning_ages().await?;
        let mut failed = 0;
        for r in rows {
            let (timeout, source) = timeout_for(cfg, &r.runtime, &r.template);
            if u64::try_from(r.age_seconds).unwrap_or(0) < timeout {
                continue;
            }
            let message = format!(
                "provisioning timed out after {timeout}s ({source}): the agent never called /registry/register; check its logs and its network path to PLATFORM_URL"
            );
            let Some(reason) = FailureReason::new(message) else {
                continue;
            };
            let payload = json!({ "timeout_secs": timeout, "runtime": r.runtime, "source": "provision_timeout_sweep" });
            match services
                .tree()
                .mark_failed_from(r.id, reason, &[WorkspaceStatus::Provisioning], payload)
                .await
            {
                Ok(true) => failed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(workspace_id = %r.id, error = %e, "could not fail a timed-out workspace"),
            }
        }
        Ok(json!({ "timed_out": failed }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_order() {
        let mut cfg = TimeoutConfig::default();
        assert_eq!(timeout_for(&cfg, "claude-code", "").0, 600);
        assert_eq!(timeout_for(&cfg, "hermes", "").0, 1800);
        cfg.global = Some(42);
        assert_eq!(
            timeout_for(&cfg, "hermes", ""),
            (42, "PROVISION_TIMEOUT_SECONDS".into())
        );
    }
}
