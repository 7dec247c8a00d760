//! `molecule-memory-plugin`: the default Memory Plugin v1 implementation over Postgres.
//!
//! Owns: the plugin's HTTP routes (wire-compatible with the v1 contract of
//! `molecule-memory-contract`, errors always as the contract's `Error` JSON), its
//! `memory_plugin` schema (embedded migrations) and store, the search modes, and the TTL
//! janitor's work function.
//!
//! Must not know: workspace-server internals, the workspace tree, auth, redaction. It is a
//! standalone service that only speaks the plugin contract. It is the second crate allowed to
//! use actix-web (see ARCHITECTURE.md, "HTTP crates").

pub mod store;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, web};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use molecule_db::{Migrations, Pool};
use molecule_memory_contract::{
    CONTRACT_VERSION, ErrorBody, ErrorCode, ForgetRequest, HealthResponse, HealthStatus, Invalid, MemoryWrite,
    NamespaceName, NamespacePatch, NamespaceUpsert, SearchRequest, SearchResponse, validate_namespace_name,
};
use serde_json::json;
use uuid::Uuid;

pub use store::{SearchMode, Store, StoreError};

/// Contract version this plugin speaks.
pub const PLUGIN_VERSION: &str = CONTRACT_VERSION;

const EMBEDDED: EmbeddedMigrations = embed_migrations!("migrations");

/// The plugin's schema as a migration set of its own, kept in schema `memory_plugin`.
pub fn migrations() -> Migrations {
    Migrations::new(|| EMBEDDED, env!("MEMORY_PLUGIN_MIGRATIONS_FINGERPRINT")).in_schema("memory_plugin")
}

#[derive(Clone)]
pub struct PluginState {
    pub pool: Pool,
    pub store: Store,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
}

impl PluginState {
    pub fn new(pool: Pool) -> Self {
        Self {
            store: Store::new(pool.clone()),
            pool,
            max_body_bytes: 1 << 20,
        }
    }
}

/// Any non-2xx answer: a status and the contract's `Error` body.
#[derive(Debug)]
pub struct PluginError {
    status: StatusCode,
    body: ErrorBody,
}

impl PluginError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::new(code, message),
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.body)
    }
}

impl ResponseError for PluginError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

impl From<StoreError> for PluginError {
    fn from(e: StoreError) -> Self {
        let (status, body) = e.to_wire();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %body.message, "memory plugin request failed");
        }
        Self { status, body }
    }
}

impl From<Invalid> for PluginError {
    fn from(e: Invalid) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: e.into(),
        }
    }
}

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
    let (mode, memories) = state.store.search(&body).await?;
    tracing::debug!(?mode, hits = memories.len(), "search");
    Ok(HttpResponse::Ok().json(SearchResponse { memories }))
}

async fn forget(state: web::Data<PluginState>, id: web::Path<String>, body: web::Json<ForgetRequest>) -> Answer {
    let id = Uuid::parse_str(&id).map_err(|e| Invalid::new("id", format!("must be a UUID: {e}")))?;
    body.validate()?;
    let ns = namespace(&body.requested_by_namespace)?;
    state.store.forget(id, &ns).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn no_route(req: HttpRequest) -> HttpResponse {
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

/// The whole app (routes plus the JSON 404), for the server and for in-process tests.
pub fn app(
    state: PluginState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let max = state.max_body_bytes;
    App::new()
        .app_data(web::Data::new(state))
        .configure(|c| routes(c, max))
        .default_service(web::to(no_route))
}

/// One janitor pass: deletes expired memories and namespaces in batches of 1000 (at most 50
/// batches, so one pass stays short). Returns counts for the periodic task's report.
pub async fn janitor_pass(store: &Store) -> Result<serde_json::Value, StoreError> {
    const BATCH: i64 = 1000;
    let (mut memories, mut namespaces) = (0usize, 0usize);
    for _ in 0..50 {
        let (m, n) = store.sweep_expired(BATCH).await?;
        memories += m;
        namespaces += n;
        if (m as i64) < BATCH && (n as i64) < BATCH {
            break;
        }
    }
    Ok(json!({ "memories_expired": memories, "namespaces_expired": namespaces }))
}

/// Binds the listener, naming the knob to change on failure.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (MEMORY_PLUGIN_LISTEN_ADDR): {e}"),
        )
    })
}

/// A running plugin server; the binary handles signals and calls `handle().stop(true)`.
pub struct Server {
    handle: ServerHandle,
    server: actix_web::dev::Server,
    pub local_addr: SocketAddr,
}

impl Server {
    pub fn start(listener: TcpListener, state: PluginState, shutdown_timeout: Duration) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let server = HttpServer::new(move || app(state.clone()).wrap(tracing_actix_web::TracingLogger::default()))
            .disable_signals()
            .shutdown_timeout(shutdown_timeout.as_secs())
            .listen(listener)?
            .run();
        Ok(Self {
            handle: server.handle(),
            server,
            local_addr,
        })
    }

    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    pub async fn wait(self) -> std::io::Result<()> {
        self.server.await
    }
}
