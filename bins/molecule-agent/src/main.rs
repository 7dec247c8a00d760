//! molecule-agent: the reference agent the platform provisions and tests against.
//!
//! On start it registers with the platform (retrying until it is reachable), then heartbeats
//! every `HEARTBEAT_INTERVAL_SECONDS`. In push mode it serves A2A JSON-RPC `message/send` on
//! `AGENT_PORT` and answers with an echo (or `AGENT_REPLY`); while it "works"
//! (`AGENT_WORK_SECONDS`) it heartbeats the delegation it was handed. In poll mode it reads
//! its inbox instead. It can be told to be busy (`AGENT_BUSY`, or `POST /control/busy`, which
//! needs the inbound secret as A2A does): it then answers 503 and reports a full slot, so the
//! platform queues its messages. A message that
//! says `peers` is answered with the names of its peers (`GET /registry/:id/peers`); one that
//! says `secret-sha256:KEY` with the SHA-256 of the delivered secret `KEY` (or `unset`), so a
//! test can see delivery without a value crossing the wire. After registering it reads its
//! platform instructions (`GET /workspaces/:id/instructions/resolve`) into its system prompt,
//! which a message saying `system-prompt` is answered with. A message saying
//! `approval:<action>` makes it ask for approval and wait on `/ws` for the decision. Its token and secrets may arrive in
//! the file `MOLECULE_SECRETS_FILE` names, or from redeeming `MOLECULE_BOOTSTRAP_CODE` at
//! `POST /registry/bootstrap` (EC2), instead of the environment. Once it knows the
//! platform's inbound secret (delivered, or from the register and heartbeat answers) it answers
//! 401 to any call to its A2A endpoint that does not carry it. SIGTERM
//! or SIGINT ends it cleanly (exit 0). It has no TLS stack, so it
//! links statically for a registry-free `docker import` image.
//!
//! Must not know: the platform's internals: it speaks only the public HTTP API, as any
//! agent would.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use molecule_config::{AgentConfig, Delivered};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Agent {
    cfg: AgentConfig,
    /// The secret environment the backend delivered (`MOLECULE_SECRETS_FILE`).
    delivered: Delivered,
    /// What the platform presents on its calls (`Authorization: Bearer …`): delivered, or
    /// learned from the register and heartbeat answers. Until it is known, calls are taken.
    inbound: std::sync::RwLock<Option<String>>,
    workspace_id: String,
    token: String,
    http: HttpClient,
    /// Told to be busy: answers 503 and reports a full slot.
    busy: AtomicBool,
    /// Messages being answered now (reported as `active_tasks`).
    in_flight: AtomicI32,
    /// Its system prompt: the platform's instructions (read at boot) first, then its role.
    system_prompt: std::sync::RwLock<String>,
}

/// The agent's own part of its system prompt.
const ROLE: &str = "# Role\nYou are molecule-agent, the platform's reference agent: you echo what you are sent.\n";

impl Agent {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<(StatusCode, Value)> {
        let uri = format!("{}{}", self.cfg.platform_url.trim_end_matches('/'), path);
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json");
        // A platform in org mode hides every route but register and heartbeat from requests
        // without its tenant header: the inbox poll and delegation heartbeats need it too.
        if let Some(org) = &self.cfg.molecule_org_id {
            req = req.header("X-Molecule-Org-Id", org);
        }
        let req = req.body(Full::new(bytes))?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.http.request(req))
            .await
            .context("timed out")??;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    async fn register(&self) -> anyhow::Result<()> {
        let card = json!({
            "name": format!("molecule-agent {}", self.workspace_id),
            "url": self.cfg.advertised_url(),
            "model": self.cfg.model,
            "skills": [{ "id": "echo", "name": "echo" }],
        });
        let body = json!({
            "id": self.workspace_id,
            "url": if self.cfg.delivery_mode == "push" { Some(self.cfg.advertised_url()) } else { None },
            "agent_card": card,
            "delivery_mode": self.cfg.delivery_mode,
        });
        let mut delay = Duration::from_millis(200);
        loop {
            match self.call(Method::POST, "/registry/register", Some(body.clone())).await {
                Ok((s, v)) if s.is_success() => {
                    self.learn_inbound(&v);
                    tracing::info!(workspace_id = %self.workspace_id, "registered");
                    return Ok(());
                }
                Ok((s, v)) if s == StatusCode::CONFLICT || s == StatusCode::UNAUTHORIZED => {
                    anyhow::bail!("the platform refused registration ({s}): {v}");
                }
                Ok((s, v)) => tracing::warn!(status = %s, answer = %v, "register failed; retrying"),
                Err(e) => tracing::warn!(error = %e, "platform unreachable; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Reads the platform's instructions for this workspace (a 3 s wait; without them the
    /// prompt is the role alone, as the original's runtime failed open) and builds the system
    /// prompt: `# Platform Instructions` first, then the role.
    async fn load_instructions(&self) {
        let path = format!("/workspaces/{}/instructions/resolve", self.workspace_id);
        let found = tokio::time::timeout(Duration::from_secs(3), self.call(Method::GET, &path, None)).await;
        let instructions = match found {
            Ok(Ok((s, v))) if s.is_success() => v["instructions"].as_str().unwrap_or_default().to_owned(),
            Ok(Ok((s, v))) => {
                tracing::warn!(status = %s, answer = %v, "instructions unavailable; starting without them");
                String::new()
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "instructions unavailable; starting without them");
                String::new()
            }
            Err(_) => {
                tracing::warn!("instructions did not come within 3 s; starting without them");
                String::new()
            }
        };
        let prompt = if instructions.trim().is_empty() {
            ROLE.to_owned()
        } else {
            format!("# Platform Instructions\n{instructions}\n{ROLE}")
        };
        tracing::info!(chars = prompt.chars().count(), "system prompt ready");
        *self
            .system_prompt
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = prompt;
    }

    /// Asks for approval of `action` and waits on `/ws` for its end (`APPROVAL_DECIDED`), as
    /// the original runtime meant to; answers `approval <id>: <status> by <decided_by>`.
    /// `AGENT_APPROVAL_TIMEOUT_SECONDS` bounds the wait (the request expires then).
    async fn ask_approval(&self, action: &str) -> String {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let ws_url = format!(
            "{}/ws",
            self.cfg.platform_url.trim_end_matches('/').replacen("http", "ws", 1)
        );
        // Listening before asking, so the decision cannot come first.
        let request = ws_url.as_str().into_client_request().map(|mut r| {
            let headers = r.headers_mut();
            if let (Ok(auth), Ok(me)) = (format!("Bearer {}", self.token).parse(), self.workspace_id.parse()) {
                headers.insert("Authorization", auth);
                headers.insert("X-Workspace-ID", me);
            }
            r
        });
        let mut events = match request {
            Ok(r) => match tokio_tungstenite::connect_async(r).await {
                Ok((ws, _)) => ws,
                Err(e) => return format!("approval unavailable: /ws: {e}"),
            },
            Err(e) => return format!("approval unavailable: {e}"),
        };
        let wait = self.cfg.agent_approval_timeout_seconds;
        let asked = self
            .call(
                Method::POST,
                &format!("/workspaces/{}/approvals", self.workspace_id),
                Some(json!({ "action": action, "reason": "asked for by a message", "timeout_seconds": wait })),
            )
            .await;
        let id = match asked {
            Ok((s, v)) if s == StatusCode::CREATED => v["approval_id"].as_str().unwrap_or_default().to_owned(),
            Ok((s, v)) => return format!("approval refused ({s}): {v}"),
            Err(e) => return format!("approval unavailable: {e}"),
        };
        tracing::info!(approval_id = %id, action, "waiting for a decision");
        let heard = tokio::time::timeout(Duration::from_secs(wait + 30), async {
            while let Some(Ok(msg)) = events.next().await {
                let Ok(text) = msg.to_text() else { continue };
                let ev: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                if ev["event"] == "APPROVAL_DECIDED" && ev["payload"]["approval_id"] == id.as_str() {
                    return Some(ev["payload"].clone());
                }
            }
            None
        })
        .await;
        match heard {
            Ok(Some(p)) => format!(
                "approval {id}: {} by {}",
                p["status"].as_str().unwrap_or("?"),
                p["decided_by"].as_str().unwrap_or("?")
            ),
            Ok(None) => format!("approval {id}: /ws closed before a decision"),
            Err(_) => format!("approval {id}: no decision heard"),
        }
    }

    fn learn_inbound(&self, answer: &Value) {
        if let Some(secret) = answer["platform_inbound_secret"].as_str().filter(|s| !s.is_empty()) {
            let mut held = self.inbound.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if held.as_deref() != Some(secret) {
                *held = Some(secret.to_owned());
            }
        }
    }

    /// Whether a call carries the platform's inbound secret (or none is known yet).
    fn is_from_platform(&self, authorization: Option<&str>) -> bool {
        let held = self.inbound.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        match held.as_deref() {
            None => true,
            Some(secret) => authorization
                .and_then(|a| a.strip_prefix("Bearer "))
                .is_some_and(|given| given.trim() == secret),
        }
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let started = tokio::time::Instant::now();
        let mut every = tokio::time::interval(Duration::from_secs(self.cfg.heartbeat_interval_seconds));
        loop {
            every.tick().await;
            // Busy: at least one task, the platform's default slot count, so no drain starts.
            let active = self
                .in_flight
                .load(Ordering::Relaxed)
                .max(i32::from(self.busy.load(Ordering::Relaxed)));
            let body = json!({
                "workspace_id": self.workspace_id,
                "error_rate": 0.0,
                "sample_error": "",
                "active_tasks": active,
                "uptime_seconds": started.elapsed().as_secs(),
                "current_task": "",
                "runtime_state": "",
            });
            match self.call(Method::POST, "/registry/heartbeat", Some(body)).await {
                Ok((s, v)) if s.is_success() => self.learn_inbound(&v),
                Ok((s, v)) => tracing::warn!(status = %s, answer = %v, "heartbeat refused"),
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
        }
    }

    async fn poll_loop(self: Arc<Self>) {
        let mut every = tokio::time::interval(Duration::from_secs(self.cfg.heartbeat_interval_seconds));
        let path = format!("/workspaces/{}/activity?type=a2a_receive&limit=50", self.workspace_id);
        loop {
            every.tick().await;
            match self.call(Method::GET, &path, None).await {
                Ok((s, v)) if s.is_success() => {
                    tracing::debug!(messages = v.as_array().map_or(0, Vec::len), "inbox read")
                }
                Ok((s, v)) => tracing::warn!(status = %s, answer = %v, "inbox read refused"),
                Err(e) => tracing::warn!(error = %e, "inbox read failed"),
            }
        }
    }

    /// Answers one JSON-RPC request.
    async fn answer(&self, req: Value) -> Value {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        if req.get("method").and_then(Value::as_str) != Some("message/send") {
            return json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "only message/send is supported" } });
        }
        let message = &req["params"]["message"];
        let text = message["parts"]
            .as_array()
            .and_then(|parts| parts.iter().find_map(|p| p.get("text").and_then(Value::as_str)))
            .unwrap_or("")
            .to_owned();
        let delegation = message["metadata"]["delegation_id"].as_str().map(str::to_owned);
        if let Some(action) = text.trim().strip_prefix("approval:") {
            let reply = self.ask_approval(action.trim()).await;
            return json!({ "jsonrpc": "2.0", "id": id, "result": { "kind": "message", "role": "agent", "parts": [{ "kind": "text", "text": reply }] } });
        }
        if text.trim() == "system-prompt" {
            let prompt = self
                .system_prompt
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            return json!({ "jsonrpc": "2.0", "id": id, "result": { "kind": "message", "role": "agent", "parts": [{ "kind": "text", "text": prompt }] } });
        }
        if text.trim() == "peers" {
            let reply = match self
                .call(Method::GET, &format!("/registry/{}/peers", self.workspace_id), None)
                .await
            {
                Ok((s, v)) if s.is_success() => {
                    let names: Vec<&str> = v
                        .as_array()
                        .map(|peers| peers.iter().filter_map(|p| p["name"].as_str()).collect())
                        .unwrap_or_default();
                    format!("peers: {}", names.join(", "))
                }
                Ok((s, v)) => format!("peers unavailable ({s}): {v}"),
                Err(e) => format!("peers unavailable: {e}"),
            };
            return json!({ "jsonrpc": "2.0", "id": id, "result": { "kind": "message", "role": "agent", "parts": [{ "kind": "text", "text": reply }] } });
        }
        let work =
            Duration::from_secs(self.cfg.agent_work_seconds) + Duration::from_millis(self.cfg.agent_work_milliseconds);
        if !work.is_zero() {
            let end = tokio::time::Instant::now() + work;
            while tokio::time::Instant::now() < end {
                if let Some(did) = &delegation {
                    let path = format!("/workspaces/{}/delegations/{did}/heartbeat", self.workspace_id);
                    if let Err(e) = self.call(Method::POST, &path, None).await {
                        tracing::warn!(delegation_id = %did, error = %e, "delegation heartbeat failed");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1).min(end - tokio::time::Instant::now())).await;
            }
        }
        let reply = match text.strip_prefix("secret-sha256:") {
            // Proves delivery without echoing a value: the SHA-256 of a delivered secret.
            Some(key) => match self.delivered.get(key.trim()) {
                Some(v) => Sha256::digest(v.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                None => "unset".to_owned(),
            },
            None => self.cfg.agent_reply.clone().unwrap_or_else(|| format!("echo: {text}")),
        };
        json!({ "jsonrpc": "2.0", "id": id, "result": { "kind": "message", "role": "agent", "parts": [{ "kind": "text", "text": reply }] } })
    }
}

async fn serve_one(agent: Arc<Agent>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let json_response = |status: StatusCode, v: Value| {
        let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            "Content-Type",
            hyper::header::HeaderValue::from_static("application/json"),
        );
        r
    };
    if req.method() == Method::GET && req.uri().path() == "/health" {
        return Ok(json_response(StatusCode::OK, json!({ "status": "ok" })));
    }
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !agent.is_from_platform(authorization) {
        return Ok(json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "send the platform's inbound secret as Authorization: Bearer" }),
        ));
    }
    // Behind the same check as A2A: once the agent knows the platform's inbound secret, only
    // a caller holding it may make the agent busy (or free).
    if req.method() == Method::POST && req.uri().path() == "/control/busy" {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Ok(
            match serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["busy"].as_bool())
            {
                Some(busy) => {
                    agent.busy.store(busy, Ordering::Relaxed);
                    tracing::info!(busy, "told to be busy or free");
                    json_response(StatusCode::OK, json!({ "busy": busy }))
                }
                None => json_response(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "busy: send {\"busy\": true|false}" }),
                ),
            },
        );
    }
    if agent.busy.load(Ordering::Relaxed) {
        let mut r = json_response(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": "busy" }));
        r.headers_mut()
            .insert("Retry-After", hyper::header::HeaderValue::from_static("30"));
        return Ok(r);
    }
    if req.method() != Method::POST {
        return Ok(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": "POST a JSON-RPC message/send" }),
        ));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                json!({ "error": e.to_string() }),
            ));
        }
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => {
            agent.in_flight.fetch_add(1, Ordering::Relaxed);
            let answer = agent.answer(v).await;
            agent.in_flight.fetch_sub(1, Ordering::Relaxed);
            Ok(json_response(StatusCode::OK, answer))
        }
        Err(e) => Ok(json_response(
            StatusCode::BAD_REQUEST,
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message": e.to_string() } }),
        )),
    }
}

async fn serve(agent: Arc<Agent>) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([0, 0, 0, 0], agent.cfg.agent_port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("AGENT_PORT: cannot listen on {addr}"))?;
    tracing::info!(%addr, "serving A2A");
    loop {
        let (stream, _) = listener.accept().await?;
        let agent = agent.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| serve_one(agent.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

/// Writes the files a bootstrap answer carries (`{path: base64}`) under `dir`, refusing any
/// path that would leave it.
fn write_config_files(dir: &str, files: &Value) -> anyhow::Result<()> {
    use base64::Engine as _;
    let Some(files) = files.as_object() else { return Ok(()) };
    for (rel, body) in files {
        let rel = molecule_domain::check_relative(rel).map_err(|e| anyhow::anyhow!("bootstrap file {rel:?}: {e}"))?;
        if rel.is_empty() {
            anyhow::bail!("bootstrap file with an empty path");
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.as_str().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("bootstrap file {rel:?}: {e}"))?;
        let path = std::path::Path::new(dir).join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if !files.is_empty() {
        tracing::info!(files = files.len(), dir, "wrote the configs the bootstrap carried");
    }
    Ok(())
}

/// Redeems a one-time bootstrap code for the secret environment, retrying while the platform
/// is unreachable (an instance may boot before it can reach the platform); a refusal is final.
async fn redeem_bootstrap(first: &AgentConfig, code: &str) -> anyhow::Result<Delivered> {
    let Some(workspace_id) = first.workspace_id.as_deref() else {
        anyhow::bail!("WORKSPACE_ID must be set to redeem MOLECULE_BOOTSTRAP_CODE");
    };
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("{}/registry/bootstrap", first.platform_url.trim_end_matches('/'));
    let body = json!({ "workspace_id": workspace_id, "code": code }).to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut delay = Duration::from_millis(200);
    loop {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&uri)
            .header("Content-Type", "application/json");
        if let Some(org) = &first.molecule_org_id {
            req = req.header("X-Molecule-Org-Id", org);
        }
        let req = req.body(Full::new(Bytes::from(body.clone())))?;
        match client.request(req).await {
            Ok(resp) => {
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if status.is_success() {
                    let env: std::collections::BTreeMap<String, String> = serde_json::from_value(v["env"].clone())
                        .map_err(|e| anyhow::anyhow!("bootstrap answer: {e}"))?;
                    tracing::info!(keys = env.len(), "redeemed the bootstrap code");
                    write_config_files(&first.workspace_config_path, &v["files"])?;
                    return Ok(Delivered::from_map(env));
                }
                if status.is_client_error() {
                    anyhow::bail!(
                        "the platform refused MOLECULE_BOOTSTRAP_CODE ({status}): {}",
                        v["error"]
                    );
                }
                tracing::warn!(%status, "bootstrap failed; retrying");
            }
            Err(e) => tracing::warn!(error = %e, "platform unreachable for the bootstrap; retrying"),
        }
        if tokio::time::Instant::now() + delay > deadline {
            anyhow::bail!("could not reach {uri} to redeem MOLECULE_BOOTSTRAP_CODE within 120 s");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn run() -> anyhow::Result<()> {
    let first = AgentConfig::first_pass()?;
    let filter = tracing_subscriber::EnvFilter::try_new(&first.telemetry.rust_log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let delivered = match (&first.molecule_bootstrap_code, &first.molecule_secrets_file) {
        (Some(code), _) => redeem_bootstrap(&first, code).await?,
        (None, Some(path)) => Delivered::read(std::path::Path::new(path))?,
        (None, None) => Delivered::default(),
    };
    let cfg = AgentConfig::with_delivered(&delivered)?;
    let agent = Arc::new(Agent {
        workspace_id: cfg.workspace_id.clone().unwrap_or_default(),
        token: cfg.molecule_workspace_token.clone().unwrap_or_default(),
        http: Client::builder(TokioExecutor::new()).build_http(),
        busy: AtomicBool::new(cfg.agent_busy),
        in_flight: AtomicI32::new(0),
        system_prompt: std::sync::RwLock::new(ROLE.to_owned()),
        inbound: std::sync::RwLock::new(delivered.get("MOLECULE_PLATFORM_INBOUND_SECRET").map(str::to_owned)),
        cfg,
        delivered,
    });
    // Serve first, so the platform can reach us as soon as we register.
    let server = if agent.cfg.delivery_mode == "push" {
        Some(tokio::spawn(serve(agent.clone())))
    } else {
        None
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = agent.register() => r?,
        _ = term.recv() => return Ok(()),
        _ = tokio::signal::ctrl_c() => return Ok(()),
    }
    agent.load_instructions().await;
    let beats = tokio::spawn(agent.clone().heartbeat_loop());
    let poll = (agent.cfg.delivery_mode == "poll").then(|| tokio::spawn(agent.clone().poll_loop()));
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        Some(Ok(Err(e))) = async { match server { Some(s) => Some(s.await), None => std::future::pending().await } } => return Err(e),
    }
    beats.abort();
    if let Some(p) = poll {
        p.abort();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("molecule-agent: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The request head one `Agent::call` sends, read by a one-shot loopback listener.
    async fn head_of_a_call(org: Option<&str>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client hung up mid-request");
                head.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}")
                .await
                .unwrap();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        let agent = Agent {
            cfg: AgentConfig {
                platform_url: format!("http://{addr}"),
                molecule_org_id: org.map(str::to_owned),
                ..AgentConfig::default()
            },
            workspace_id: "w".into(),
            token: "t".into(),
            http: Client::builder(TokioExecutor::new()).build_http(),
            busy: AtomicBool::new(false),
            in_flight: AtomicI32::new(0),
            system_prompt: std::sync::RwLock::new(ROLE.to_owned()),
            delivered: Delivered::default(),
            inbound: std::sync::RwLock::new(None),
        };
        let (status, _) = agent.call(Method::GET, "/workspaces/w/activity", None).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        server.await.unwrap()
    }

    #[tokio::test]
    async fn every_call_carries_the_tenant_header_in_org_mode() {
        let head = head_of_a_call(Some("org-7")).await;
        assert!(head.contains("x-molecule-org-id: org-7"), "{head}");
        assert!(head.contains("authorization: bearer t"), "{head}");
        let head = head_of_a_call(None).await;
        assert!(!head.contains("x-molecule-org-id"), "{head}");
    }

    /// Calls are taken until the platform's inbound secret is known; then only with it.
    #[test]
    fn only_the_platform_gets_through_once_its_secret_is_known() {
        let agent = Agent {
            cfg: AgentConfig::default(),
            workspace_id: "w".into(),
            token: "t".into(),
            http: Client::builder(TokioExecutor::new()).build_http(),
            busy: AtomicBool::new(false),
            in_flight: AtomicI32::new(0),
            system_prompt: std::sync::RwLock::new(ROLE.to_owned()),
            delivered: Delivered::default(),
            inbound: std::sync::RwLock::new(None),
        };
        assert!(agent.is_from_platform(None), "before registration");
        agent.learn_inbound(&json!({ "status": "registered", "platform_inbound_secret": "s3cret" }));
        assert!(agent.is_from_platform(Some("Bearer s3cret")));
        for refused in [None, Some("Bearer wrong"), Some("s3cret"), Some("Bearer ")] {
            assert!(!agent.is_from_platform(refused), "{refused:?}");
        }
        // An answer without the field keeps what is known.
        agent.learn_inbound(&json!({ "status": "ok" }));
        assert!(agent.is_from_platform(Some("Bearer s3cret")));
    }

    /// Told to be busy, the agent answers 503 (with Retry-After) until told it is free.
    #[tokio::test]
    async fn a_busy_agent_answers_503_until_told_it_is_free() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let agent = Arc::new(Agent {
            cfg: AgentConfig {
                agent_port: port,
                agent_busy: true,
                ..AgentConfig::default()
            },
            workspace_id: "w".into(),
            token: "t".into(),
            http: Client::builder(TokioExecutor::new()).build_http(),
            busy: AtomicBool::new(true),
            in_flight: AtomicI32::new(0),
            system_prompt: std::sync::RwLock::new(ROLE.to_owned()),
            delivered: Delivered::default(),
            inbound: std::sync::RwLock::new(None),
        });
        tokio::spawn(serve(agent.clone()));
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let post = |path: &str, body: Value| {
            let req = Request::builder()
                .method(Method::POST)
                .uri(format!("http://127.0.0.1:{port}{path}"))
                .header("Content-Type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let client = client.clone();
            async move {
                for _ in 0..100 {
                    match client.request(req.clone()).await {
                        Ok(resp) => {
                            let status = resp.status();
                            let retry = resp
                                .headers()
                                .get("Retry-After")
                                .map(|v| v.to_str().unwrap().to_owned());
                            let body = resp.into_body().collect().await.unwrap().to_bytes();
                            return (
                                status,
                                retry,
                                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
                            );
                        }
                        // not listening yet
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                panic!("the agent never listened");
            }
        };
        let msg = json!({ "jsonrpc": "2.0", "id": 1, "method": "message/send",
            "params": { "message": { "role": "user", "parts": [{ "kind": "text", "text": "hi" }] } } });
        let (status, retry, _) = post("/", msg.clone()).await;
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("30"))
        );
        let (status, _, v) = post("/control/busy", json!({ "busy": false })).await;
        assert_eq!((status, v), (StatusCode::OK, json!({ "busy": false })));
        let (status, _, v) = post("/", msg).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["result"]["parts"][0]["text"], "echo: hi");
        // Once the platform's inbound secret is known, a caller without it cannot make the
        // agent busy.
        *agent.inbound.write().unwrap() = Some("inbound-secret".into());
        let (status, _, _) = post("/control/busy", json!({ "busy": true })).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!agent.busy.load(Ordering::Relaxed));
    }
}
