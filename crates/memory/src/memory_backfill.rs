//! `workspace-server memory-backfill`: copies the original's `agent_memories` rows into the
//! memory plugin, idempotent by id (the row's id is the memory's), resumable (where an
//! `--apply` run stopped is kept in `memory_backfill_progress`), and checkable (`--verify`).
//!
//! Owns: reading the original's `agent_memories` (never writing it) and the
//! `memory_backfill_progress` table. A row's scope places it as the original's backfill did:
//! LOCAL in `workspace:<id>`, TEAM in the team namespace, GLOBAL in the org's; its `namespace`
//! label and `created_at` go into `propagation` (`label`, `original_created_at`), as the HTTP
//! endpoints and the import keep them. Must not know: the CLI or how the progress is shown.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use futures_util::stream::{self, StreamExt};
use molecule_memory_contract::{MAX_SEARCH_LIMIT, MemoryKind, MemorySource, MemoryWrite, SearchRequest};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::memory::into_service;
use crate::memory_admin::{Tree, write_creating};
use molecule_secrets::redact::redact;
use molecule_tree::error::{Result, ServiceError};

/// Concurrent plugin writes.
const CONCURRENCY: usize = 8;

/// What to copy and how.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// The source table, `agent_memories` or `schema.agent_memories`.
    pub table: String,
    /// Write (otherwise count and place only).
    pub apply: bool,
    /// Only this workspace's rows.
    pub workspace: Option<Uuid>,
    /// Rows per batch.
    pub batch: i64,
    /// Stop after this many rows (this run).
    pub limit: Option<u64>,
    /// Ignore the saved progress and start from the first row.
    pub restart: bool,
}

/// How far a run got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillProgress {
    /// Rows this run will read (after the saved position).
    pub total: u64,
    /// Rows read so far.
    pub read: u64,
    /// Written to the plugin (in a dry run: would be).
    pub written: u64,
    /// Rows that could not be placed or written (each is logged with its id and reason).
    pub errors: u64,
    /// Rows skipped because an earlier `--apply` run had copied them.
    pub resumed_after: u64,
    /// `--verify`: rows missing from the plugin or holding other content.
    pub mismatched: u64,
}

struct SourceRow {
    id: Uuid,
    workspace_id: Uuid,
    content: String,
    scope: String,
    label: Option<String>,
    created_at: OffsetDateTime,
}

#[derive(diesel::QueryableByName)]
struct Raw {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    content: String,
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = Nullable<Text>)]
    label: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `table` if it is a plain (optionally schema-qualified) lower-case identifier.
fn checked_table(table: &str) -> Result<String> {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 63
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !part.starts_with(|c: char| c.is_ascii_digit())
    };
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| ok(p)) {
        return Err(ServiceError::invalid(
            "--table",
            format!("{table:?} is not a table name (lower-case letters, digits and _, optionally schema.table)"),
        ));
    }
    Ok(parts.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join("."))
}

impl crate::Memory {
    /// Copies (or with `apply: false`, counts and places) the source rows after the saved
    /// position, calling `progress` after each batch.
    pub async fn memory_backfill(
        &self,
        opts: &BackfillOptions,
        mut progress: impl FnMut(&BackfillProgress),
    ) -> Result<BackfillProgress> {
        let layer = self.memory().map_err(into_service)?.clone();
        let (table, has_label) = self.backfill_source(&opts.table).await?;
        let key = format!(
            "{}{}",
            opts.table,
            opts.workspace.map(|w| format!("@{w}")).unwrap_or_default()
        );
        let saved = if opts.restart {
            None
        } else {
            self.backfill_position(&key).await?
        };
        let mut p = BackfillProgress::default();
        if let Some((_, copied)) = saved {
            p.resumed_after = copied;
        }
        p.total = self.backfill_count(&table, opts.workspace, saved.map(|s| s.0)).await?;
        if let Some(limit) = opts.limit {
            p.total = p.total.min(limit);
        }
        let tree = Tree::new(self.workspaces.tree_nodes().await?);
        let mut after = saved.map(|s| s.0);
        progress(&p);
        while p.read < p.total {
            let want = (p.total - p.read).min(opts.batch.max(1) as u64) as i64;
            let rows = self
                .backfill_batch(&table, has_label, opts.workspace, after, want)
                .await?;
            let Some(last) = rows.last().map(|r| r.id) else { break };
            p.read += rows.len() as u64;
            let mut writes = Vec::new();
            for row in rows {
                match placed(&tree, &row) {
                    Ok(w) => writes.push(w),
                    Err(reason) => {
                        p.errors += 1;
                        tracing::warn!(memory_id = %row.id, workspace_id = %row.workspace_id, reason, "memory not backfilled");
                    }
                }
            }
            if opts.apply {
                let outcomes: Vec<_> = stream::iter(writes)
                    .map(|(namespace, write)| {
                        let layer = &layer;
                        async move {
                            let r = write_creating(layer, &namespace, &write).await;
                            (write.id, r)
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
                for (id, r) in outcomes {
                    match r {
                        Ok(()) => p.written += 1,
                        Err(e) => {
                            p.errors += 1;
                            tracing::warn!(memory_id = ?id, error = %e, "memory not backfilled");
                        }
                    }
                }
                self.save_backfill_position(&key, last, saved.map_or(0, |s| s.1) + p.written)
                    .await?;
            } else {
                p.written += writes.len() as u64;
            }
            after = Some(last);
            progress(&p);
        }
        Ok(p)
    }

    /// `--verify`: every source row (of the workspace, if given) is in the plugin, in its
    /// namespace, with its redacted content. One plugin listing per 100 rows of a namespace.
    pub async fn memory_backfill_verify(
        &self,
        opts: &BackfillOptions,
        mut progress: impl FnMut(&BackfillProgress),
    ) -> Result<BackfillProgress> {
        let layer = self.memory().map_err(into_service)?.clone();
        let (table, has_label) = self.backfill_source(&opts.table).await?;
        let mut p = BackfillProgress {
            total: self.backfill_count(&table, opts.workspace, None).await?,
            ..BackfillProgress::default()
        };
        if let Some(limit) = opts.limit {
            p.total = p.total.min(limit);
        }
        let tree = Tree::new(self.workspaces.tree_nodes().await?);
        let mut after = None;
        progress(&p);
        while p.read < p.total {
            let want = (p.total - p.read).min(opts.batch.max(1) as u64) as i64;
            let rows = self
                .backfill_batch(&table, has_label, opts.workspace, after, want)
                .await?;
            let Some(last) = rows.last().map(|r| r.id) else { break };
            p.read += rows.len() as u64;
            let mut by_namespace: BTreeMap<String, Vec<MemoryWrite>> = BTreeMap::new();
            for row in &rows {
                match placed(&tree, row) {
                    Ok((ns, w)) => by_namespace.entry(ns).or_default().push(w),
                    Err(_) => p.errors += 1,
                }
            }
            for (namespace, expected) in by_namespace {
                for chunk in expected.chunks(MAX_SEARCH_LIMIT as usize) {
                    let found = layer
                        .client
                        .search(&SearchRequest {
                            namespaces: vec![namespace.clone()],
                            ids: Some(chunk.iter().filter_map(|w| w.id).collect()),
                            limit: Some(MAX_SEARCH_LIMIT),
                            ..SearchRequest::default()
                        })
                        .await
                        .map_err(|e| into_service(e.into()))?;
                    for w in chunk {
                        let same = found
                            .memories
                            .iter()
                            .any(|m| Some(m.id) == w.id && m.content == w.content);
                        if same {
                            p.written += 1;
                        } else {
                            p.mismatched += 1;
                            tracing::warn!(memory_id = ?w.id, namespace, "backfilled memory missing or different");
                        }
                    }
                }
            }
            after = Some(last);
            progress(&p);
        }
        Ok(p)
    }

    /// The quoted source table and whether it has the `namespace` label column (017).
    async fn backfill_source(&self, table: &str) -> Result<(String, bool)> {
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = Nullable<Text>)]
            reg: Option<String>,
            #[diesel(sql_type = BigInt)]
            labels: i64,
        }
        let quoted = checked_table(table)?;
        let mut conn = self.pool.get().await?;
        let found: Found = diesel::sql_query(
            "SELECT to_regclass($1)::text AS reg,
                    (SELECT count(*) FROM pg_attribute
                      WHERE attrelid = to_regclass($1) AND attname = 'namespace' AND NOT attisdropped) AS labels",
        )
        .bind::<Text, _>(&quoted)
        .get_result(&mut conn)
        .await?;
        if found.reg.is_none() {
            return Err(ServiceError::invalid(
                "--table",
                format!("no table {table} in DATABASE_URL's database (the original's agent_memories)"),
            ));
        }
        Ok((quoted, found.labels > 0))
    }

    async fn backfill_count(&self, table: &str, ws: Option<Uuid>, after: Option<Uuid>) -> Result<u64> {
        let mut conn = self.pool.get().await?;
        let c: Count = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM {table}
              WHERE ($1::uuid IS NULL OR workspace_id = $1) AND ($2::uuid IS NULL OR id > $2)"
        ))
        .bind::<Nullable<SqlUuid>, _>(ws)
        .bind::<Nullable<SqlUuid>, _>(after)
        .get_result(&mut conn)
        .await?;
        Ok(u64::try_from(c.n).unwrap_or(0))
    }

    async fn backfill_batch(
        &self,
        table: &str,
        has_label: bool,
        ws: Option<Uuid>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<SourceRow>> {
        let label = if has_label { "namespace::text" } else { "NULL::text" };
        let mut conn = self.pool.get().await?;
        let rows: Vec<Raw> = diesel::sql_query(format!(
            "SELECT id, workspace_id, content, scope::text AS scope, {label} AS label, created_at FROM {table}
              WHERE ($1::uuid IS NULL OR workspace_id = $1) AND ($2::uuid IS NULL OR id > $2)
              ORDER BY id LIMIT $3"
        ))
        .bind::<Nullable<SqlUuid>, _>(ws)
        .bind::<Nullable<SqlUuid>, _>(after)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SourceRow {
                id: r.id,
                workspace_id: r.workspace_id,
                content: r.content,
                scope: r.scope,
                label: r.label,
                created_at: r.created_at,
            })
            .collect())
    }

    async fn backfill_position(&self, key: &str) -> Result<Option<(Uuid, u64)>> {
        use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
        use molecule_db::schema::memory_backfill_progress as b;
        let mut conn = self.pool.get().await?;
        let row: Option<(Uuid, i64)> = b::table
            .filter(b::source.eq(key))
            .select((b::last_id, b::copied))
            .first(&mut conn)
            .await
            .optional()?;
        Ok(row.map(|(id, n)| (id, u64::try_from(n).unwrap_or(0))))
    }

    async fn save_backfill_position(&self, key: &str, last: Uuid, copied: u64) -> Result<()> {
        use diesel::ExpressionMethods;
        use molecule_db::schema::memory_backfill_progress as b;
        let copied = i64::try_from(copied).unwrap_or(i64::MAX);
        let mut conn = self.pool.get().await?;
        diesel::insert_into(b::table)
            .values((b::source.eq(key), b::last_id.eq(last), b::copied.eq(copied)))
            .on_conflict(b::source)
            .do_update()
            .set((
                b::last_id.eq(last),
                b::copied.eq(copied),
                b::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

/// Where a source row goes and what is written.
fn placed(tree: &Tree, row: &SourceRow) -> std::result::Result<(String, MemoryWrite), String> {
    let kind = match row.scope.trim().to_ascii_uppercase().as_str() {
        "LOCAL" => molecule_domain::NamespaceKind::Workspace,
        "TEAM" => molecule_domain::NamespaceKind::Team,
        "GLOBAL" => molecule_domain::NamespaceKind::Org,
        other => return Err(format!("scope {other:?} is not LOCAL, TEAM or GLOBAL")),
    };
    let namespace = tree
        .namespace(row.workspace_id, kind)
        .ok_or_else(|| format!("workspace {} is not in the workspaces table", row.workspace_id))?;
    if row.content.trim().is_empty() {
        return Err("empty content".into());
    }
    let mut propagation = serde_json::Map::new();
    propagation.insert("label".into(), json!(row.label.as_deref().unwrap_or("general")));
    if let Ok(at) = row.created_at.format(&time::format_description::well_known::Rfc3339) {
        propagation.insert("original_created_at".into(), json!(at));
    }
    let write = MemoryWrite {
        id: Some(row.id),
        kind: MemoryKind::Fact,
        source: MemorySource::Agent,
        propagation: Some(propagation),
        ..MemoryWrite::fact(redact(&row.content).text)
    };
    Ok((namespace, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_table_names_reach_the_sql() {
        assert_eq!(checked_table("agent_memories").unwrap(), "\"agent_memories\"");
        assert_eq!(
            checked_table("old.agent_memories").unwrap(),
            "\"old\".\"agent_memories\""
        );
        for bad in ["", "a;drop table x", "A", "a.b.c", "1abc", "a b"] {
            assert!(checked_table(bad).is_err(), "{bad}");
        }
    }
}
