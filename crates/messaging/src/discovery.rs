//! Discovery: who may talk to whom (the hierarchy rule applied to rows of the tree), a peer's
//! URL, the peers list, and agent card updates.
//!
//! Owns: reading lineages from `workspaces` (one recursive statement per workspace) and the
//! discovery reads; the card update write. Must not know: HTTP, or the rule itself (that is
//! `molecule_a2a::access`).

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_a2a::{Lineage, can_communicate};
use molecule_api::discovery::{CardStatus, CardUpdated, Discovered, Peer, Relation, UpdateCard};
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{EventType, WorkspaceStatus};
use serde_json::{Value, json};
use uuid::Uuid;

use molecule_tree::error::{Result, ServiceError};

use molecule_tree::events;

/// The refusal the original gives when the hierarchy forbids a pair.
pub const DENIED: &str = "access denied: workspaces cannot communicate per hierarchy rules";

/// Largest agent card accepted by `update-card` (serialized bytes).
const MAX_CARD_BYTES: usize = 256 * 1024;

/// The lineage of `id` for the hierarchy rule (its ancestors, nearest first, through the
/// tree's one walk: more than [`molecule_a2a::MAX_HOPS`] of them, so the rule can tell "too far" from "not an
/// ancestor"), or `None` when no such workspace row exists.
pub async fn lineage(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Lineage>> {
    let mut nodes = molecule_tree::walk::lineage(conn, id).await?.into_iter().map(|n| n.id);
    Ok(nodes.next().map(|first| Lineage {
        id: first,
        ancestors: nodes.collect(),
    }))
}

/// Whether `caller` may communicate with `target`; `Ok(None)` when either does not exist.
pub async fn allowed(conn: &mut AsyncPgConnection, caller: Uuid, target: Uuid) -> Result<Option<bool>> {
    let Some(a) = lineage(conn, caller).await? else {
        return Ok(None);
    };
    let Some(b) = lineage(conn, target).await? else {
        return Ok(None);
    };
    Ok(Some(can_communicate(&a, &b)))
}

#[derive(Queryable)]
struct PeerRow {
    id: Uuid,
    name: String,
    role: Option<String>,
    tier: i32,
    status: DbWorkspaceStatus,
    url: Option<String>,
    parent_id: Option<Uuid>,
    active_tasks: i32,
    agent_card: Option<Value>,
}

impl crate::Messaging {
    /// `POST /registry/check-access`: whether `caller` may communicate with `target` (false
    /// when either does not exist, as in the original).
    pub async fn check_access(&self, caller: Uuid, target: Uuid) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(allowed(&mut conn, caller, target).await?.unwrap_or(false))
    }

    /// Refuses with 404 when `target` does not exist (or is removed) and 403 when the hierarchy
    /// forbids the pair; the checks every A2A path makes before it acts.
    pub async fn require_access(&self, caller: Uuid, target: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        require_access(&mut conn, caller, target).await
    }

    /// `GET /registry/discover/:id`: where `caller` reaches `target`. 403 when the hierarchy
    /// forbids it, 404 when the target does not exist, 503 unless it is online or degraded.
    pub async fn discover(&self, caller: Uuid, target: Uuid) -> Result<Discovered> {
        let mut conn = self.pool.get().await?;
        require_access(&mut conn, caller, target).await?;
        let (name, status, url): (String, DbWorkspaceStatus, Option<String>) = w::table
            .find(target)
            .select((w::name, w::status, w::url))
            .first(&mut conn)
            .await?;
        let status = status.0;
        if !matches!(status, WorkspaceStatus::Online | WorkspaceStatus::Degraded) {
            return Err(ServiceError::NotReady(format!(
                "workspace {target} is {status}; it can be discovered once it is online"
            )));
        }
        let url = url.ok_or_else(|| {
            ServiceError::NotReady(format!(
                "workspace {target} has no URL (a poll-mode agent is reached through its inbox)"
            ))
        })?;
        Ok(Discovered { id: target, url, name })
    }

    /// `GET /registry/:id/peers`: the parent, the siblings (other roots, for a root) and the
    /// children of `id` that are not removed, optionally filtered by `q` (case-insensitive,
    /// in name or role). Parent first, then siblings and children by name.
    pub async fn peers(&self, id: Uuid, q: Option<&str>) -> Result<Vec<Peer>> {
        let q = q.map(str::trim).filter(|q| !q.is_empty());
        if let Some(q) = q
            && q.chars().count() > 200
        {
            return Err(ServiceError::invalid("q", "must be at most 200 characters"));
        }
        let mut conn = self.pool.get().await?;
        let me: Option<Option<Uuid>> = w::table
            .find(id)
            .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
            .select(w::parent_id)
            .first(&mut conn)
            .await
            .optional()?;
        let parent = me.ok_or_else(|| ServiceError::NotFound(format!("workspace {id} not found")))?;
        let live = w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed));
        let mut query = w::table
            .filter(live)
            .filter(w::id.ne(id))
            .filter(
                w::parent_id
                    .eq(id)
                    .or(w::parent_id.is_not_distinct_from(parent.into_sql::<Nullable<SqlUuid>>()))
                    .or(w::id.nullable().eq(parent)),
            )
            .into_boxed();
        if let Some(q) = q {
            let pattern = format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            query = query.filter(w::name.ilike(pattern.clone()).or(w::role.ilike(pattern)));
        }
        let rows: Vec<PeerRow> = query
            .order(w::name.asc())
            .select((
                w::id,
                w::name,
                w::role,
                w::tier,
                w::status,
                w::url,
                w::parent_id,
                w::active_tasks,
                w::agent_card,
            ))
            .load(&mut conn)
            .await?;
        let mut peers: Vec<Peer> = rows
            .into_iter()
            .map(|r| Peer {
                relation: if Some(r.id) == parent {
                    Relation::Parent
                } else if r.parent_id == Some(id) {
                    Relation::Child
                } else {
                    Relation::Sibling
                },
                id: r.id,
                name: r.name,
                role: r.role,
                tier: r.tier,
                status: r.status.0,
                url: r.url,
                parent_id: r.parent_id,
                active_tasks: r.active_tasks,
                agent_card: r.agent_card,
            })
            .collect();
        peers.sort_by_key(|p| p.relation != Relation::Parent);
        Ok(peers)
    }

    /// `POST /registry/update-card`: replaces the agent card and records
    /// `AGENT_CARD_UPDATED {agent_card}`.
    pub async fn update_card(&self, input: UpdateCard) -> Result<CardUpdated> {
        if !input.agent_card.is_object() {
            return Err(ServiceError::invalid("agent_card", "must be a JSON object"));
        }
        if input.agent_card.to_string().len() > MAX_CARD_BYTES {
            return Err(ServiceError::invalid(
                "agent_card",
                format!("must be at most {MAX_CARD_BYTES} bytes of JSON"),
            ));
        }
        let id = input.workspace_id;
        let card = input.agent_card;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            if !molecule_tree::row::set_card(conn, id, &card).await? {
                return Err(ServiceError::NotFound(format!("workspace {id} not found")));
            }
            events::record(
                conn,
                EventType::AgentCardUpdated,
                Some(id),
                json!({ "agent_card": card }),
            )
            .await?;
            Ok(())
        })
        .await?;
        Ok(CardUpdated {
            status: CardStatus::Updated,
        })
    }
}

/// 404 when `target` is unknown or removed, 403 when the pair may not communicate.
pub async fn require_access(conn: &mut AsyncPgConnection, caller: Uuid, target: Uuid) -> Result<()> {
    let live: Option<bool> = w::table
        .find(target)
        .select(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
        .first(conn)
        .await
        .optional()?;
    if live != Some(true) {
        return Err(ServiceError::NotFound(format!("workspace {target} not found")));
    }
    match allowed(conn, caller, target).await? {
        Some(true) => Ok(()),
        Some(false) => Err(ServiceError::Forbidden(DENIED.into())),
        None => Err(ServiceError::NotFound(format!("workspace {caller} not found"))),
    }
}
