//! The platform's inbound secret: a random credential per workspace that the platform presents
//! (`Authorization: Bearer …`) on every call it makes to the workspace's agent, so an agent can
//! tell the platform from anyone else who reaches its port. Minted lazily on register or
//! heartbeat (32 random bytes, base64url), handed to the agent in their answers and in its
//! delivered secrets, and stored as the reserved workspace secret
//! [`INBOUND_SECRET_KEY`] (so it is sealed, bound to its row, and re-sealed by rotate-key).
//! Reads go through a per-process cache (5 minutes; written through on mint; absence is not
//! cached), because heartbeats and every proxied message need it.
//!
//! Must not know: HTTP, or how an agent checks it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use molecule_secrets::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::secrets::{self, INBOUND_SECRET_KEY};
use molecule_tree::error::{Result, ServiceError};

const TTL: Duration = Duration::from_secs(5 * 60);

/// Workspace id → (secret, when it was read).
#[derive(Clone, Default)]
pub struct InboundCache(Arc<Mutex<HashMap<Uuid, (SecretString, Instant)>>>);

impl InboundCache {
    fn get(&self, id: Uuid) -> Option<SecretString> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&id)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(s, _)| s.clone())
    }

    fn put(&self, id: Uuid, secret: SecretString) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Dead entries go when they are next touched; a sweep keeps the map bounded.
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < TTL);
        }
        map.insert(id, (secret, Instant::now()));
    }
}

impl crate::Vault {
    /// The workspace's inbound secret if it has one (cached).
    pub async fn inbound_secret(&self, id: Uuid) -> Result<Option<SecretString>> {
        if let Some(s) = self.inbound.get(id) {
            return Ok(Some(s));
        }
        let mut conn = self.pool.get().await?;
        let found = secrets::workspace_secret(&mut conn, &self.keyring, id, INBOUND_SECRET_KEY).await?;
        if let Some(s) = &found {
            self.inbound.put(id, s.clone());
        }
        Ok(found)
    }

    /// The workspace's inbound secret, minted now if it has none (register and heartbeat), on
    /// the caller's connection (a request never holds one connection while waiting for another).
    pub async fn ensure_inbound_secret(&self, conn: &mut AsyncPgConnection, id: Uuid) -> Result<SecretString> {
        if let Some(s) = self.inbound.get(id) {
            return Ok(s);
        }
        let keyring = self.keyring.clone();
        // Two replicas minting at once: the row lock makes the second see the first's value.
        let secret = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                molecule_tree::row::lock_live(conn, id).await?;
                if let Some(s) = secrets::workspace_secret(conn, &keyring, id, INBOUND_SECRET_KEY).await? {
                    return Ok(s);
                }
                let fresh = SecretString::from(molecule_tree::tokens::generate());
                secrets::put_workspace_secret(conn, &keyring, id, INBOUND_SECRET_KEY, &fresh).await?;
                Ok(fresh)
            })
            .await?;
        self.inbound.put(id, secret.clone());
        Ok(secret)
    }

    /// The header value the platform presents to `id`'s agent, if it has a secret; a read
    /// failure is logged and the call goes without (the agent then refuses it, visibly).
    pub async fn inbound_bearer(&self, id: Uuid) -> Option<String> {
        match self.inbound_secret(id).await {
            Ok(s) => s.map(|s| format!("Bearer {}", s.expose_secret())),
            Err(e) => {
                tracing::warn!(workspace_id = %id, error = %e.chain(), "could not read the inbound secret");
                None
            }
        }
    }
}
