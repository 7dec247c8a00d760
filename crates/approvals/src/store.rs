//! `store`: the `approval_requests` table, its one owner.
//!
//! Owns: a request (the action is required; lengths are counted in characters; `context` is a
//! JSON object; the deadline is `APPROVAL_TIMEOUT_MINUTES` or a shorter `timeout_seconds`),
//! the two lists, a decision, a withdrawal and expiry, each with its events written in the
//! transaction that makes the change (so a listener never hears of a change that rolled
//! back, and every replica's `/ws` hears of it through the tree's NOTIFY).
//!
//! **Who decides:** the operator ([`Decider::Operator`]) or an ancestor of the requesting
//! workspace ([`Decider::Workspace`]: its parent, or further up). The requester deciding its
//! own request is a 403 (the original let it, under its own token). Only `pending` moves, once:
//! the row is locked while it is judged, so two deciders cannot both win.
//!
//! Must not know: HTTP, tokens, how an agent waits.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_db::Pool;
use molecule_db::schema::approval_requests as a;
use molecule_domain::{ApprovalStatus, EventType, Vocabulary};
use molecule_tree::{Result, ServiceError, Tree, events};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The most characters an action may have.
pub const MAX_ACTION_CHARS: usize = 200;
/// The most characters a task id may have.
pub const MAX_TASK_ID_CHARS: usize = 200;
/// The most characters a reason may have.
pub const MAX_REASON_CHARS: usize = 4000;
/// The most bytes `context` may take, as JSON.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;
/// The most rows a list answers (the original's).
pub const LIST_LIMIT: i64 = 50;
/// The most requests one expiry pass ends (the rest wait for the next pass).
pub const EXPIRE_BATCH: i64 = 500;
/// `decided_by` of an expired request (the original's lazy expiry wrote the same).
pub const AUTO_EXPIRED: &str = "auto-expired";
/// `decided_by` when the operator names nobody (the original's default).
pub const HUMAN: &str = "human";

/// An approval request as the use-cases see it (not the row: its status is the domain's).
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub task_id: String,
    pub action: String,
    pub reason: String,
    pub context: Map<String, Value>,
    pub status: ApprovalStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = a)]
struct Row {
    id: Uuid,
    workspace_id: Uuid,
    task_id: String,
    action: String,
    reason: String,
    context: Value,
    status: String,
    decided_by: Option<String>,
    decided_at: Option<OffsetDateTime>,
    expires_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

impl TryFrom<Row> for Approval {
    type Error = ServiceError;

    fn try_from(r: Row) -> Result<Self> {
        let status =
            ApprovalStatus::parse(&r.status).map_err(|e| ServiceError::internal("reading an approval row", e))?;
        Ok(Self {
            id: r.id,
            workspace_id: r.workspace_id,
            task_id: r.task_id,
            action: r.action,
            reason: r.reason,
            // The column is NOT NULL and only objects are written.
            context: match r.context {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            status,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            expires_at: r.expires_at,
            created_at: r.created_at,
        })
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Default)]
pub struct NewApproval {
    pub action: String,
    pub task_id: Option<String>,
    pub reason: Option<String>,
    /// A JSON object, or nothing (`{}`).
    pub context: Option<Value>,
    /// A shorter wait than the server's longest, in seconds.
    pub timeout_seconds: Option<u64>,
}

/// Who decides a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// The admin token's holder, with the name it gives (default `human`).
    Operator { name: Option<String> },
    /// A workspace, by its own token: it must be an ancestor of the requester.
    Workspace(Uuid),
}

/// The approvals of one server: the pool, the tree (lineage, events) and the longest wait.
#[derive(Clone)]
pub struct Approvals {
    tree: Tree,
    max_wait: Duration,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

fn chars_at_most(field: &'static str, value: &str, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n > max {
        return Err(ServiceError::invalid(
            field,
            format!("at most {max} characters, got {n}"),
        ));
    }
    Ok(())
}

impl Approvals {
    /// `max_wait` is `APPROVAL_TIMEOUT_MINUTES`: every request's default and longest wait.
    pub fn new(tree: Tree, max_wait: Duration) -> Self {
        Self { tree, max_wait }
    }

    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    fn pool(&self) -> &Pool {
        self.tree.pool()
    }

    pub(crate) fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Checks `new` and stores it as `pending`, with `APPROVAL_REQUESTED` on the requester
    /// and, when it has a parent, `APPROVAL_ESCALATED` on the parent. 404 for a workspace
    /// that is gone.
    pub async fn request(&self, workspace_id: Uuid, new: NewApproval) -> Result<Approval> {
        let action = new.action.trim().to_owned();
        if action.is_empty() {
            return Err(ServiceError::invalid("action", "required: what the agent wants to do"));
        }
        chars_at_most("action", &action, MAX_ACTION_CHARS)?;
        let task_id = new.task_id.unwrap_or_default();
        chars_at_most("task_id", &task_id, MAX_TASK_ID_CHARS)?;
        let reason = new.reason.unwrap_or_default();
        chars_at_most("reason", &reason, MAX_REASON_CHARS)?;
        let context = match new.context {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v,
            Some(other) => {
                return Err(ServiceError::invalid(
                    "context",
                    format!("must be a JSON object, got {}", json_kind(&other)),
                ));
            }
        };
        let size = context.to_string().len();
        if size > MAX_CONTEXT_BYTES {
            return Err(ServiceError::invalid(
                "context",
                format!("at most {MAX_CONTEXT_BYTES} bytes as JSON, got {size}"),
            ));
        }
        let max = self.max_wait.as_secs().max(1);
        let wait = match new.timeout_seconds {
            None => max,
            Some(s @ 1..) if s <= max => s,
            Some(s) => {
                return Err(ServiceError::invalid(
                    "timeout_seconds",
                    format!("must be 1..={max} (APPROVAL_TIMEOUT_MINUTES on the server), got {s}"),
                ));
            }
        };
        self.tree.require_live(workspace_id).await?;
        let parent = self
            .tree
            .lineage(workspace_id)
            .await?
            .into_iter()
            .next()
            .and_then(|n| n.parent_id);
        let expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(i64::try_from(wait).unwrap_or(i64::MAX));
        let mut conn = self.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let row: Row = diesel::insert_into(a::table)
                .values((
                    a::workspace_id.eq(workspace_id),
                    a::task_id.eq(&task_id),
                    a::action.eq(&action),
                    a::reason.eq(&reason),
                    a::context.eq(&context),
                    a::expires_at.eq(expires_at),
                ))
                .returning(Row::as_returning())
                .get_result(conn)
                .await?;
            let made = Approval::try_from(row)?;
            events::record(
                conn,
                EventType::ApprovalRequested,
                Some(workspace_id),
                json!({ "approval_id": made.id, "action": made.action, "reason": made.reason,
                        "task_id": made.task_id, "expires_at": rfc3339(made.expires_at) }),
            )
            .await?;
            if let Some(parent) = parent {
                events::record(
                    conn,
                    EventType::ApprovalEscalated,
                    Some(parent),
                    json!({ "approval_id": made.id, "from_workspace_id": workspace_id,
                            "action": made.action, "reason": made.reason }),
                )
                .await?;
            }
            Ok(made)
        })
        .await
    }

    /// The workspace's requests, newest first, at most [`LIST_LIMIT`].
    pub async fn list(&self, workspace_id: Uuid) -> Result<Vec<Approval>> {
        let mut conn = self.pool().get().await?;
        let rows: Vec<Row> = a::table
            .filter(a::workspace_id.eq(workspace_id))
            .order((a::created_at.desc(), a::id.desc()))
            .limit(LIST_LIMIT)
            .select(Row::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(Approval::try_from).collect()
    }

    /// One of the workspace's requests; 404 when it has no such one.
    pub async fn get(&self, workspace_id: Uuid, id: Uuid) -> Result<Approval> {
        let mut conn = self.pool().get().await?;
        let row: Option<Row> = a::table
            .filter(a::id.eq(id))
            .filter(a::workspace_id.eq(workspace_id))
            .select(Row::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        row.map(Approval::try_from)
            .transpose()?
            .ok_or_else(|| ServiceError::NotFound("approval not found".into()))
    }

    /// Every pending request with its workspace's name, newest first, at most
    /// [`LIST_LIMIT`]. Reading expires nothing (the original's lazy expiry did, silently).
    pub async fn pending(&self) -> Result<Vec<(Approval, String)>> {
        let mut conn = self.pool().get().await?;
        let rows: Vec<Row> = a::table
            .filter(a::status.eq(ApprovalStatus::Pending.as_str()))
            .order((a::created_at.desc(), a::id.desc()))
            .limit(LIST_LIMIT)
            .select(Row::as_select())
            .load(&mut conn)
            .await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.workspace_id).collect();
        let names = molecule_tree::walk::names(&mut conn, &ids).await?;
        rows.into_iter()
            .map(|r| {
                let name = names.get(&r.workspace_id).cloned().unwrap_or_default();
                Approval::try_from(r).map(|a| (a, name))
            })
            .collect()
    }

    /// Decides a pending request of `workspace_id`: `decision` is `approved` or `denied`.
    /// 400 for another decision or a workspace decider naming someone else in `decided_by`;
    /// 403 for the requester itself or a workspace that is not its ancestor; 404 when there is
    /// no such request; 409 when it is no longer pending.
    pub async fn decide(&self, workspace_id: Uuid, id: Uuid, decision: &str, decider: Decider) -> Result<Approval> {
        let decision = ApprovalStatus::parse(decision)
            .ok()
            .filter(|d| ApprovalStatus::DECISIONS.contains(d))
            .ok_or_else(|| ServiceError::invalid("decision", "must be 'approved' or 'denied'"))?;
        let decided_by = match decider {
            Decider::Operator { name } => {
                let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
                let name = name.unwrap_or_else(|| HUMAN.to_owned());
                chars_at_most("decided_by", &name, MAX_ACTION_CHARS)?;
                name
            }
            Decider::Workspace(by) => {
                if by == workspace_id {
                    return Err(ServiceError::Forbidden(
                        "a workspace cannot decide its own request: its parent (or an ancestor) or the operator decides"
                            .into(),
                    ));
                }
                if !self.tree.is_ancestor(by, workspace_id).await? {
                    return Err(ServiceError::Forbidden(
                        "only an ancestor of the requesting workspace, or the operator, decides its requests".into(),
                    ));
                }
                by.to_string()
            }
        };
        self.finish(workspace_id, id, decision, decided_by).await
    }

    /// The requester takes back its pending request (`APPROVAL_WITHDRAWN`, then
    /// `APPROVAL_DECIDED` with `withdrawn` for anyone waiting). 404 when there is no such
    /// request, 409 when it is no longer pending.
    pub async fn withdraw(&self, workspace_id: Uuid, id: Uuid) -> Result<Approval> {
        self.finish(workspace_id, id, ApprovalStatus::Withdrawn, workspace_id.to_string())
            .await
    }

    /// Ends one pending request if its deadline has passed (a waiter that saw the deadline
    /// come need not wait for the expiry loop). Answers the request as it stands afterwards.
    pub async fn expire_if_due(&self, workspace_id: Uuid, id: Uuid) -> Result<Approval> {
        let current = self.get(workspace_id, id).await?;
        if current.status != ApprovalStatus::Pending || current.expires_at > OffsetDateTime::now_utc() {
            return Ok(current);
        }
        match self
            .finish(workspace_id, id, ApprovalStatus::Expired, AUTO_EXPIRED.to_owned())
            .await
        {
            // Decided (or expired by the loop) in between: the stored end stands.
            Err(ServiceError::Conflict { .. }) => self.get(workspace_id, id).await,
            other => other,
        }
    }

    /// Ends every pending request past its deadline (at most [`EXPIRE_BATCH`] a pass), each
    /// with `APPROVAL_DECIDED` `{status: "expired"}`. Rows another replica is ending are
    /// skipped, so a request expires once. Returns how many it ended.
    pub async fn expire_due(&self) -> Result<usize> {
        #[derive(QueryableByName)]
        struct Ended {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
            #[diesel(sql_type = SqlUuid)]
            workspace_id: Uuid,
        }
        let mut conn = self.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let ended: Vec<Ended> = diesel::sql_query(
                "UPDATE approval_requests SET status = $1, decided_by = $2, decided_at = now()
                  WHERE id IN (SELECT id FROM approval_requests
                                WHERE status = 'pending' AND expires_at <= now()
                                ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                  RETURNING id, workspace_id",
            )
            .bind::<Text, _>(ApprovalStatus::Expired.as_str())
            .bind::<Text, _>(AUTO_EXPIRED)
            .bind::<diesel::sql_types::BigInt, _>(EXPIRE_BATCH)
            .load(conn)
            .await?;
            for e in &ended {
                events::record(
                    conn,
                    EventType::ApprovalDecided,
                    Some(e.workspace_id),
                    json!({ "approval_id": e.id, "status": ApprovalStatus::Expired.as_str(), "decided_by": AUTO_EXPIRED }),
                )
                .await?;
            }
            Ok(ended.len())
        })
        .await
    }

    /// Moves a pending request to `status`, with its events, under a row lock.
    async fn finish(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        status: ApprovalStatus,
        decided_by: String,
    ) -> Result<Approval> {
        let mut conn = self.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let current: Option<Row> = a::table
                .filter(a::id.eq(id))
                .filter(a::workspace_id.eq(workspace_id))
                .for_update()
                .select(Row::as_select())
                .first(conn)
                .await
                .optional()?;
            let Some(current) = current else {
                return Err(ServiceError::NotFound("approval not found".into()));
            };
            let current = Approval::try_from(current)?;
            if current.status != ApprovalStatus::Pending {
                return Err(ServiceError::conflict(
                    format!("approval already {}", current.status.as_str()),
                    json!({ "approval_id": id, "status": current.status.as_str(),
                            "decided_by": current.decided_by }),
                ));
            }
            let row: Row = diesel::update(a::table.find(id))
                .set((
                    a::status.eq(status.as_str()),
                    a::decided_by.eq(&decided_by),
                    a::decided_at.eq(diesel::dsl::now),
                ))
                .returning(Row::as_returning())
                .get_result(conn)
                .await?;
            let done = Approval::try_from(row)?;
            let legacy = match status {
                ApprovalStatus::Approved => Some(EventType::ApprovalApproved),
                ApprovalStatus::Denied => Some(EventType::ApprovalDenied),
                ApprovalStatus::Withdrawn => Some(EventType::ApprovalWithdrawn),
                ApprovalStatus::Pending | ApprovalStatus::Expired => None,
            };
            if let Some(ty) = legacy {
                events::record(
                    conn,
                    ty,
                    Some(workspace_id),
                    json!({ "approval_id": id, "decision": status.as_str(), "decided_by": decided_by }),
                )
                .await?;
            }
            events::record(
                conn,
                EventType::ApprovalDecided,
                Some(workspace_id),
                json!({ "approval_id": id, "status": status.as_str(), "decided_by": decided_by }),
            )
            .await?;
            Ok(done)
        })
        .await
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
