//! Platform instruction routes: the operator's CRUD (`/instructions*`, admin) and the text an
//! agent reads at boot (`GET /workspaces/:id/instructions/resolve`, the workspace's token).
//!
//! Must not know: the table, the layout of the resolved text.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, put, web};
use molecule_api::instructions::{
    CreateInstruction, Instruction, InstructionCreated, InstructionStatus, InstructionsQuery, ResolvedInstructions,
    UpdateInstruction,
};
use molecule_domain::{InstructionScope, Vocabulary};
use molecule_instructions::{InstructionChange, Listing, NewInstruction};
use uuid::Uuid;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// An instruction id from the path: anything but a UUID names no rule (404; the original
/// answered 500).
fn instruction_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "instruction not found"))
}

fn wire(i: molecule_instructions::Instruction) -> Instruction {
    Instruction {
        id: i.id,
        scope: i.scope,
        scope_target: i.scope_target,
        title: i.title,
        content: i.content,
        priority: i.priority,
        enabled: i.enabled,
        created_at: i.created_at,
        updated_at: i.updated_at,
    }
}

/// Every rule (disabled ones included; `?scope=` narrows), or with `?workspace_id=` the
/// enabled rules that apply to that workspace, global first.
#[utoipa::path(
    tag = "instructions",
    params(InstructionsQuery),
    responses((status = 200, body = [Instruction]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/instructions")]
pub async fn list_instructions(
    _: AdminAuth,
    state: web::Data<AppState>,
    query: web::Query<InstructionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let scope = q
        .scope
        .as_deref()
        .map(|s| {
            InstructionScope::parse(s).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("scope: must be global or workspace, got {s:?}"),
                )
            })
        })
        .transpose()?;
    let listing = match (q.workspace_id.as_deref(), scope) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "scope: not with workspace_id (which lists what applies to one workspace)",
            ));
        }
        (Some(ws), None) => Listing::For(ws.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("workspace_id: must be a UUID, got {ws:?}"),
            )
        })?),
        (None, scope) => Listing::All(scope),
    };
    let list = state.services.instructions().list(listing).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(wire).collect::<Vec<_>>()))
}

/// Add a rule: `global` (every workspace) or `workspace` (`scope_target`, a live workspace).
#[utoipa::path(
    tag = "instructions",
    request_body = CreateInstruction,
    responses((status = 201, body = InstructionCreated), (status = 400, description = "a field is missing or wrong (`scope`, `scope_target`, `title`, `content`), named in the answer", body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/instructions")]
pub async fn create_instruction(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateInstruction>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let made = state
        .services
        .instructions()
        .create(NewInstruction {
            scope: b.scope,
            scope_target: b.scope_target,
            title: b.title,
            content: b.content,
            priority: b.priority,
            enabled: b.enabled,
        })
        .await?;
    Ok(HttpResponse::Created().json(InstructionCreated { id: made.id }))
}

/// Change a rule's title, content, priority or enabled flag (its scope and target stay).
#[utoipa::path(
    tag = "instructions",
    params(("instruction_id" = Uuid, Path, description = "instruction id")),
    request_body = UpdateInstruction,
    responses((status = 200, body = InstructionStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/instructions/{instruction_id}")]
pub async fn update_instruction(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateInstruction>,
) -> Result<HttpResponse, ApiError> {
    let id = instruction_id(&path)?;
    let b = body.into_inner();
    state
        .services
        .instructions()
        .update(
            id,
            InstructionChange {
                title: b.title,
                content: b.content,
                priority: b.priority,
                enabled: b.enabled,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(InstructionStatus { status: "updated" }))
}

#[utoipa::path(
    tag = "instructions",
    params(("instruction_id" = Uuid, Path, description = "instruction id")),
    responses((status = 200, body = InstructionStatus), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/instructions/{instruction_id}")]
pub async fn delete_instruction(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = instruction_id(&path)?;
    state.services.instructions().delete(id).await?;
    Ok(HttpResponse::Ok().json(InstructionStatus { status: "deleted" }))
}

/// The text an agent puts first in its system prompt: the enabled global rules, then its
/// own, each group by priority; empty when none apply.
#[utoipa::path(
    tag = "instructions",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = ResolvedInstructions), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/instructions/resolve")]
pub async fn resolve_instructions(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let instructions = state.services.instructions().resolve(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(ResolvedInstructions {
        workspace_id: auth.workspace_id,
        instructions,
    }))
}
