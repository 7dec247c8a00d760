//! A workspace's model and provider: the `model` column, and the secrets the runtime reads,
//! `MODEL_PROVIDER` (the slug verbatim) and `LLM_PROVIDER` (given, or derived from the slug's
//! prefix by [`molecule_domain::provider_for_model`]). Written together on create, on PATCH
//! and on `PUT /workspaces/:id/model`, so they survive restarts.
//!
//! Must not know: HTTP, or how the runtime uses them.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use molecule_api::secrets::SetModel;
use molecule_api::secrets::WorkspaceModel;
use molecule_domain::provider_for_model;
use molecule_secrets::{ExposeSecret, Keyring, SecretString};
use uuid::Uuid;

use crate::secrets;
use molecule_tree::error::{Result, ServiceError};
use molecule_tree::validate;

pub const MODEL_PROVIDER: &str = "MODEL_PROVIDER";
pub const LLM_PROVIDER: &str = "LLM_PROVIDER";

/// Checks a provider name given explicitly (`llm_provider`).
pub fn check_provider(raw: Option<&str>) -> Result<Option<String>> {
    let p = validate::optional_text("llm_provider", raw, 100, false)?;
    if let Some(p) = &p
        && !p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ServiceError::invalid(
            "llm_provider",
            format!("letters, digits, '-', '_' and '.' only; got {p:?}"),
        ));
    }
    Ok(p)
}

/// Stores `model` (and the provider: `provider`, else derived) on the row and as the runtime's
/// secrets. No model clears both secrets; an underivable provider clears `LLM_PROVIDER`, so a
/// stale one never outlives the model it was derived from.
pub async fn store(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    id: Uuid,
    model: Option<&str>,
    provider: Option<&str>,
) -> Result<Option<String>> {
    molecule_tree::row::set_model(conn, id, model).await?;
    let provider = provider
        .or_else(|| model.and_then(provider_for_model))
        .map(str::to_owned);
    match model {
        Some(m) => secrets::put_workspace_secret(conn, keyring, id, MODEL_PROVIDER, &SecretString::from(m)).await?,
        None => drop_secret(conn, id, MODEL_PROVIDER).await?,
    }
    match &provider {
        Some(p) => {
            secrets::put_workspace_secret(conn, keyring, id, LLM_PROVIDER, &SecretString::from(p.as_str())).await?
        }
        None => drop_secret(conn, id, LLM_PROVIDER).await?,
    }
    Ok(provider)
}

async fn drop_secret(conn: &mut AsyncPgConnection, id: Uuid, key: &str) -> Result<()> {
    secrets::delete_workspace_secret(conn, id, key).await.map(|_| ())
}

impl crate::Vault {
    /// The workspace's model and provider as its runtime will see them.
    pub async fn get_model(&self, id: Uuid) -> Result<WorkspaceModel> {
        let ws = self.tree.get_workspace(id).await?;
        let mut conn = self.pool.get().await?;
        let stored = secrets::workspace_secret(&mut conn, &self.keyring, id, MODEL_PROVIDER).await?;
        let provider = secrets::workspace_secret(&mut conn, &self.keyring, id, LLM_PROVIDER).await?;
        let model = stored.map(|s| s.expose_secret().to_owned()).or(ws.model);
        Ok(WorkspaceModel {
            llm_provider: provider
                .map(|p| p.expose_secret().to_owned())
                .or_else(|| model.as_deref().and_then(provider_for_model).map(str::to_owned)),
            model,
        })
    }

    /// Sets the model (and provider), then restarts the workspace if its workload runs.
    pub async fn set_model(&self, id: Uuid, req: SetModel) -> Result<molecule_api::secrets::ModelChanged> {
        let model = validate::optional_text("model", req.model.as_deref(), 100, false)?;
        let provider = check_provider(req.llm_provider.as_deref())?;
        let keyring = self.keyring.clone();
        let mut conn = self.pool.get().await?;
        let (m, p) = (model.clone(), provider.clone());
        let llm_provider = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                molecule_tree::row::lock_live(conn, id).await?;
                store(conn, &keyring, id, m.as_deref(), p.as_deref()).await
            })
            .await?;
        drop(conn);
        let restarted = self.restart_for_secret(Some(id), MODEL_PROVIDER).await?;
        Ok(molecule_api::secrets::ModelChanged {
            status: "saved",
            model,
            llm_provider,
            restarted,
        })
    }
}
