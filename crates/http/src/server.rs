use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use molecule_db::{Migrations, Pool};

use crate::errors;

/// Shared state of every request handler.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub migrations: Migrations,
}

impl AppState {
    pub fn new(pool: Pool, migrations: Migrations) -> Self {
        Self { pool, migrations }
    }
}

/// Binds the listener, with an error that names the knob to change.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (PORT / MOLECULE_BIND_ADDR): {e}"),
        )
    })
}

/// A running HTTP server. Signals are handled by the binary, which calls [`Server::stop`].
pub struct Server {
    handle: ServerHandle,
    server: actix_web::dev::Server,
    pub local_addr: SocketAddr,
}

impl Server {
    /// Starts serving on `listener`; requests still running at [`Server::stop`] get
    /// `shutdown_timeout` to finish.
    pub fn start(listener: TcpListener, state: AppState, shutdown_timeout: Duration) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(errors::json_config())
                .app_data(errors::query_config())
                .app_data(errors::path_config())
                .wrap(actix_web::middleware::Logger::new("%r %s %Dms").log_target("molecule_http::access"))
                .configure(crate::routes)
                .default_service(web::to(errors::not_found))
        })
        .disable_signals()
        .shutdown_timeout(shutdown_timeout.as_secs())
        .listen(listener)?
        .run();
        let handle = server.handle();
        Ok(Self {
            handle,
            server,
            local_addr,
        })
    }

    /// Serves until stopped.
    pub async fn wait(self) -> std::io::Result<()> {
        self.server.await
    }

    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }
}
