//! The plugin's storage: schema `memory_plugin`, plain SQL over diesel-async.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Double, Float4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use molecule_db::Pool;
use molecule_memory_contract::{
    ErrorBody, ErrorCode, Invalid, JsonObject, Memory, MemoryCapability, MemoryWrite, MemoryWriteResponse, Namespace,
    NamespaceName, NamespacePatch, NamespaceUpsert, SearchRequest,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// The commit statement as a query type of its own, with a static query id: diesel keeps the
/// prepared statement of such a query on each pooled connection, where a `sql_query` is parsed
/// and planned again on every call. Commits are the plugin's hottest write; prepared, the same
/// insert ran at twice the rate in pgbench (`-M prepared` against `-M extended`).
///
/// Inserting through a SELECT on a live namespace refuses missing and expired ones in the same
/// statement; the upsert never moves a memory between namespaces.
#[derive(Debug, Clone, Copy)]
struct CommitStatement<'a> {
    id: Uuid,
    namespace: &'a str,
    content: &'a str,
    kind: &'a str,
    source: &'a str,
    expires_at: Option<OffsetDateTime>,
    propagation: Option<&'a Value>,
    pin: bool,
    embedding: Option<&'a [f32]>,
}

impl diesel::query_builder::QueryId for CommitStatement<'_> {
    type QueryId = CommitStatement<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for CommitStatement<'_> {
    type SqlType = SqlUuid;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for CommitStatement<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        out.push_sql(
            "INSERT INTO memory_plugin.memories \
                (id, namespace, content, kind, source, expires_at, propagation, pin, embedding) \
             SELECT ",
        );
        out.push_bind_param::<SqlUuid, _>(&self.id)?;
        out.push_sql(", n.name, ");
        out.push_bind_param::<Text, _>(&self.content)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.source)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Jsonb>, _>(&self.propagation)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.pin)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Array<Float4>>, _>(&self.embedding)?;
        out.push_sql(" FROM memory_plugin.namespaces n WHERE n.name = ");
        out.push_bind_param::<Text, _>(&self.namespace)?;
        out.push_sql(
            " AND (n.expires_at IS NULL OR n.expires_at > now()) \
             ON CONFLICT (id) DO UPDATE \
                SET content = EXCLUDED.content, kind = EXCLUDED.kind, source = EXCLUDED.source, \
                    expires_at = EXCLUDED.expires_at, propagation = EXCLUDED.propagation, \
                    pin = EXCLUDED.pin, embedding = EXCLUDED.embedding, updated_at = now() \
              WHERE memory_plugin.memories.namespace = EXCLUDED.namespace \
             RETURNING id",
        );
        Ok(())
    }
}

/// Why a store call failed; each maps to one contract error code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

impl StoreError {
    /// The HTTP status and contract body for this error.
    pub fn to_wire(&self) -> (u16, ErrorBody) {
        match self {
            Self::Invalid(e) => (400, e.clone().into()),
            Self::NotFound(m) => (404, ErrorBody::new(ErrorCode::NotFound, m)),
            Self::Forbidden(m) => (403, ErrorBody::new(ErrorCode::Forbidden, m)),
            Self::Conflict(m) => (409, ErrorBody::new(ErrorCode::BadRequest, m)),
            Self::Unavailable(m) => (503, ErrorBody::new(ErrorCode::Unavailable, m)),
            Self::Internal(m) => (500, ErrorBody::new(ErrorCode::Internal, m)),
        }
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => Self::Unavailable(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

#[derive(diesel::QueryableByName)]
struct NamespaceRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    metadata: Option<Value>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

fn object(v: Option<Value>) -> Option<JsonObject> {
    match v {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

impl NamespaceRow {
    fn into_wire(self) -> Result<Namespace> {
        Ok(Namespace {
            kind: self
                .kind
                .parse()
                .map_err(|e| StoreError::Internal(format!("stored namespace {}: {e}", self.name)))?,
            name: self.name,
            expires_at: self.expires_at,
            metadata: object(self.metadata),
            created_at: self.created_at,
        })
    }
}

#[derive(diesel::QueryableByName)]
struct MemoryRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    namespace: String,
    #[diesel(sql_type = Text)]
    content: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    propagation: Option<Value>,
    #[diesel(sql_type = Bool)]
    pin: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Double>)]
    score: Option<f64>,
}

impl MemoryRow {
    fn into_wire(self) -> Result<Memory> {
        let bad = |e: molecule_domain::UnknownValue| StoreError::Internal(format!("stored memory {}: {e}", self.id));
        Ok(Memory {
            kind: self.kind.parse().map_err(bad)?,
            source: self.source.parse().map_err(bad)?,
            id: self.id,
            namespace: self.namespace,
            content: self.content,
            expires_at: self.expires_at,
            propagation: object(self.propagation),
            pin: self.pin,
            created_at: self.created_at,
            score: self.score.filter(|s| s.is_finite()),
        })
    }
}

/// How a search is answered, chosen from the request alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// An embedding was given: exact cosine similarity.
    Embedding,
    /// A query of 2 or more characters: full-text search (falling back to substring on a miss).
    FullText,
    /// A 1-character query, or a full-text miss: escaped `ILIKE '%q%'`.
    Substring,
    /// No query: newest first.
    Recent,
}

impl SearchMode {
    pub fn of(req: &SearchRequest) -> Self {
        if req.embedding.is_some() {
            return Self::Embedding;
        }
        match req.query.as_deref().map(str::trim).map_or(0, |q| q.chars().count()) {
            0 => Self::Recent,
            1 => Self::Substring,
            _ => Self::FullText,
        }
    }
}

/// `q` as a LIKE pattern matching it anywhere, with `\`, `%` and `_` taken literally.
pub fn contains_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

const NAMESPACE_COLUMNS: &str = "name, kind, expires_at, metadata, created_at";

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> Result<molecule_db::Conn> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// What this database really offers: the tables must exist for anything; `fts` needs the
    /// generated tsvector column and `embedding` the cosine function. `Err` when the schema
    /// is missing (for example `MEMORY_PLUGIN_SKIP_MIGRATE=1` on a fresh database).
    pub async fn capabilities(&self) -> Result<Vec<MemoryCapability>> {
        #[derive(diesel::QueryableByName)]
        struct Probe {
            #[diesel(sql_type = Bool)]
            tables: bool,
            #[diesel(sql_type = Bool)]
            fts: bool,
            #[diesel(sql_type = Bool)]
            cosine: bool,
        }
        let mut conn = self.conn().await?;
        let p: Probe = diesel::sql_query(
            "SELECT to_regclass('memory_plugin.memories') IS NOT NULL
                    AND to_regclass('memory_plugin.namespaces') IS NOT NULL AS tables,
                    EXISTS (SELECT 1 FROM pg_attribute
                             WHERE attrelid = to_regclass('memory_plugin.memories')
                               AND attname = 'content_tsv' AND NOT attisdropped) AS fts,
                    to_regprocedure('memory_plugin.cosine_similarity(real[],real[])') IS NOT NULL AS cosine",
        )
        .get_result(&mut conn)
        .await?;
        if !p.tables {
            return Err(StoreError::Unavailable(
                "schema memory_plugin is not installed: start without MEMORY_PLUGIN_SKIP_MIGRATE=1 once".into(),
            ));
        }
        let mut caps = Vec::new();
        if p.fts {
            caps.push(MemoryCapability::Fts);
        }
        if p.cosine {
            caps.push(MemoryCapability::Embedding);
        }
        caps.extend([
            MemoryCapability::Ttl,
            MemoryCapability::Pin,
            MemoryCapability::Propagation,
        ]);
        Ok(caps)
    }

    /// Creates the namespace, or replaces its kind, TTL and metadata.
    pub async fn upsert_namespace(&self, name: &NamespaceName, body: &NamespaceUpsert) -> Result<Namespace> {
        body.validate()?;
        let mut conn = self.conn().await?;
        let row: NamespaceRow = diesel::sql_query(format!(
            "INSERT INTO memory_plugin.namespaces (name, kind, expires_at, metadata) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, expires_at = EXCLUDED.expires_at,
                    metadata = EXCLUDED.metadata, updated_at = now()
             RETURNING {NAMESPACE_COLUMNS}"
        ))
        .bind::<Text, _>(name.as_str())
        .bind::<Text, _>(body.kind.to_string())
        .bind::<Nullable<Timestamptz>, _>(body.expires_at)
        .bind::<Nullable<Jsonb>, _>(body.metadata.clone().map(Value::Object))
        .get_result(&mut conn)
        .await?;
        row.into_wire()
    }

    /// Changes only the fields the patch carries.
    pub async fn patch_namespace(&self, name: &NamespaceName, body: &NamespacePatch) -> Result<Namespace> {
        body.validate()?;
        let mut conn = self.conn().await?;
        let row: Option<NamespaceRow> = diesel::sql_query(format!(
            "UPDATE memory_plugin.namespaces
                SET expires_at = CASE WHEN $2 THEN $3 ELSE expires_at END,
                    metadata = CASE WHEN $4 THEN $5 ELSE metadata END,
                    updated_at = now()
              WHERE name = $1
          RETURNING {NAMESPACE_COLUMNS}"
        ))
        .bind::<Text, _>(name.as_str())
        .bind::<Bool, _>(body.expires_at.is_some())
        .bind::<Nullable<Timestamptz>, _>(body.expires_at.flatten())
        .bind::<Bool, _>(body.metadata.is_some())
        .bind::<Nullable<Jsonb>, _>(body.metadata.clone().flatten().map(Value::Object))
        .get_result(&mut conn)
        .await
        .map(Some)
        .or_else(not_found_as_none)?;
        row.ok_or_else(|| StoreError::NotFound(format!("namespace {name} does not exist")))?
            .into_wire()
    }

    /// Deletes the namespace and (by cascade) its memories.
    pub async fn delete_namespace(&self, name: &NamespaceName) -> Result<()> {
        let mut conn = self.conn().await?;
        let n = diesel::sql_query("DELETE FROM memory_plugin.namespaces WHERE name = $1")
            .bind::<Text, _>(name.as_str())
            .execute(&mut conn)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("namespace {name} does not exist")));
        }
        Ok(())
    }

    /// Stores a memory; with an id, an upsert on it (within the same namespace only).
    pub async fn commit(&self, name: &NamespaceName, body: &MemoryWrite) -> Result<MemoryWriteResponse> {
        body.validate()?;
        let id = body.id.unwrap_or_else(Uuid::new_v4);
        let mut conn = self.conn().await?;
        let mut retried = false;
        let kind = body.kind.to_string();
        let source = body.source.to_string();
        let propagation = body.propagation.clone().map(Value::Object);
        loop {
            let written: Option<Uuid> = CommitStatement {
                id,
                namespace: name.as_str(),
                content: &body.content,
                kind: &kind,
                source: &source,
                expires_at: body.expires_at,
                propagation: propagation.as_ref(),
                pin: body.pin,
                embedding: body.embedding.as_deref(),
            }
            .get_result(&mut conn)
            .await
            .map(Some)
            .or_else(|e| match e {
                // The namespace was deleted between the SELECT and the INSERT.
                DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                    Err(StoreError::NotFound(format!("namespace {name} does not exist")))
                }
                other => not_found_as_none(other),
            })?;
            if let Some(id) = written {
                return Ok(MemoryWriteResponse {
                    id,
                    namespace: name.to_string(),
                });
            }
            // Nothing written: say why.
            #[derive(diesel::QueryableByName)]
            struct Why {
                #[diesel(sql_type = Bool)]
                live_namespace: bool,
                #[diesel(sql_type = Nullable<Text>)]
                owner: Option<String>,
            }
            let why: Why = diesel::sql_query(
                "SELECT EXISTS (SELECT 1 FROM memory_plugin.namespaces
                             WHERE name = $1 AND (expires_at IS NULL OR expires_at > now())) AS live_namespace,
                    (SELECT namespace FROM memory_plugin.memories WHERE id = $2) AS owner",
            )
            .bind::<Text, _>(name.as_str())
            .bind::<SqlUuid, _>(id)
            .get_result(&mut conn)
            .await?;
            return Err(match (why.live_namespace, why.owner) {
                (false, _) => StoreError::NotFound(format!(
                    "namespace {name} does not exist (or has expired): PUT /v1/namespaces/{name} first"
                )),
                (true, Some(owner)) => StoreError::Conflict(format!(
                    "memory id {id} already belongs to namespace {owner}; a write cannot move it to {name}"
                )),
                // The namespace appeared after this statement's snapshot (a concurrent writer
                // created it): once more sees it.
                (true, None) if !retried => {
                    retried = true;
                    continue;
                }
                (true, None) => StoreError::Internal(format!("memory {id} was neither written nor found")),
            });
        }
    }

    /// Searches the given namespaces (already the caller's readable set): the hits, and
    /// for a full page of a listing the token of the next page.
    pub async fn search(&self, req: &SearchRequest) -> Result<(SearchMode, Vec<Memory>, Option<String>)> {
        req.validate()?;
        let mode = SearchMode::of(req);
        if mode == SearchMode::Recent {
            let (rows, next) = self.list(req).await?;
            return Ok((mode, rows, next));
        }
        let rows = self.search_as(req, mode).await?;
        if mode == SearchMode::FullText && rows.is_empty() {
            // Stop words, stems and partial words miss in full text; a substring still finds
            // what the user just stored.
            return Ok((
                SearchMode::Substring,
                self.search_as(req, SearchMode::Substring).await?,
                None,
            ));
        }
        Ok((mode, rows, None))
    }

    /// A listing (no query, no embedding): pinned first, newest first, then by id, optionally
    /// narrowed to `ids` and continued after `page_token` (keyset paging: pages neither repeat
    /// nor skip while others write).
    async fn list(&self, req: &SearchRequest) -> Result<(Vec<Memory>, Option<String>)> {
        let after = req.page_token.as_deref().map(PageToken::parse).transpose()?;
        let kinds: Option<Vec<String>> = req
            .kinds
            .as_ref()
            .filter(|k| !k.is_empty())
            .map(|k| k.iter().map(ToString::to_string).collect());
        let limit = req.effective_limit();
        let mut conn = self.conn().await?;
        let rows: Vec<MemoryRow> = diesel::sql_query(LIST_SQL)
            .bind::<Array<Text>, _>(req.namespaces.clone())
            .bind::<Nullable<Array<Text>>, _>(kinds)
            .bind::<BigInt, _>(i64::from(limit))
            .bind::<Nullable<Array<SqlUuid>>, _>(req.ids.clone())
            .bind::<Nullable<Bool>, _>(after.as_ref().map(|a| a.pin))
            .bind::<Nullable<Timestamptz>, _>(after.as_ref().map(|a| a.created_at))
            .bind::<Nullable<SqlUuid>, _>(after.as_ref().map(|a| a.id))
            .load(&mut conn)
            .await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last())
            .flatten()
            .map(|last| {
                PageToken {
                    pin: last.pin,
                    created_at: last.created_at,
                    id: last.id,
                }
                .render()
            });
        let memories = rows.into_iter().map(MemoryRow::into_wire).collect::<Result<_>>()?;
        Ok((memories, next))
    }

    async fn search_as(&self, req: &SearchRequest, mode: SearchMode) -> Result<Vec<Memory>> {
        let sql = search_sql(mode);
        let kinds: Option<Vec<String>> = req
            .kinds
            .as_ref()
            .filter(|k| !k.is_empty())
            .map(|k| k.iter().map(ToString::to_string).collect());
        let query = req.query.as_deref().map(str::trim).unwrap_or_default();
        let base = diesel::sql_query(sql)
            .into_boxed()
            .bind::<Array<Text>, _>(req.namespaces.clone())
            .bind::<Nullable<Array<Text>>, _>(kinds)
            .bind::<BigInt, _>(i64::from(req.effective_limit()));
        let bound = match mode {
            SearchMode::Embedding => base.bind::<Array<Float4>, _>(req.embedding.clone().unwrap_or_default()),
            SearchMode::FullText => base.bind::<Text, _>(query.to_owned()),
            SearchMode::Substring => base.bind::<Text, _>(contains_pattern(query)),
            SearchMode::Recent => base.bind::<Nullable<Text>, _>(None::<String>),
        };
        let mut conn = self.conn().await?;
        let rows: Vec<MemoryRow> = bound.load(&mut conn).await?;
        rows.into_iter().map(MemoryRow::into_wire).collect()
    }

    /// Deletes memory `id` if it lives in `namespace`.
    pub async fn forget(&self, id: Uuid, namespace: &NamespaceName) -> Result<()> {
        #[derive(diesel::QueryableByName)]
        struct Owner {
            #[diesel(sql_type = Nullable<Text>)]
            owner: Option<String>,
        }
        let mut conn = self.conn().await?;
        let n = diesel::sql_query("DELETE FROM memory_plugin.memories WHERE id = $1 AND namespace = $2")
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(namespace.as_str())
            .execute(&mut conn)
            .await?;
        if n > 0 {
            return Ok(());
        }
        let who: Owner =
            diesel::sql_query("SELECT (SELECT namespace FROM memory_plugin.memories WHERE id = $1) AS owner")
                .bind::<SqlUuid, _>(id)
                .get_result(&mut conn)
                .await?;
        Err(match who.owner {
            Some(_) => StoreError::Forbidden(format!(
                "memory {id} is not in namespace {namespace}; it can only be forgotten through its own namespace"
            )),
            None => StoreError::NotFound(format!("memory {id} does not exist")),
        })
    }

    /// Deletes up to `batch` expired memories and then expired namespaces (with their
    /// memories). Returns (memories, namespaces) deleted.
    pub async fn sweep_expired(&self, batch: i64) -> Result<(usize, usize)> {
        let mut conn = self.conn().await?;
        let memories = diesel::sql_query(
            "DELETE FROM memory_plugin.memories WHERE id IN (
                 SELECT id FROM memory_plugin.memories WHERE expires_at <= now() LIMIT $1)",
        )
        .bind::<BigInt, _>(batch)
        .execute(&mut conn)
        .await?;
        let namespaces = diesel::sql_query(
            "DELETE FROM memory_plugin.namespaces WHERE name IN (
                 SELECT name FROM memory_plugin.namespaces WHERE expires_at <= now() LIMIT $1)",
        )
        .bind::<BigInt, _>(batch)
        .execute(&mut conn)
        .await?;
        Ok((memories, namespaces))
    }
}

/// A listing's statement. Binds: `$1` namespaces, `$2` kinds (or NULL), `$3` limit, `$4` ids
/// (or NULL), `$5`..`$7` the last row of the previous page (pin, created_at, id; NULL for the
/// first page), in the listing's order `pin DESC, created_at DESC, id`.
const LIST_SQL: &str = "SELECT m.id, m.namespace, m.content, m.kind, m.source, m.expires_at, m.propagation, m.pin,
        m.created_at, NULL::float8 AS score
   FROM memory_plugin.memories m
   JOIN memory_plugin.namespaces n ON n.name = m.namespace
  WHERE m.namespace = ANY($1)
    AND (m.expires_at IS NULL OR m.expires_at > now())
    AND (n.expires_at IS NULL OR n.expires_at > now())
    AND ($2::text[] IS NULL OR m.kind = ANY($2))
    AND ($4::uuid[] IS NULL OR m.id = ANY($4))
    AND ($5::bool IS NULL
         OR m.pin < $5
         OR (m.pin = $5 AND (m.created_at < $6 OR (m.created_at = $6 AND m.id > $7))))
  ORDER BY m.pin DESC, m.created_at DESC, m.id
  LIMIT $3";

/// Where a listing page ended: `v1.<pin 0|1>.<created_at in unix µs>.<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageToken {
    pin: bool,
    created_at: OffsetDateTime,
    id: Uuid,
}

impl PageToken {
    fn render(&self) -> String {
        let micros = self.created_at.unix_timestamp_nanos() / 1000;
        format!("v1.{}.{micros}.{}", u8::from(self.pin), self.id)
    }

    fn parse(raw: &str) -> Result<Self> {
        let bad = || {
            Invalid::new(
                "page_token",
                "is not a token this plugin issued (pass next_page_token as sent)",
            )
        };
        let mut parts = raw.split('.');
        let (Some("v1"), Some(pin), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad().into());
        };
        let pin = match pin {
            "0" => false,
            "1" => true,
            _ => return Err(bad().into()),
        };
        let micros: i128 = micros.parse().map_err(|_| bad())?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).map_err(|_| bad())?;
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        Ok(Self { pin, created_at, id })
    }
}

/// The statement a search runs in `mode`. Binds: `$1` namespaces (text[]), `$2` kinds
/// (text[] or NULL), `$3` limit, `$4` the query text, LIKE pattern or embedding (NULL when
/// listing). `cargo xtask bench memory` runs the full-text one through pgbench; a test keeps
/// its copy identical.
pub fn search_sql(mode: SearchMode) -> String {
    let (predicate, score, order) = match mode {
        SearchMode::Embedding => (
            "m.embedding IS NOT NULL AND cardinality(m.embedding) = cardinality($4::real[])",
            "memory_plugin.cosine_similarity(m.embedding, $4::real[])",
            "score DESC NULLS LAST,",
        ),
        SearchMode::FullText => (
            "m.content_tsv @@ plainto_tsquery('english', $4)",
            "ts_rank(m.content_tsv, plainto_tsquery('english', $4))::float8",
            "score DESC,",
        ),
        SearchMode::Substring => ("m.content ILIKE $4 ESCAPE '\\'", "NULL::float8", ""),
        SearchMode::Recent => ("$4::text IS NULL", "NULL::float8", ""),
    };
    format!(
        "SELECT m.id, m.namespace, m.content, m.kind, m.source, m.expires_at, m.propagation, m.pin,
                m.created_at, {score} AS score
           FROM memory_plugin.memories m
           JOIN memory_plugin.namespaces n ON n.name = m.namespace
          WHERE m.namespace = ANY($1)
            AND (m.expires_at IS NULL OR m.expires_at > now())
            AND (n.expires_at IS NULL OR n.expires_at > now())
            AND ($2::text[] IS NULL OR m.kind = ANY($2))
            AND {predicate}
          ORDER BY m.pin DESC, {order} m.created_at DESC, m.id
          LIMIT $3"
    )
}

fn not_found_as_none<T>(e: DieselError) -> Result<Option<T>> {
    match e {
        DieselError::NotFound => Ok(None),
        other => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's pgbench script runs exactly the full-text statement.
    #[test]
    fn the_benchmark_runs_the_same_sql() {
        let bench = include_str!("../../../xtask/bench/memory-search.sql");
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(squash(bench), squash(&search_sql(SearchMode::FullText)));
    }

    #[test]
    fn a_page_token_round_trips_and_refuses_what_it_did_not_issue() {
        let t = PageToken {
            pin: true,
            created_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap(),
            id: Uuid::nil(),
        };
        assert_eq!(PageToken::parse(&t.render()).unwrap(), t);
        for bad in [
            "",
            "v1",
            "v2.1.5.00000000-0000-0000-0000-000000000000",
            "v1.2.5.x",
            "v1.1.5.x.y",
        ] {
            assert!(PageToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("50%_off\\"), r"%50\%\_off\\%");
        assert_eq!(contains_pattern("a"), "%a%");
    }

    #[test]
    fn the_request_picks_the_mode() {
        let req = |q: Option<&str>, e: Option<Vec<f32>>| SearchRequest {
            namespaces: vec!["team:a".into()],
            query: q.map(str::to_owned),
            embedding: e,
            ..SearchRequest::default()
        };
        assert_eq!(SearchMode::of(&req(None, None)), SearchMode::Recent);
        assert_eq!(SearchMode::of(&req(Some("  "), None)), SearchMode::Recent);
        assert_eq!(SearchMode::of(&req(Some("é"), None)), SearchMode::Substring);
        assert_eq!(SearchMode::of(&req(Some("go"), None)), SearchMode::FullText);
        assert_eq!(SearchMode::of(&req(Some("go"), Some(vec![1.0]))), SearchMode::Embedding);
    }
}
