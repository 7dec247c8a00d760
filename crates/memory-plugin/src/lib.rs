//! `molecule-memory-plugin`: the default Memory Plugin v1 implementation over Postgres.
//!
//! Owns: the plugin's HTTP routes (wire-compatible with the v1 contract), and (with the
//! memory issue) its `memory_plugin` schema and store.
//!
//! Must not know: workspace-server internals, the workspace tree, auth. It is a standalone
//! service that only speaks the plugin contract. It is the second crate allowed to use
//! actix-web (see ARCHITECTURE.md, "HTTP crates").

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, get, web};
use molecule_db::Pool;
use serde_json::json;

/// Contract version this plugin speaks.
pub const CONTRACT_VERSION: &str = "1.0.0";

#[derive(Clone)]
pub struct PluginState {
    pub pool: Pool,
}

/// `GET /v1/health`: `ok` with the capabilities, or `degraded` with 503 when the database is
/// unreachable.
#[get("/v1/health")]
async fn health(state: web::Data<PluginState>) -> HttpResponse {
    match molecule_db::ping(&state.pool).await {
        Ok(()) => HttpResponse::Ok().json(json!({
            "status": "ok",
            "version": CONTRACT_VERSION,
            "capabilities": Vec::<&str>::new(),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "health: database unreachable");
            HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
                "code": "degraded",
                "message": format!("database unreachable: {e}"),
            }))
        }
    }
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "code": "not_found",
        "message": format!("no route for {} {}", req.method(), req.path()),
    }))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(health);
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
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(routes)
                .default_service(web::to(not_found))
        })
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

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};
    use molecule_testkit::TestDb;

    use super::*;

    #[actix_web::test]
    async fn health_reports_ok_with_contract_version() {
        let db = TestDb::empty().await;
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(PluginState {
                    pool: db.pool().clone(),
                }))
                .configure(routes)
                .default_service(web::to(not_found)),
        )
        .await;
        let resp = test::call_service(&app, test::TestRequest::get().uri("/v1/health").to_request()).await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["status"], "ok");
        assert_eq!(body["version"], CONTRACT_VERSION);
        let resp = test::call_service(&app, test::TestRequest::get().uri("/v1/nope").to_request()).await;
        assert_eq!(resp.status(), 404);
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["code"], "not_found");
    }
}
