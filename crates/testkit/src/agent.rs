//! A scriptable A2A agent on loopback, for tests of the proxy, the queue and delegations. It
//! answers `message/send` (and any JSON-RPC method) with `echo: <first text part>`, or says it
//! is busy (503), or holds the request without answering, as the test sets it; it keeps every
//! request it received. It runs on its own thread and runtime, so any test runtime can use it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

/// How the agent answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 with a JSON-RPC result: `echo: <text>`, a tool trace and token usage.
    Echo,
    /// 503, as an agent that is busy says.
    Busy,
    /// Never answers (the connection stays open).
    Hang,
    /// Answers as `Echo` after this many milliseconds.
    Slow(u64),
}

/// One request the agent received.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub a2a_version: Option<String>,
    /// `X-Workspace-ID`.
    pub caller: Option<String>,
}

impl Received {
    /// `params.message.messageId`.
    pub fn message_id(&self) -> Option<&str> {
        self.body.pointer("/params/message/messageId").and_then(Value::as_str)
    }

    /// The first text part of the message.
    pub fn text(&self) -> Option<&str> {
        self.body
            .pointer("/params/message/parts/0/text")
            .and_then(Value::as_str)
    }
}

struct Shared {
    mode: Mutex<Mode>,
    received: Mutex<Vec<Received>>,
}

/// The agent; it stops when the test process ends.
#[derive(Clone)]
pub struct StubAgent {
    pub url: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StubAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StubAgent").field("url", &self.url).finish()
    }
}

impl StubAgent {
    pub fn start(mode: Mode) -> Result<Self, crate::Error> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            received: Mutex::new(Vec::new()),
        });
        crate::serve_http(listener, 1, shared.clone(), answer)?;
        Ok(Self { url, shared })
    }

    pub fn set(&self, mode: Mode) {
        if let Ok(mut m) = self.shared.mode.lock() {
            *m = mode;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn answer(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (a2a_version, caller) = (header("a2a-version"), header("x-workspace-id"));
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mode = shared.mode.lock().map(|m| *m).unwrap_or(Mode::Echo);
    let received = Received {
        body: body.clone(),
        a2a_version,
        caller,
    };
    let json = |status: u16, v: Value| {
        let mut resp = Response::new(Full::new(Bytes::from(v.to_string())));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    };
    match mode {
        Mode::Busy => json(503, json!({ "error": "busy" })),
        Mode::Hang => {
            if let Ok(mut r) = shared.received.lock() {
                r.push(received);
            }
            std::future::pending::<()>().await;
            json(500, Value::Null)
        }
        Mode::Echo | Mode::Slow(_) => {
            let text = received.text().unwrap_or("").to_owned();
            if let Ok(mut r) = shared.received.lock() {
                r.push(received);
            }
            if let Mode::Slow(ms) = mode {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            json(
                200,
                json!({
                    "jsonrpc": "2.0", "id": body["id"],
                    "result": {
                        "kind": "message", "role": "agent", "messageId": "answer-1",
                        "parts": [{ "kind": "text", "text": format!("echo: {text}") }],
                        "metadata": { "tool_trace": [{ "tool": "echo" }] },
                        "usage": { "input_tokens": 3, "output_tokens": 5 },
                    }
                }),
            )
        }
    }
}
