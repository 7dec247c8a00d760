//! `agents`: the `agents` table, its one owner.
//!
//! Owns: a workspace's agent assignments. At most one is `active` per workspace (a partial
//! unique index, so two racing assigns give one 201 and one 409); assign, replace, remove and
//! move each run in one transaction with their events, so a failed replace never leaves a
//! workspace without its agent.
//!
//! Must not know: HTTP, tokens, who may move an agent where.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_db::schema::agents as a;
use molecule_domain::{AgentStatus, EventType, Vocabulary};
use molecule_tree::{Result, ServiceError, Tree, events};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// The most characters a model name may have.
pub const MAX_MODEL_CHARS: usize = 200;

/// An agent assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub model: String,
    pub status: AgentStatus,
    pub created_at: OffsetDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = a)]
struct Row {
    id: Uuid,
    workspace_id: Uuid,
    model: String,
    status: String,
    created_at: OffsetDateTime,
}

impl TryFrom<Row> for Assignment {
    type Error = ServiceError;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            status: AgentStatus::parse(&r.status).map_err(|e| ServiceError::internal("reading an agent row", e))?,
            id: r.id,
            workspace_id: r.workspace_id,
            model: r.model,
            created_at: r.created_at,
        })
    }
}

fn model_ok(model: &str) -> Result<String> {
    let model = model.trim();
    if model.is_empty() {
        return Err(ServiceError::invalid(
            "model",
            "required: the model to assign, e.g. anthropic:claude-sonnet-4",
        ));
    }
    let n = model.chars().count();
    if n > MAX_MODEL_CHARS {
        return Err(ServiceError::invalid(
            "model",
            format!("at most {MAX_MODEL_CHARS} characters, got {n}"),
        ));
    }
    Ok(model.to_owned())
}

/// The one-active index turned into the 409 the caller can act on.
fn taken(e: DieselError, message: &'static str) -> ServiceError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            ServiceError::conflict(message, serde_json::Value::Null)
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            ServiceError::NotFound("workspace not found".into())
        }
        other => other.into(),
    }
}

async fn active(conn: &mut AsyncPgConnection, workspace_id: Uuid) -> Result<Option<Assignment>> {
    let row: Option<Row> = a::table
        .filter(a::workspace_id.eq(workspace_id))
        .filter(a::status.eq(AgentStatus::Active.as_str()))
        .for_update()
        .select(Row::as_select())
        .first(conn)
        .await
        .optional()?;
    row.map(Assignment::try_from).transpose()
}

async fn insert(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    model: &str,
    message: &'static str,
) -> Result<Assignment> {
    let row: Row = diesel::insert_into(a::table)
        .values((a::workspace_id.eq(workspace_id), a::model.eq(model)))
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| taken(e, message))?;
    Assignment::try_from(row)
}

async fn retire(conn: &mut AsyncPgConnection, id: Uuid, status: AgentStatus, reason: &str) -> Result<()> {
    diesel::update(a::table.find(id))
        .set((
            a::status.eq(status.as_str()),
            a::removed_at.eq(diesel::dsl::now),
            a::removal_reason.eq(reason),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The agent assignments of one server.
#[derive(Clone)]
pub struct Agents {
    tree: Tree,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agents").finish_non_exhaustive()
    }
}

impl Agents {
    pub fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// The workspace's active agent; 404 `no active agent` when it has none.
    pub async fn active(&self, workspace_id: Uuid) -> Result<Assignment> {
        let mut conn = self.tree.pool().get().await?;
        let row: Option<Row> = a::table
            .filter(a::workspace_id.eq(workspace_id))
            .filter(a::status.eq(AgentStatus::Active.as_str()))
            .select(Row::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        row.map(Assignment::try_from)
            .transpose()?
            .ok_or_else(|| ServiceError::NotFound("no active agent".into()))
    }

    /// Assigns `model`; 409 when the workspace already has an active agent.
    pub async fn assign(&self, workspace_id: Uuid, model: &str) -> Result<Assignment> {
        let model = model_ok(model)?;
        self.tree.require_live(workspace_id).await?;
        let mut conn = self.tree.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let made = insert(
                conn,
                workspace_id,
                &model,
                "workspace already has an active agent, use PATCH to replace",
            )
            .await?;
            events::record(
                conn,
                EventType::AgentAssigned,
                Some(workspace_id),
                json!({ "agent_id": made.id, "model": made.model }),
            )
            .await?;
            Ok(made)
        })
        .await
    }

    /// Replaces the active agent with `model`; answers the new one and the old model. 404
    /// `no active agent to replace`.
    pub async fn replace(&self, workspace_id: Uuid, model: &str) -> Result<(Assignment, String)> {
        let model = model_ok(model)?;
        self.tree.require_live(workspace_id).await?;
        let mut conn = self.tree.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let old = active(conn, workspace_id)
                .await?
                .ok_or_else(|| ServiceError::NotFound("no active agent to replace".into()))?;
            retire(conn, old.id, AgentStatus::Replaced, "model_replaced").await?;
            let made = insert(conn, workspace_id, &model, "workspace already has an active agent").await?;
            events::record(
                conn,
                EventType::AgentReplaced,
                Some(workspace_id),
                json!({ "agent_id": made.id, "model": made.model, "old_model": old.model }),
            )
            .await?;
            Ok((made, old.model))
        })
        .await
    }

    /// Removes the active agent; 404 `no active agent to remove`.
    pub async fn remove(&self, workspace_id: Uuid) -> Result<Assignment> {
        let mut conn = self.tree.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let old = active(conn, workspace_id)
                .await?
                .ok_or_else(|| ServiceError::NotFound("no active agent to remove".into()))?;
            retire(conn, old.id, AgentStatus::Removed, "manual_removal").await?;
            events::record(
                conn,
                EventType::AgentRemoved,
                Some(workspace_id),
                json!({ "agent_id": old.id, "model": old.model }),
            )
            .await?;
            Ok(Assignment {
                status: AgentStatus::Removed,
                ..old
            })
        })
        .await
    }

    /// Moves the active agent to `target` (a live workspace without one). 400 naming
    /// `target_workspace_id` for the workspace itself; 404 `target workspace not found`; 409
    /// when the target has an active agent; 404 `no active agent in source workspace`.
    pub async fn move_to(&self, workspace_id: Uuid, target: Uuid) -> Result<Assignment> {
        if target == workspace_id {
            return Err(ServiceError::invalid(
                "target_workspace_id",
                "is this workspace; name another one",
            ));
        }
        if !self.tree.is_live(target).await? {
            return Err(ServiceError::NotFound("target workspace not found".into()));
        }
        let mut conn = self.tree.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let moving = active(conn, workspace_id)
                .await?
                .ok_or_else(|| ServiceError::NotFound("no active agent in source workspace".into()))?;
            let row: Row = diesel::update(a::table.find(moving.id))
                .set(a::workspace_id.eq(target))
                .returning(Row::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| taken(e, "target workspace already has an active agent"))?;
            let moved = Assignment::try_from(row)?;
            events::record(
                conn,
                EventType::AgentMoved,
                Some(workspace_id),
                json!({ "agent_id": moved.id, "model": moved.model, "target_workspace_id": target }),
            )
            .await?;
            events::record(
                conn,
                EventType::AgentMoved,
                Some(target),
                json!({ "agent_id": moved.id, "model": moved.model, "source_workspace_id": workspace_id }),
            )
            .await?;
            Ok(moved)
        })
        .await
    }
}
