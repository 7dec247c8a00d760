//! The tree changes that span domains: create (the row through `molecule-tree`, the model and
//! secrets through `molecule-vault` on the same transaction, then the initial memories through
//! `molecule-memory`), patch (a new model on the patch's transaction; a move makes memory
//! forget the scopes it derived), and delete (memory forgets scopes, and a purge deletes the
//! purged workspaces' memories).
//!
//! Owns: the order of those steps and the undo when initial memories cannot be stored. Must
//! not know: any table's SQL (each step is a domain crate's), HTTP.

use molecule_api::workspaces::{CreateWorkspace, Created, Deleted, PatchWorkspace, Patched, Removal};
use molecule_domain::Runtime;
use molecule_secrets::SecretString;
use molecule_tree::validate;
use molecule_tree::workspaces::{
    Actor, Children, ExtraWrite, ModelWrite, NewWorkspace, SeedExtras, check_coordinate, check_delivery,
    check_max_tasks, check_tier,
};
use uuid::Uuid;

use crate::{Result, ServiceError, Services};

impl Services {
    pub async fn create_workspace(&self, input: CreateWorkspace) -> Result<Created> {
        self.create_workspace_seeded(input, SeedExtras::default()).await
    }

    /// [`Services::create_workspace`] with what only org import gives: a files directory
    /// and a system prompt for `/configs`.
    pub async fn create_workspace_seeded(&self, input: CreateWorkspace, extras: SeedExtras) -> Result<Created> {
        let name = validate::workspace_name("name", &input.name)?.into_string();
        let role = validate::optional_text("role", input.role.as_deref(), 1000, true)?;
        let model = validate::optional_text("model", input.model.as_deref(), 100, false)?;
        let llm_provider = molecule_vault::model::check_provider(input.llm_provider.as_deref())?;
        for key in input.secrets.keys() {
            molecule_vault::secrets::check_user_key(key).map_err(|e| match e {
                ServiceError::Invalid { message, .. } => {
                    ServiceError::invalid("secrets", format!("key {key:?}: {message}"))
                }
                other => other,
            })?;
        }
        // A template gives the defaults of what the body leaves out, and must be met before
        // anything is written.
        let template = match validate::optional_text("template", input.template.as_deref(), 100, false)? {
            Some(t) => Some(self.template_for_create(&t).await?),
            None => None,
        };
        let tcfg = template.as_ref().map(|t| &t.config);
        let model = model.or_else(|| tcfg.and_then(|c| c.default_model()).map(str::to_owned));
        if let Some(t) = &template {
            let given = input.secrets.keys().cloned().collect();
            self.check_required_env(t, model.as_deref(), &given).await?;
        }
        let runtime_raw = validate::optional_text("runtime", input.runtime.as_deref(), 100, false)?
            .or_else(|| tcfg.and_then(|c| c.runtime.clone()));
        let runtime = Runtime::resolve(runtime_raw.as_deref());
        let external = input.external.unwrap_or(false) || runtime == Runtime::External;
        let runtime = if external { Runtime::External } else { runtime };
        let url = input
            .url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|u| validate::agent_url("url", u, self.config().saas))
            .transpose()?;
        let delivery_mode = check_delivery("delivery_mode", input.delivery_mode.as_deref())?;
        let tier = check_tier(input.tier.or_else(|| tcfg.and_then(|c| c.tier)))?;
        let template_id = template.as_ref().map(|t| t.id.clone());
        let max_tasks = check_max_tasks(input.max_concurrent_tasks)?;
        self.memory()
            .check_initial_memories(&input.initial_memories, input.parent_id.is_none())?;
        let new = NewWorkspace {
            name,
            role,
            tier,
            runtime,
            external,
            url,
            delivery_mode,
            parent: input.parent_id,
            max_tasks,
            template_id,
            seed: extras,
            position: match input.canvas {
                Some(c) => (check_coordinate("canvas.x", c.x)?, check_coordinate("canvas.y", c.y)?),
                None => (0.0, 0.0),
            },
        };
        // The model and provider first, so a secret given explicitly wins.
        let keyring = self.vault().keyring().clone();
        let secrets: Vec<(String, SecretString)> = input.secrets.clone().into_iter().collect();
        let write: Option<ExtraWrite> =
            (model.is_some() || llm_provider.is_some() || !secrets.is_empty()).then(|| -> ExtraWrite {
                Box::new(move |conn, id| {
                    Box::pin(async move {
                        if model.is_some() || llm_provider.is_some() {
                            molecule_vault::model::store(conn, &keyring, id, model.as_deref(), llm_provider.as_deref())
                                .await?;
                        }
                        for (key, value) in &secrets {
                            molecule_vault::secrets::put_workspace_secret(conn, &keyring, id, key, value)
                                .await
                                .map_err(|e| match e {
                                    ServiceError::Invalid { message, .. } => {
                                        ServiceError::invalid("secrets", format!("{key}: {message}"))
                                    }
                                    other => other,
                                })?;
                        }
                        Ok(())
                    })
                })
            });
        let (workspace, token) = self.tree().insert_workspace(new, write).await?;
        if let Err(e) = self
            .memory()
            .seed_initial_memories(workspace.id, &input.initial_memories)
            .await
        {
            // Nothing half-made: the workspace goes again before anything was provisioned.
            if let Err(undo) = self
                .delete_workspace(workspace.id, Children::Cascade, Removal::Purged)
                .await
            {
                tracing::error!(workspace_id = %workspace.id, error = %undo, "workspace whose initial memories failed was not purged");
            }
            return Err(e);
        }
        Ok(self.tree().finish_create(workspace, token).await)
    }

    /// Patches a workspace; a new `model` is written with the runtime's secrets on the same
    /// transaction, and a move makes this replica forget the memory scopes below it at once.
    pub async fn patch_workspace(&self, id: Uuid, input: PatchWorkspace, actor: Actor) -> Result<Patched> {
        if input.parent_id.is_some() {
            self.memory().forget_memory_scopes();
        }
        let write_model = input.model.is_some().then(|| -> ModelWrite {
            let keyring = self.vault().keyring().clone();
            Box::new(move |conn, id, model| {
                Box::pin(async move {
                    molecule_vault::model::store(conn, &keyring, id, Some(&model), None).await?;
                    Ok(())
                })
            })
        });
        self.tree().patch_workspace(id, input, actor, write_model).await
    }

    /// Deletes `id` (and, with `children`, its subtree) through the tree; memory forgets its
    /// scopes first, and a purge deletes the purged workspaces' memory namespaces after.
    pub async fn delete_workspace(&self, id: Uuid, children: Children, removal: Removal) -> Result<Deleted> {
        self.memory().forget_memory_scopes();
        let deleted = self.tree().delete_workspace(id, children, removal).await?;
        if removal == Removal::Purged {
            self.memory().purge_memory(&deleted.ids).await;
        }
        Ok(deleted)
    }
}
