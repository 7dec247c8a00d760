//! Workspace template routes: the listing, the admin view of templates that failed to load,
//! and import.
//!
//! Must not know: where templates live on disk or how they are parsed (`molecule-templates`
//! behind the use-cases).

use actix_web::{HttpResponse, get, post, web};
use molecule_api::templates::{ImportTemplate, TemplateLoadError, TemplateSummary};

use crate::auth::AdminAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// The workspace templates under `CONFIGS_DIR` that load (admin). One that does not is
/// logged with its file and reason and listed by `GET /admin/templates/errors`.
#[utoipa::path(
    tag = "templates",
    responses((status = 200, body = Vec<TemplateSummary>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/templates")]
pub async fn list_templates(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.list_templates().await?))
}

/// The templates under `CONFIGS_DIR` that do not load, each with the file to fix and why
/// (admin).
#[utoipa::path(
    tag = "admin",
    responses((status = 200, body = Vec<TemplateLoadError>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/templates/errors")]
pub async fn template_errors(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.template_errors().await?))
}

/// Import a template's files into `CONFIGS_DIR/<name>/` (admin). `config.yaml` must be among
/// them and load; an existing template is replaced only with `overwrite` (else 409), and a
/// failed import leaves the previous one whole. 409 when `CONFIGS_DIR` is unset.
#[utoipa::path(
    tag = "templates",
    request_body = ImportTemplate,
    responses(
        (status = 201, body = TemplateSummary),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/templates/import")]
pub async fn import_template(
    _: AdminAuth,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: ImportTemplate = super::limited_json(
        payload,
        (molecule_templates::MAX_TEMPLATE_BYTES as usize) * 2,
        "a template import",
        "{name, files: {path: content}, overwrite?}",
    )
    .await?;
    Ok(HttpResponse::Created().json(state.services.import_template(body).await?))
}
