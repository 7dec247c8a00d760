//! `molecule-serve`: what both binaries share about being a process.
//!
//! Owns: building the tokio runtime and turning a failed run into one line on stderr and a
//! failing exit code (`run_main`), waiting for SIGTERM/SIGINT (`shutdown_signal`), binding a
//! listener with an error that names the knob to change (`bind`), serving an actix app with a
//! graceful stop (`Server`), and the span each request runs in (`RequestSpan`).
//!
//! Must not know: routes, configuration or business rules. The two HTTP crates bring their
//! apps; the binaries bring their wiring.

use std::fmt::Display;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use actix_http::Request;
use actix_service::IntoServiceFactory;
use actix_web::HttpServer;
use actix_web::body::MessageBody;
/// What stops a running [`Server`] (tests stop a server and start it again).
pub use actix_web::dev::ServerHandle;
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory};

/// Runs `main` on a multi-threaded tokio runtime. On failure prints `<binary>: <error and its
/// causes on one line>` to stderr and exits non-zero, so an operator reads one line that names
/// what to change.
pub fn run_main<F, E>(binary: &str, main: impl FnOnce() -> F) -> ExitCode
where
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(binary, &format!("cannot start the tokio runtime: {e}")),
    };
    match runtime.block_on(main()) {
        Ok(()) => ExitCode::SUCCESS,
        // `{:#}` prints an error with its causes (anyhow's alternate form).
        Err(e) => fail(binary, &format!("{e:#}")),
    }
}

#[allow(clippy::print_stderr)] // the one line an operator reads when a binary cannot start
fn fail(binary: &str, message: &str) -> ExitCode {
    eprintln!("{binary}: {}", message.replace('\n', " "));
    ExitCode::FAILURE
}

/// Resolves on SIGTERM or SIGINT, naming which.
pub async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Binds the listener; the error names `knob`, the setting to change.
pub fn bind(addr: SocketAddr, knob: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({knob}): {e}")))
}

/// A running HTTP server. Signals are handled by the binary, which calls `handle().stop(true)`.
pub struct Server {
    handle: ServerHandle,
    server: actix_web::dev::Server,
    pub local_addr: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("local_addr", &self.local_addr).finish()
    }
}

impl Server {
    /// Serves the apps `factory` builds (one per worker) on `listener`; requests still running
    /// at stop get `shutdown_timeout`.
    pub fn start<F, I, S, B>(listener: TcpListener, factory: F, shutdown_timeout: Duration) -> std::io::Result<Self>
    where
        F: Fn() -> I + Send + Clone + 'static,
        I: IntoServiceFactory<S, Request>,
        S: ServiceFactory<Request, Config = AppConfig> + 'static,
        S::Error: Into<actix_web::Error> + 'static,
        S::InitError: std::fmt::Debug,
        S::Response: Into<Response<B>> + 'static,
        <S::Service as Service<Request>>::Future: 'static,
        S::Service: 'static,
        B: MessageBody + 'static,
    {
        let local_addr = listener.local_addr()?;
        let server = HttpServer::new(factory)
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

    /// Serves until stopped.
    pub async fn wait(self) -> std::io::Result<()> {
        self.server.await
    }

    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }
}

/// The span each request runs in, for both servers: what an operator filters logs and traces
/// by (method, route, target, status, request id) and the OpenTelemetry names, without the
/// connection details the library's default adds (host, scheme, client address, user agent,
/// protocol), which cost a formatting pass on every request and are in the access log's
/// reach anyway. Wrap an app in `tracing_actix_web::TracingLogger::<RequestSpan>::new()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage as _;
        use tracing::field::Empty;
        let method = request.method().as_str();
        let route = request.match_pattern();
        let route = route.as_deref().unwrap_or("default");
        // TracingLogger sets the id before it calls this.
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| **id)
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = method,
            http.route = route,
            http.target = request.uri().path_and_query().map_or("", |p| p.as_str()),
            http.status_code = Empty,
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = %request_id,
            exception.message = Empty,
            exception.details = Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
