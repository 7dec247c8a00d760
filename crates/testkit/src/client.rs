//! `client`: one typed client of workspace-server's HTTP API for the black-box suites.
//!
//! Owns: the wire of the calls every suite makes (create, register, heartbeat, delegate, A2A,
//! tokens, secrets, the reads that follow them) and how a failure reads: every panic names the
//! request (`POST /workspaces/…/delegate`) and shows the status and the body the server sent.
//!
//! Written once here rather than generated from our `/openapi.json` with `progenitor`:
//! progenitor reads OpenAPI 3.0 while our documents are 3.1, it would add a code generator and
//! its dependency tree to every test build on a 2-core machine, and a generated client answers
//! `Result<ResponseValue<T>, Error<E>>`, which hides the body a failing test most needs to show.
//! The suites compare wire bodies against `insta` snapshots ([`crate::stable_json`]), so the
//! schema is still checked, by schemathesis against the documents and here against the bytes.
//!
//! Must not know: the server's crates. It speaks HTTP to a running binary and nothing else.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

/// A running workspace-server: its base URL and admin token, over one pooled HTTP client.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    admin: String,
}

/// A workspace and the bearer token it acts with.
#[derive(Clone, Debug)]
pub struct Agent {
    /// The workspace id.
    pub id: String,
    /// Its bearer token (`auth_token` of the create answer, or one minted by the admin).
    pub token: String,
}

/// One answer: the request it answers, its status and its body (`null` when not JSON, and the
/// raw text in `text`).
#[derive(Debug)]
pub struct Reply {
    /// `METHOD /path`, for failure messages.
    pub request: String,
    /// The HTTP status code.
    pub status: u16,
    /// The JSON body, or `null`.
    pub body: Value,
    /// The body as text.
    pub text: String,
    /// The answer's headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The body, when the status is `status`; otherwise the test fails naming the request and
    /// showing what the server said.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert!(
            self.status == status,
            "{}: expected {status}, got {}: {}",
            self.request,
            self.status,
            self.text
        );
        self.body
    }

    /// The body, when the status is 2xx; otherwise the test fails as [`Reply::expect`] does.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "{}: expected success, got {}: {}",
            self.request,
            self.status,
            self.text
        );
        self.body
    }

    /// The header `name`, as text; the test fails naming the request when it is absent.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        match self.headers.get(name).and_then(|v| v.to_str().ok()) {
            Some(v) => v,
            None => panic!("{}: no `{name}` header ({}: {})", self.request, self.status, self.text),
        }
    }

    /// `Ok(body)` for a 2xx, otherwise `Err` naming the request, status and body: for polls
    /// through [`crate::until_ok`], whose failure then shows the last answer.
    pub fn success(self) -> Result<Value, String> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(format!("{}: {}: {}", self.request, self.status, self.text))
        }
    }
}

/// The string at `field` of `body`; the test fails naming the field and showing the body.
#[track_caller]
pub fn text(body: &Value, field: &str) -> String {
    match body.get(field).and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => panic!("no string `{field}` in {body}"),
    }
}

impl Api {
    /// A client of the server at `base` whose admin token is `admin` (30 s per request).
    ///
    /// # Panics
    /// When no HTTP client can be built (no TLS roots at all): the test cannot run.
    #[allow(clippy::expect_used)] // test tooling: the failure is the report
    pub fn new(base: &str, admin: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("building the HTTP client");
        Self {
            http,
            base: base.to_owned(),
            admin: admin.to_owned(),
        }
    }

    /// The same client, pointed at another replica of the same platform.
    #[must_use]
    pub fn at(&self, base: &str) -> Self {
        Self {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    /// The underlying HTTP client, for what this one does not cover (streams, raw bodies).
    #[must_use]
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The admin token.
    #[must_use]
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// `base + path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `method path` with `token` (none when `None`) and an optional JSON body; `Err` when the
    /// request could not be sent or read (the server is down or hung).
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let request = format!("{method} {path}");
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| format!("{request}: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("{request}: reading the body: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            request,
            status,
            body,
            text,
            headers,
        })
    }

    /// [`Api::try_call`], failing the test when the request cannot be sent.
    #[track_caller]
    pub fn call<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        token: Option<&'a str>,
        body: Option<&'a Value>,
    ) -> impl Future<Output = Reply> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            match self.try_call(method, path, token, body).await {
                Ok(r) => r,
                Err(e) => panic!("{e} (at {caller})"),
            }
        }
    }

    /// `GET path` as `token`.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `POST path` as `token` with a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// `PUT path` as `token` with a JSON body.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    /// `PATCH path` as `token` with a JSON body.
    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    /// `DELETE path` as `token`.
    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// `GET path` as the admin.
    pub async fn admin_get(&self, path: &str) -> Reply {
        self.get(path, &self.admin).await
    }

    /// `POST path` as the admin.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Reply {
        self.post(path, &self.admin, body).await
    }

    /// `POST path` as the admin, with no body (an action: restart, hibernate, mint).
    pub async fn admin_action(&self, path: &str) -> Reply {
        self.call(Method::POST, path, Some(&self.admin), None).await
    }

    /// `DELETE path` as the admin.
    pub async fn admin_delete(&self, path: &str) -> Reply {
        self.delete(path, &self.admin).await
    }

    /// Waits (at most 30 s) until the server answers and its event listener is connected.
    pub async fn ready(&self) {
        crate::until_ok("the server to listen for events", Duration::from_secs(30), || async {
            let r = self
                .try_call(Method::GET, "/admin/liveness", Some(&self.admin), None)
                .await?;
            if r.body["event_listener_connected"] == true {
                Ok(())
            } else {
                Err(format!("{}: {}", r.status, r.text))
            }
        })
        .await;
    }

    /// `POST /workspaces` as the admin: the create answer (201).
    pub async fn create(&self, body: &Value) -> Value {
        self.admin_post("/workspaces", body).await.expect(201)
    }

    /// An `external` workspace named `name` (no workload): its id and the token it was made with.
    pub async fn external(&self, name: &str) -> Agent {
        let made = self.create(&json!({ "name": name, "runtime": "external" })).await;
        Agent {
            id: text(&made, "id"),
            token: text(&made, "auth_token"),
        }
    }

    /// A workspace made from `body` and a token minted for it (a provisioned workspace's
    /// create answer carries none).
    pub async fn provisioned(&self, body: &Value) -> Agent {
        let made = self.create(body).await;
        let id = text(&made, "id");
        let token = self.mint_token(&id).await;
        Agent { id, token }
    }

    /// `POST /workspaces/{id}/tokens` as the admin: a new token of workspace `id`.
    pub async fn mint_token(&self, id: &str) -> String {
        let made = self.admin_action(&format!("/workspaces/{id}/tokens")).await.expect(201);
        text(&made, "auth_token")
    }

    /// `GET /workspaces/{id}` as the admin.
    pub async fn workspace(&self, id: &str) -> Value {
        self.admin_get(&format!("/workspaces/{id}")).await.expect(200)
    }

    /// `POST /registry/register`: `agent` serves A2A at `url` with `card`.
    pub async fn register(&self, agent: &Agent, url: &str, card: &Value) -> Value {
        self.post(
            "/registry/register",
            &agent.token,
            &json!({ "id": agent.id, "url": url, "agent_card": card }),
        )
        .await
        .ok()
    }

    /// `POST /registry/heartbeat` for `agent`, with `active_tasks` tasks in hand.
    pub async fn heartbeat(&self, agent: &Agent, active_tasks: u32) -> Reply {
        self.post(
            "/registry/heartbeat",
            &agent.token,
            &json!({ "workspace_id": agent.id, "active_tasks": active_tasks }),
        )
        .await
    }

    /// `POST /workspaces/{from}/delegate` to `target` with `task`: the delegation id.
    pub async fn delegate(&self, from: &Agent, target: &str, task: &str) -> String {
        let sent = self
            .post(
                &format!("/workspaces/{}/delegate", from.id),
                &from.token,
                &json!({ "target_id": target, "task": task }),
            )
            .await
            .ok();
        text(&sent, "delegation_id")
    }

    /// `GET /workspaces/{id}/delegations` as `who`, for polls: `Err` says why not.
    pub async fn delegations(&self, who: &Agent) -> Result<Vec<Value>, String> {
        let r = self
            .try_call(
                Method::GET,
                &format!("/workspaces/{}/delegations", who.id),
                Some(&who.token),
                None,
            )
            .await?
            .success()?;
        r.as_array().cloned().ok_or_else(|| format!("not a list: {r}"))
    }

    /// `POST /workspaces/{target}/a2a` as `token` with a JSON-RPC body.
    pub async fn a2a(&self, target: &str, token: &str, body: &Value) -> Reply {
        self.post(&format!("/workspaces/{target}/a2a"), token, body).await
    }

    /// `GET /workspaces/{id}/activity?{query}` as `token`, for polls.
    pub async fn activity(&self, id: &str, token: &str, query: &str) -> Result<Vec<Value>, String> {
        let r = self
            .try_call(
                Method::GET,
                &format!("/workspaces/{id}/activity?{query}"),
                Some(token),
                None,
            )
            .await?
            .success()?;
        r.as_array().cloned().ok_or_else(|| format!("not a list: {r}"))
    }

    /// `GET /events/{id}` as the admin: the workspace's structure events.
    pub async fn events(&self, id: &str) -> Vec<Value> {
        let r = self.admin_get(&format!("/events/{id}")).await.expect(200);
        r.as_array().cloned().unwrap_or_default()
    }

    /// `PUT /workspaces/{id}/secrets` as the admin: sets `key` to `value`.
    pub async fn put_secret(&self, id: &str, key: &str, value: &str) -> Reply {
        self.put(
            &format!("/workspaces/{id}/secrets"),
            &self.admin,
            &json!({ "key": key, "value": value }),
        )
        .await
    }
}
