//! The plugin's HTTP handlers and their routing table (`/v1/...`), JSON 404/405 included.
//!
//! Must not know: SQL (they call the `Store`), how the server is run.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use molecule_memory_contract::{
    ErrorCode, ForgetRequest, HealthResponse, HealthStatus, Invalid, MemoryWrite, NamespaceName, NamespacePatch,
    NamespaceUpsert, SearchRequest, SearchResponse, validate_namespace_name,
};
use serde_json::json;
use uuid::Uuid;

use crate::errors::PluginError;
use crate::{PLUGIN_VERSION, PluginState};

type Answer = Result<HttpResponse, PluginError>;

fn namespace(raw: &str) -> Result<NamespaceName, PluginError> {
    Ok(validate_namespace_name("name", raw)?)
}

/// `GET /v1/health`: `ok` with what this database really offers, or 503 `unavailable` (also
/// carrying `status: degraded`) when the database or the schema is not there.
async fn health(state: web::Data<PluginState>) -> HttpResponse {
    let ping = tokio::time::timeout(Duration::from_secs(2), molecule_db::ping(&state.pool)).await;
    let problem = match ping {
        Err(_) => Some("database did not answer within 2 s".to_owned()),
        Ok(Err(e)) => Some(format!("database unreachable: {e}")),
        Ok(Ok(())) => None,
    };
    let caps = match problem {
        Some(p) => Err(p),
        None => state.store.capabilities().await.map_err(|e| e.to_string()),
    };
    match caps {
        Ok(capabilities) => HttpResponse::Ok().json(HealthResponse {
            status: HealthStatus::Ok,
            version: PLUGIN_VERSION.into(),
            capabilities,
        }),
        Err(message) => {
            tracing::warn!(error = %message, "health: degraded");
            HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
                "code": ErrorCode::Unavailable,
                "message": message,
                "status": HealthStatus::Degraded,
                "version": PLUGIN_VERSION,
                "capabilities": [],
            }))
        }
    }
}

async fn upsert_namespace(
    state: web::Data<PluginState>,
    name: web::Path<String>,
    body: web::Json<NamespaceUpsert>,
) -> Answer {
    let name = namespace(&name)?;
    Ok(HttpResponse::Ok().json(state.store.upsert_namespace(&name, &body).await?))
}

async fn patch_namespace(
    state: web::Data<PluginState>,
    name: web::Path<String>,
    body: web::Json<NamespacePatch>,
) -> Answer {
    let name = namespace(&name)?;
    Ok(HttpResponse::Ok().json(state.store.patch_namespace(&name, &body).await?))
}

async fn delete_namespace(state: web::Data<PluginState>, name: web::Path<String>) -> Answer {
    let name = namespace(&name)?;
    state.store.delete_namespace(&name).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn commit_memory(state: web::Data<PluginState>, name: web::Path<String>, body: web::Json<MemoryWrite>) -> Answer {
    let name = namespace(&name)?;
    Ok(HttpResponse::Created().json(state.store.commit(&name, &body).await?))
}

async fn search(state: web::Data<PluginState>, body: web::Json<SearchRequest>) -> Answer {
    let (mode, memories, next_page_token) = state.store.search(&body).await?;
    tracing::debug!(?mode, hits = memories.len(), "search");
    Ok(HttpResponse::Ok().json(SearchResponse {
        memories,
        next_page_token,
    }))
}

async fn forget(state: web::Data<PluginState>, id: web::Path<String>, body: web::Json<ForgetRequest>) -> Answer {
    let id = Uuid::parse_str(&id).map_err(|e| Invalid::new("id", format!("must be a UUID: {e}")))?;
    body.validate()?;
    let ns = namespace(&body.requested_by_namespace)?;
    state.store.forget(id, &ns).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(crate) async fn no_route(req: HttpRequest) -> HttpResponse {
    PluginError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}

fn wrong_method(allowed: &'static str) -> impl Fn(HttpRequest) -> std::future::Ready<HttpResponse> + Clone {
    move |req: HttpRequest| {
        let e = PluginError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadRequest,
            format!("{} is not allowed on {}; use {allowed}", req.method(), req.path()),
        );
        let mut resp = e.error_response();
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(allowed) {
            resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
        }
        std::future::ready(resp)
    }
}

/// Registers every route of the contract, with JSON errors for bad bodies, unknown routes and
/// wrong methods.
pub fn routes(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .content_type_required(false)
        .error_handler(move |err, _req| {
            let (status, message) = match &err {
                actix_web::error::JsonPayloadError::Overflow { .. }
                | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body exceeds {max_body_bytes} bytes (MEMORY_PLUGIN_MAX_BODY_BYTES)"),
                ),
                other => (StatusCode::BAD_REQUEST, format!("invalid JSON body: {other}")),
            };
            PluginError::new(status, ErrorCode::BadRequest, message).into()
        });
    cfg.app_data(json)
        .service(
            web::resource("/v1/health")
                .route(web::get().to(health))
                .default_service(web::to(wrong_method("GET"))),
        )
        .service(
            web::resource("/v1/namespaces/{name}")
                .route(web::put().to(upsert_namespace))
                .route(web::patch().to(patch_namespace))
                .route(web::delete().to(delete_namespace))
                .default_service(web::to(wrong_method("PUT, PATCH, DELETE"))),
        )
        .service(
            web::resource("/v1/namespaces/{name}/memories")
                .route(web::post().to(commit_memory))
                .default_service(web::to(wrong_method("POST"))),
        )
        .service(
            web::resource("/v1/search")
                .route(web::post().to(search))
                .default_service(web::to(wrong_method("POST"))),
        )
        .service(
            web::resource("/v1/memories/{id}")
                .route(web::delete().to(forget))
                .default_service(web::to(wrong_method("DELETE"))),
        );
}
