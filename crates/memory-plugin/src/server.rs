//! The plugin's actix app, binding its listener and serving it.
//!
//! Must not know: the handlers' rules (see `routes`).

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::{App, web};

use crate::routes::{no_route, routes};
use crate::{PluginState, Server};

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

/// Binds the listener, naming the knob to change on failure.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    molecule_serve::bind(addr, "MEMORY_PLUGIN_LISTEN_ADDR")
}

/// Starts serving the plugin on `listener` (see [`molecule_serve::Server`]).
pub fn serve(listener: TcpListener, state: PluginState, shutdown_timeout: Duration) -> std::io::Result<Server> {
    Server::start(
        listener,
        move || app(state.clone()).wrap(tracing_actix_web::TracingLogger::<molecule_serve::RequestSpan>::new()),
        shutdown_timeout,
    )
}
