//! `store`: the `platform_instructions` table, its one owner, and the resolved text.
//!
//! Owns: the checks (each refusal names its field), the two listings (everything for the
//! operator; what applies to one workspace), update (scope and target never change), delete,
//! and [`render`]: the original's layout, global rules first, then the workspace's, each
//! group by priority (then age, so equal priorities keep a stable order).
//!
//! Must not know: HTTP, who may call.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use molecule_db::schema::platform_instructions as p;
use molecule_domain::{InstructionScope, Vocabulary};
use molecule_tree::{Result, ServiceError, Tree};
use time::OffsetDateTime;
use uuid::Uuid;

/// The most characters a title may have (the original's CHECK).
pub const MAX_TITLE_CHARS: usize = 200;
/// The most characters a content may have (the original's CHECK).
pub const MAX_CONTENT_CHARS: usize = 8192;

/// An instruction as the use-cases see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub id: Uuid,
    pub scope: InstructionScope,
    pub scope_target: Option<Uuid>,
    pub title: String,
    pub content: String,
    pub priority: i32,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = p)]
struct Row {
    id: Uuid,
    scope: String,
    scope_target: Option<Uuid>,
    title: String,
    content: String,
    priority: i32,
    enabled: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<Row> for Instruction {
    type Error = ServiceError;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            scope: InstructionScope::parse(&r.scope)
                .map_err(|e| ServiceError::internal("reading an instruction row", e))?,
            id: r.id,
            scope_target: r.scope_target,
            title: r.title,
            content: r.content,
            priority: r.priority,
            enabled: r.enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// What a create asks for, as it came (checked by [`Instructions::create`]).
#[derive(Debug, Clone, Default)]
pub struct NewInstruction {
    pub scope: String,
    pub scope_target: Option<String>,
    pub title: String,
    pub content: String,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct InstructionChange {
    pub title: Option<String>,
    pub content: Option<String>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
}

/// Which instructions a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every row, disabled ones included, optionally of one scope: scope, priority (highest
    /// first), age.
    All(Option<InstructionScope>),
    /// The enabled rows that apply to a workspace: global first, then its own; by priority.
    For(Uuid),
}

/// The instructions of one server.
#[derive(Clone)]
pub struct Instructions {
    tree: Tree,
}

impl std::fmt::Debug for Instructions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instructions").finish_non_exhaustive()
    }
}

fn title_ok(title: &str) -> Result<()> {
    let n = title.chars().count();
    if title.trim().is_empty() {
        return Err(ServiceError::invalid("title", "required"));
    }
    if n > MAX_TITLE_CHARS {
        return Err(ServiceError::invalid(
            "title",
            format!("exceeds {MAX_TITLE_CHARS} chars (got {n})"),
        ));
    }
    Ok(())
}

fn content_ok(content: &str) -> Result<()> {
    let n = content.chars().count();
    if content.trim().is_empty() {
        return Err(ServiceError::invalid("content", "required"));
    }
    if n > MAX_CONTENT_CHARS {
        return Err(ServiceError::invalid(
            "content",
            format!("exceeds {MAX_CONTENT_CHARS} chars (got {n})"),
        ));
    }
    Ok(())
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("instruction not found".into())
}

impl Instructions {
    pub fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// Checks and stores a rule. A workspace rule's `scope_target` must be a live
    /// workspace's id; a global rule has none.
    pub async fn create(&self, new: NewInstruction) -> Result<Instruction> {
        let scope = InstructionScope::parse(new.scope.trim()).map_err(|_| {
            ServiceError::invalid(
                "scope",
                format!(
                    "must be global or workspace (team scope is not supported), got {:?}",
                    new.scope
                ),
            )
        })?;
        title_ok(&new.title)?;
        content_ok(&new.content)?;
        let target = new.scope_target.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let scope_target = match (scope, target) {
            (InstructionScope::Global, None) => None,
            (InstructionScope::Global, Some(t)) => {
                return Err(ServiceError::invalid(
                    "scope_target",
                    format!("a global rule applies to every workspace; leave scope_target out (got {t:?})"),
                ));
            }
            (InstructionScope::Workspace, None) => {
                return Err(ServiceError::invalid("scope_target", "required for workspace scope"));
            }
            (InstructionScope::Workspace, Some(t)) => {
                let id: Uuid = t.parse().map_err(|_| {
                    ServiceError::invalid("scope_target", format!("must be a workspace id (a UUID), got {t:?}"))
                })?;
                if !self.tree.is_live(id).await? {
                    return Err(ServiceError::invalid("scope_target", format!("no live workspace {id}")));
                }
                Some(id)
            }
        };
        let mut conn = self.tree.pool().get().await?;
        let row: Row = diesel::insert_into(p::table)
            .values((
                p::scope.eq(scope.as_str()),
                p::scope_target.eq(scope_target),
                p::title.eq(&new.title),
                p::content.eq(&new.content),
                p::priority.eq(new.priority.unwrap_or(0)),
                p::enabled.eq(new.enabled.unwrap_or(true)),
            ))
            .returning(Row::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(|e| match e {
                // The workspace went between the check and the insert.
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ForeignKeyViolation, _) => {
                    ServiceError::invalid("scope_target", "no live workspace with that id")
                }
                other => other.into(),
            })?;
        Instruction::try_from(row)
    }

    pub async fn list(&self, listing: Listing) -> Result<Vec<Instruction>> {
        let mut conn = self.tree.pool().get().await?;
        let rows: Vec<Row> = match listing {
            Listing::All(scope) => {
                let mut q = p::table.select(Row::as_select()).into_boxed();
                if let Some(s) = scope {
                    q = q.filter(p::scope.eq(s.as_str()));
                }
                q.order((p::scope.asc(), p::priority.desc(), p::created_at.asc(), p::id.asc()))
                    .load(&mut conn)
                    .await?
            }
            Listing::For(ws) => {
                // `scope = 'global'` sorts before `'workspace'`.
                p::table
                    .filter(p::enabled)
                    .filter(
                        p::scope
                            .eq(InstructionScope::Global.as_str())
                            .or(p::scope_target.eq(ws)),
                    )
                    .order((p::scope.asc(), p::priority.desc(), p::created_at.asc(), p::id.asc()))
                    .select(Row::as_select())
                    .load(&mut conn)
                    .await?
            }
        };
        rows.into_iter().map(Instruction::try_from).collect()
    }

    /// Changes a rule's title, content, priority or enabled flag; 404 when there is none.
    pub async fn update(&self, id: Uuid, change: InstructionChange) -> Result<Instruction> {
        if let Some(t) = &change.title {
            title_ok(t)?;
        }
        if let Some(c) = &change.content {
            content_ok(c)?;
        }
        let mut conn = self.tree.pool().get().await?;
        let row: Option<Row> = diesel::update(p::table.find(id))
            .set((
                change.title.map(|t| p::title.eq(t)),
                change.content.map(|c| p::content.eq(c)),
                change.priority.map(|n| p::priority.eq(n)),
                change.enabled.map(|e| p::enabled.eq(e)),
                p::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Row::as_returning())
            .get_result(&mut conn)
            .await
            .optional()?;
        row.map(Instruction::try_from).transpose()?.ok_or_else(not_found)
    }

    /// 404 when there is no such rule.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        let mut conn = self.tree.pool().get().await?;
        let n = diesel::delete(p::table.find(id)).execute(&mut conn).await?;
        if n == 0 {
            return Err(not_found());
        }
        Ok(())
    }

    /// The text for workspace `ws`'s system prompt ([`render`] of [`Listing::For`]).
    pub async fn resolve(&self, ws: Uuid) -> Result<String> {
        Ok(render(&self.list(Listing::For(ws)).await?))
    }
}

/// The original's layout: a `## Platform-Wide Rules` or `## Role-Specific Rules` heading at
/// each change of scope, then `### <title>` and the content per rule; `""` for none.
pub fn render(rules: &[Instruction]) -> String {
    let mut out = String::new();
    let mut scope = None;
    for r in rules {
        if scope != Some(r.scope) {
            out.push_str(match r.scope {
                InstructionScope::Global => "\n## Platform-Wide Rules\n\n",
                InstructionScope::Workspace => "\n## Role-Specific Rules\n\n",
            });
            scope = Some(r.scope);
        }
        out.push_str("### ");
        out.push_str(&r.title);
        out.push('\n');
        out.push_str(&r.content);
        out.push_str("\n\n");
    }
    out
}
