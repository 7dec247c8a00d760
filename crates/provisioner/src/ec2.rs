//! The EC2 backend (aws-sdk-ec2): one instance per workspace, called directly.
//!
//! `RunInstances` carries the runtime's AMI and instance type, user-data exporting the agent's
//! environment, our tags (managed, platform instance, workspace, runtime, provision token) and
//! an idempotent `ClientToken` fixed for one provision attempt. Before launching, instances
//! already tagged with that token are looked up, so a retried provision never launches two
//! (whatever the endpoint does with ClientToken). Stop terminates every live instance of the
//! workspace and succeeds only once EC2 confirms it. The SDK retries throttling and 5xx
//! (standard mode, bounded); an error response is never taken for success. Credentials come
//! from the standard AWS chain; `AWS_ENDPOINT_URL` overrides the endpoint.

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName, InstanceType, ResourceType, Tag, TagSpecification};
use base64::Engine;
use uuid::Uuid;

use crate::{
    Backend, BackendError, LABEL_INSTANCE, LABEL_MANAGED, LABEL_RUNTIME, LABEL_WORKSPACE, ManagedResource,
    ProvisionSpec, Provisioned,
};

/// Tag holding the provision attempt's client token.
pub const TAG_TOKEN: &str = "molecule.provision.token";

/// EC2 backend settings.
#[derive(Debug, Clone)]
pub struct Ec2Config {
    pub platform_instance: String,
    /// AMI per runtime, and the default.
    pub amis: BTreeMap<String, String>,
    pub default_ami: String,
    /// Instance type per runtime, and the default.
    pub instance_types: BTreeMap<String, String>,
    pub default_instance_type: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    /// SDK attempts for one call (throttling and 5xx are retried with backoff).
    pub max_attempts: u32,
}

impl Default for Ec2Config {
    fn default() -> Self {
        Self {
            platform_instance: "default".into(),
            amis: BTreeMap::new(),
            default_ami: String::new(),
            instance_types: BTreeMap::new(),
            default_instance_type: "t3.micro".into(),
            subnet_id: None,
            security_group_ids: Vec::new(),
            max_attempts: 4,
        }
    }
}

pub struct Ec2Backend {
    client: Client,
    config: Ec2Config,
}

impl std::fmt::Debug for Ec2Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Backend").field("config", &self.config).finish()
    }
}

fn sdk_error<E: ProvideErrorMetadata + std::fmt::Display>(what: &str, e: E) -> BackendError {
    let detail = match (e.code(), e.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_owned(),
        _ => e.to_string(),
    };
    BackendError::Failed(format!("ec2 {what}: {detail}"))
}

fn tag(i: &Instance, key: &str) -> Option<String> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .map(str::to_owned)
}

fn live(i: &Instance) -> bool {
    !matches!(
        i.state().and_then(|s| s.name()),
        Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
    )
}

/// The user-data script: exports the agent's environment, then starts the agent.
pub fn user_data(env: &BTreeMap<String, String>) -> String {
    let mut script = String::from("#!/bin/sh\n");
    for (k, v) in env {
        script.push_str(&format!("export {k}='{}'\n", v.replace('\'', r"'\''")));
    }
    script.push_str("exec /usr/local/bin/molecule-agent\n");
    script
}

impl Ec2Backend {
    /// A client from the standard chain (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`).
    pub async fn connect(config: Ec2Config) -> Result<Self, BackendError> {
        if config.default_ami.is_empty() && config.amis.is_empty() {
            return Err(BackendError::Unavailable {
                backend: "ec2",
                reason: "no AMI configured: set MOLECULE_EC2_DEFAULT_AMI (or MOLECULE_EC2_AMIS)".into(),
            });
        }
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts.max(1)))
            .load()
            .await;
        Ok(Self {
            client: Client::new(&sdk),
            config,
        })
    }

    /// With an explicit SDK configuration (tests point it at moto with static credentials).
    pub fn with_sdk_config(sdk: &aws_config::SdkConfig, config: Ec2Config) -> Self {
        Self {
            client: Client::new(sdk),
            config,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn instances(&self, filters: Vec<Filter>) -> Result<Vec<Instance>, BackendError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let resp = self
                .client
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .set_next_token(next.clone())
                .send()
                .await
                .map_err(|e| sdk_error("DescribeInstances", e))?;
            out.extend(resp.reservations().iter().flat_map(|r| r.instances().iter().cloned()));
            next = resp.next_token().map(str::to_owned);
            if next.is_none() {
                return Ok(out);
            }
        }
    }

    fn by_tag(key: &str, value: &str) -> Filter {
        Filter::builder().name(format!("tag:{key}")).values(value).build()
    }

    /// Live instances of `workspace_id` launched by this platform instance.
    async fn workspace_instances(&self, workspace_id: Uuid) -> Result<Vec<Instance>, BackendError> {
        let found = self
            .instances(vec![
                Self::by_tag(LABEL_WORKSPACE, &workspace_id.to_string()),
                Self::by_tag(LABEL_INSTANCE, &self.config.platform_instance),
            ])
            .await?;
        Ok(found.into_iter().filter(live).collect())
    }

    /// Provisions with an explicit client token (a retry of the same attempt passes the same one).
    pub async fn provision_with_token(&self, spec: &ProvisionSpec, token: &str) -> Result<Provisioned, BackendError> {
        let id = spec.workspace_id;
        if !spec.secret_env.is_empty() {
            // User-data would show them to anyone who may describe the instance.
            return Err(BackendError::Failed(
                "the EC2 backend takes secrets only through a bootstrap code, never in user-data".into(),
            ));
        }
        // Idempotency that does not depend on the endpoint honouring ClientToken.
        if let Some(existing) = self
            .instances(vec![Self::by_tag(TAG_TOKEN, token)])
            .await?
            .into_iter()
            .find(live)
        {
            return Ok(Provisioned {
                instance_id: existing.instance_id().map(str::to_owned),
                image: existing.image_id().map(str::to_owned),
                ..Provisioned::default()
            });
        }
        let ami = self
            .config
            .amis
            .get(&spec.runtime)
            .cloned()
            .unwrap_or_else(|| self.config.default_ami.clone());
        let itype = self
            .config
            .instance_types
            .get(&spec.runtime)
            .cloned()
            .unwrap_or_else(|| self.config.default_instance_type.clone());
        let tags = [
            (LABEL_MANAGED, "true".to_owned()),
            (LABEL_INSTANCE, self.config.platform_instance.clone()),
            (LABEL_WORKSPACE, id.to_string()),
            (LABEL_RUNTIME, spec.runtime.clone()),
            (TAG_TOKEN, token.to_owned()),
            ("Name", format!("ws-{id}")),
        ];
        let spec_tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(v).build())
                    .collect(),
            ))
            .build();
        let resp = self
            .client
            .run_instances()
            .image_id(&ami)
            .instance_type(InstanceType::from(itype.as_str()))
            .min_count(1)
            .max_count(1)
            .client_token(token)
            .user_data(base64::engine::general_purpose::STANDARD.encode(user_data(&spec.env)))
            .tag_specifications(spec_tags)
            .set_subnet_id(self.config.subnet_id.clone())
            .set_security_group_ids(
                (!self.config.security_group_ids.is_empty()).then(|| self.config.security_group_ids.clone()),
            )
            .send()
            .await
            .map_err(|e| sdk_error("RunInstances", e))?;
        let instance = resp
            .instances()
            .first()
            .ok_or_else(|| BackendError::Failed("ec2 RunInstances: the answer holds no instance".into()))?;
        Ok(Provisioned {
            url: instance.private_ip_address().map(|ip| format!("http://{ip}:8000")),
            instance_id: instance.instance_id().map(str::to_owned),
            image: Some(ami),
            image_digest: None,
        })
    }
}

#[async_trait::async_trait]
impl Backend for Ec2Backend {
    fn name(&self) -> &'static str {
        "ec2"
    }

    async fn open_shell(&self, _workspace_id: Uuid) -> Result<crate::Shell, crate::TerminalFailure> {
        Err(crate::TerminalFailure::Unsupported(
            "the EC2 backend has no terminal: reaching an instance needs EC2 Instance Connect and an ssh client on the server, which this platform does not run; use SSM Session Manager or ssh to the instance".into(),
        ))
    }

    /// User-data is readable through `DescribeInstanceAttribute`: secrets go by bootstrap code.
    fn secret_delivery(&self) -> crate::SecretDelivery {
        crate::SecretDelivery::Bootstrap
    }

    async fn provision(&self, spec: &ProvisionSpec) -> Result<Provisioned, BackendError> {
        // One token per provision attempt: stable across the SDK's own retries of the call.
        let token = format!("ws-{}-{}", spec.workspace_id.simple(), Uuid::new_v4().simple());
        self.provision_with_token(spec, &token[..token.len().min(64)]).await
    }

    async fn stop(&self, workspace_id: Uuid) -> Result<(), BackendError> {
        let ids: Vec<String> = self
            .workspace_instances(workspace_id)
            .await?
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let resp = self
            .client
            .terminate_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .map_err(|e| sdk_error("TerminateInstances", e))?;
        let confirmed = resp
            .terminating_instances()
            .iter()
            .filter(|c| {
                matches!(
                    c.current_state().and_then(|s| s.name()),
                    Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
                )
            })
            .count();
        if confirmed < ids.len() {
            return Err(BackendError::Failed(format!(
                "ec2 TerminateInstances confirmed {confirmed} of {} instances",
                ids.len()
            )));
        }
        Ok(())
    }

    async fn remove_volumes(&self, _workspace_id: Uuid) -> Result<(), BackendError> {
        // Root volumes are deleted with their instance.
        Ok(())
    }

    async fn is_running(&self, workspace_id: Uuid) -> Result<bool, BackendError> {
        Ok(self.workspace_instances(workspace_id).await?.iter().any(|i| {
            matches!(
                i.state().and_then(|s| s.name()),
                Some(InstanceStateName::Running | InstanceStateName::Pending)
            )
        }))
    }

    async fn list_managed(&self) -> Result<Vec<ManagedResource>, BackendError> {
        let all = self.instances(vec![Self::by_tag(LABEL_MANAGED, "true")]).await?;
        Ok(all
            .iter()
            .filter(|i| live(i))
            .map(|i| ManagedResource {
                resource_id: i.instance_id().unwrap_or_default().to_owned(),
                workspace_id: tag(i, LABEL_WORKSPACE).and_then(|s| s.parse().ok()),
                platform_instance: tag(i, LABEL_INSTANCE),
                running: matches!(
                    i.state().and_then(|s| s.name()),
                    Some(InstanceStateName::Running | InstanceStateName::Pending)
                ),
                created_unix: i.launch_time().map(|t| t.secs()),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_exports_the_env_safely() {
        let env = BTreeMap::from([
            ("WORKSPACE_ID".to_owned(), "w1".to_owned()),
            ("ODD".to_owned(), "it's".to_owned()),
        ]);
        let s = user_data(&env);
        assert!(s.contains("export WORKSPACE_ID='w1'\n"));
        assert!(s.contains(r"export ODD='it'\''s'"));
        assert!(s.ends_with("exec /usr/local/bin/molecule-agent\n"));
    }
}
