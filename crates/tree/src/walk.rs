//! The tree's walks, with one depth cap ([`MAX_DEPTH`], the domain's `MAX_TREE_DEPTH`): up
//! from a workspace ([`lineage`], [`ancestors`]) and down ([`subtree`], [`members`]). Every
//! caller that needs a workspace's place in the tree reads it here: the hierarchy rule's
//! lineages (`molecule-messaging`), memory scopes (`molecule-memory`, through
//! `molecule-namespace`), re-parent cycle checks, cascades and bulk lifecycle verbs.
//!
//! Owns: the two recursive statements and the cap, so a cycle in corrupt data ends at the cap
//! instead of hanging a query. Must not know: what a caller derives from a walk.

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{Vocabulary, WorkspaceStatus};
use uuid::Uuid;

use crate::error::Result;

/// How far a walk goes, up or down: deeper trees (or cycles) stop here.
pub use molecule_domain::MAX_TREE_DEPTH as MAX_DEPTH;

/// One workspace of a walk.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Node {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub parent_id: Option<Uuid>,
}

/// `id`, then its ancestors, nearest first, up to [`MAX_DEPTH`] of them (removed ones
/// included). Empty when there is no such workspace.
pub async fn lineage(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<Node>> {
    Ok(diesel::sql_query(format!(
        "WITH RECURSIVE chain AS (
             SELECT id, name, parent_id, 0 AS depth FROM workspaces WHERE id = $1
             UNION ALL
             SELECT w.id, w.name, w.parent_id, c.depth + 1
               FROM workspaces w JOIN chain c ON w.id = c.parent_id
              WHERE c.depth < {MAX_DEPTH}
         )
         SELECT id, name, parent_id FROM chain ORDER BY depth"
    ))
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?)
}

/// `id`'s ancestors, nearest first (see [`lineage`]).
pub async fn ancestors(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<Uuid>> {
    Ok(lineage(conn, id).await?.into_iter().skip(1).map(|n| n.id).collect())
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// `id` and its descendants, parents before children, down to [`MAX_DEPTH`] levels (removed
/// ones, and what hangs under them, only when asked).
pub async fn subtree(conn: &mut AsyncPgConnection, id: Uuid, include_removed: bool) -> Result<Vec<Uuid>> {
    let filter = if include_removed {
        String::new()
    } else {
        format!(
            "AND w.status NOT IN ({})",
            WorkspaceStatus::sql_list(&[WorkspaceStatus::Removed])
        )
    };
    let rows: Vec<IdRow> = diesel::sql_query(format!(
        "WITH RECURSIVE down(id, depth) AS (
             SELECT id, 0 FROM workspaces WHERE id = $1
           UNION ALL
             SELECT w.id, down.depth + 1 FROM workspaces w JOIN down ON w.parent_id = down.id
              WHERE down.depth < {MAX_DEPTH} {filter})
         SELECT id FROM down ORDER BY depth"
    ))
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// [`subtree`] (removed ones included) with each member's name and status, parents first.
pub async fn members(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<(Uuid, String, WorkspaceStatus)>> {
    let ids = subtree(conn, id, true).await?;
    let rows: Vec<(Uuid, String, DbWorkspaceStatus)> = w::table
        .filter(w::id.eq_any(&ids))
        .select((w::id, w::name, w::status))
        .load(conn)
        .await?;
    let order: std::collections::HashMap<Uuid, usize> = ids.iter().enumerate().map(|(n, i)| (*i, n)).collect();
    let mut out: Vec<(Uuid, String, WorkspaceStatus)> = rows.into_iter().map(|(i, n, s)| (i, n, s.0)).collect();
    out.sort_by_key(|(i, _, _)| order.get(i).copied().unwrap_or(usize::MAX));
    Ok(out)
}

/// The names of `ids` (removed workspaces included); ids with no row are left out.
pub async fn names(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<std::collections::HashMap<Uuid, String>> {
    let rows: Vec<(Uuid, String)> = w::table
        .filter(w::id.eq_any(ids))
        .select((w::id, w::name))
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

impl crate::Tree {
    /// [`lineage`] on a pooled connection.
    pub async fn lineage(&self, id: Uuid) -> Result<Vec<Node>> {
        let mut conn = self.pool.get().await?;
        lineage(&mut conn, id).await
    }

    /// Whether `ancestor` is above `id` in the tree (its parent, or further up).
    pub async fn is_ancestor(&self, ancestor: Uuid, id: Uuid) -> Result<bool> {
        Ok(self.lineage(id).await?.iter().skip(1).any(|n| n.id == ancestor))
    }
}
