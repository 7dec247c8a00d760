//! A scriptable A2A agent on loopback for the proxy tests: it answers `message/send` with
//! `echo: <text>`, or says it is busy (503), or holds the request without answering, as the
//! test sets it; it keeps every request it received (body and A2A headers).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Echo,
    Busy,
    Hang,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub a2a_version: Option<String>,
    pub caller: Option<String>,
}

#[derive(Clone)]
pub struct StubAgent {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StubAgent {
    pub async fn start(mode: Mode) -> Self {
        let mode = Arc::new(Mutex::new(mode));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (m, r) = (mode.clone(), received.clone());
        let server = HttpServer::new(move || {
            let (m, r) = (m.clone(), r.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (m, r) = (m.clone(), r.clone());
                async move { answer(&req, &body, &m, &r).await }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        actix_web::rt::spawn(server.run());
        Self {
            url: format!("http://{addr}"),
            mode,
            received,
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn answer(req: &HttpRequest, body: &[u8], mode: &Mutex<Mode>, received: &Mutex<Vec<Received>>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mode = *mode.lock().unwrap();
    match mode {
        Mode::Busy => return HttpResponse::ServiceUnavailable().json(json!({ "error": "busy" })),
        Mode::Hang => {
            received.lock().unwrap().push(Received {
                body,
                a2a_version: header("a2a-version"),
                caller: header("x-workspace-id"),
            });
            std::future::pending::<()>().await;
            unreachable!()
        }
        Mode::Echo => {}
    }
    let text = body
        .pointer("/params/message/parts/0/text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    received.lock().unwrap().push(Received {
        body: body.clone(),
        a2a_version: header("a2a-version"),
        caller: header("x-workspace-id"),
    });
    HttpResponse::Ok().json(json!({
        "jsonrpc": "2.0", "id": body["id"],
        "result": {
            "kind": "message", "role": "agent", "messageId": "answer-1",
            "parts": [{ "kind": "text", "text": format!("echo: {text}") }],
            "metadata": { "tool_trace": [{ "tool": "echo" }] },
            "usage": { "input_tokens": 3, "output_tokens": 5 },
        }
    }))
}
