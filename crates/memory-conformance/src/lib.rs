//! `molecule-memory-conformance`: checks a running Memory Plugin v1 implementation over HTTP.
//!
//! Owns: the list of checks (every endpoint and status code of the contract, its validation
//! rules, id idempotency, parallel writes, whole-name namespace matching, TTL and each
//! capability the plugin advertises), running them against a base URL in namespaces of its
//! own (`custom:conformance-<run>-…`, deleted afterwards), and the pass/fail table.
//!
//! Must not know: how any plugin stores data, or workspace-server. It speaks raw HTTP so it
//! can judge status codes and wire shapes exactly, using the contract crate only to parse.

use std::fmt::Write as _;
use std::time::Duration;

use molecule_memory_contract::{ErrorBody, HealthResponse, Memory, MemoryCapability, MemoryWriteResponse, Namespace};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail(String),
    /// Not applicable, e.g. a capability the plugin does not advertise.
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub group: &'static str,
    pub check: &'static str,
    pub status: Status,
}

/// Everything a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub base_url: String,
    pub capabilities: Vec<String>,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn failures(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Fail(_)))
            .count()
    }

    pub fn passed(&self) -> bool {
        self.failures() == 0 && !self.outcomes.is_empty()
    }

    /// Whether the check named `check` failed.
    pub fn failed(&self, check: &str) -> bool {
        self.outcomes
            .iter()
            .any(|o| o.check == check && matches!(o.status, Status::Fail(_)))
    }

    /// A fixed-width table, one check per line, then a summary line.
    pub fn table(&self) -> String {
        let width = self.outcomes.iter().map(|o| o.check.len()).max().unwrap_or(10);
        let mut out = format!(
            "Memory Plugin v1 conformance: {} (capabilities: {})\n\n",
            self.base_url,
            if self.capabilities.is_empty() {
                "none".to_owned()
            } else {
                self.capabilities.join(", ")
            }
        );
        let _ = writeln!(out, "{:<12} {:<width$}  result", "group", "check");
        for o in &self.outcomes {
            let (word, detail) = match &o.status {
                Status::Pass => ("PASS", String::new()),
                Status::Fail(why) => ("FAIL", format!("  {why}")),
                Status::Skip(why) => ("skip", format!("  {why}")),
            };
            let _ = writeln!(out, "{:<12} {:<width$}  {word}{detail}", o.group, o.check);
        }
        let skipped = self
            .outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Skip(_)))
            .count();
        let _ = write!(
            out,
            "\n{} checks: {} passed, {} failed, {skipped} skipped",
            self.outcomes.len(),
            self.outcomes.len() - self.failures() - skipped,
            self.failures()
        );
        out
    }
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// A response: status and body (`Null` when empty or not JSON).
struct Answer {
    status: u16,
    body: Value,
}

struct Kit {
    http: reqwest::Client,
    base: String,
    prefix: String,
    created: Vec<String>,
}

impl Kit {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer, String> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: no answer: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok(Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }

    fn ns(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    async fn put_ns(&mut self, name: &str, body: Value) -> Result<Answer, String> {
        if !self.created.iter().any(|n| n == name) {
            self.created.push(name.to_owned());
        }
        self.call(Method::PUT, &format!("/v1/namespaces/{name}"), Some(body))
            .await
    }

    async fn commit(&self, ns: &str, body: Value) -> Result<Answer, String> {
        self.call(Method::POST, &format!("/v1/namespaces/{ns}/memories"), Some(body))
            .await
    }

    async fn search(&self, body: Value) -> Result<Vec<Memory>, String> {
        let a = self.call(Method::POST, "/v1/search", Some(body.clone())).await?;
        ensure!(a.status == 200, "search {body} answered {}: {}", a.status, a.body);
        let memories = a.body.get("memories").cloned().unwrap_or(Value::Null);
        if memories.is_null() {
            return Ok(Vec::new());
        }
        serde_json::from_value(memories).map_err(|e| format!("search answer is not a list of Memory: {e}"))
    }
}

fn fact(content: &str) -> Value {
    json!({"content": content, "kind": "fact", "source": "agent"})
}

/// The answer must be `status` with a contract `Error` body.
fn expect_error(a: &Answer, statuses: &[u16], what: &str) -> Check {
    ensure!(
        statuses.contains(&a.status),
        "{what}: expected {statuses:?}, got {} {}",
        a.status,
        a.body
    );
    serde_json::from_value::<ErrorBody>(a.body.clone())
        .map(|_| ())
        .map_err(|e| format!("{what}: the body is not an Error ({e}): {}", a.body))
}

fn expect_status(a: &Answer, status: u16, what: &str) -> Check {
    ensure!(
        a.status == status,
        "{what}: expected {status}, got {} {}",
        a.status,
        a.body
    );
    Ok(())
}

/// Runs every check against the plugin at `base_url`.
pub async fn run(base_url: &str, timeout: Duration) -> Report {
    let base = base_url.trim_end_matches('/').to_owned();
    let mut report = Report {
        base_url: base.clone(),
        ..Report::default()
    };
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(h) => h,
        Err(e) => {
            report.outcomes.push(Outcome {
                group: "setup",
                check: "HTTP client",
                status: Status::Fail(e.to_string()),
            });
            return report;
        }
    };
    let run_id = Uuid::new_v4().simple().to_string();
    let mut kit = Kit {
        http,
        base,
        prefix: format!("custom:conformance-{}", &run_id[..12]),
        created: Vec::new(),
    };
    let mut record = |group: &'static str, check: &'static str, result: Result<Option<String>, String>| {
        report.outcomes.push(Outcome {
            group,
            check,
            status: match result {
                Ok(None) => Status::Pass,
                Ok(Some(skip)) => Status::Skip(skip),
                Err(why) => Status::Fail(why),
            },
        });
    };
    let pass = |r: Check| r.map(|()| None);

    // health
    let health = health(&kit).await;
    let caps: Vec<MemoryCapability> = health.as_ref().map(|h| h.capabilities.clone()).unwrap_or_default();
    record("health", "GET /v1/health → 200 HealthResponse", health.map(|_| None));
    record("health", "unknown route → 404 Error", pass(unknown_route(&kit).await));
    // namespaces
    record("namespaces", "PUT → 200 Namespace", pass(put_namespace(&mut kit).await));
    record(
        "namespaces",
        "PUT again replaces kind and metadata",
        pass(put_replaces(&mut kit).await),
    );
    record("namespaces", "PUT bad name → 400 Error", pass(put_bad_name(&kit).await));
    record(
        "namespaces",
        "PUT unknown kind → 400 Error",
        pass(put_bad_kind(&kit).await),
    );
    record(
        "namespaces",
        "PATCH changes only given fields",
        pass(patch_some(&mut kit).await),
    );
    record(
        "namespaces",
        "PATCH missing namespace → 404 Error",
        pass(patch_missing(&kit).await),
    );
    // memories
    record("memories", "POST → 201 {id, namespace}", pass(commit_basic(&kit).await));
    record(
        "memories",
        "POST without id → a new id each time",
        pass(commit_fresh_ids(&kit).await),
    );
    record(
        "memories",
        "POST same id twice → one memory, updated",
        pass(commit_idempotent(&kit).await),
    );
    record(
        "memories",
        "POST to missing namespace → 404 Error",
        pass(commit_missing_ns(&kit).await),
    );
    record(
        "memories",
        "POST blank content → 400 Error",
        pass(commit_blank(&kit).await),
    );
    record(
        "memories",
        "POST unknown kind → 400 Error",
        pass(commit_bad_kind(&kit).await),
    );
    record(
        "memories",
        "20 parallel writes → 20 memories",
        pass(parallel_writes(&mut kit).await),
    );
    // search
    record("search", "empty namespaces → 400 Error", pass(search_empty(&kit).await));
    record(
        "search",
        "limit 101 → 400 Error",
        pass(search_limit_too_big(&kit).await),
    );
    record("search", "kinds filter", pass(search_kinds(&mut kit).await));
    record("search", "limit is respected", pass(search_limit(&kit).await));
    record(
        "search",
        "namespaces match whole names",
        pass(whole_names(&mut kit).await),
    );
    // forget
    record(
        "forget",
        "other namespace → 403/404, kept",
        pass(forget_elsewhere(&kit).await),
    );
    record("forget", "DELETE → 204, gone", pass(forget_ok(&kit).await));
    record("forget", "DELETE again → 404 Error", pass(forget_twice(&kit).await));
    // capabilities
    let has = |c: MemoryCapability| caps.contains(&c);
    let unadvertised = |c: MemoryCapability| Ok(Some(format!("{c} not advertised")));
    record(
        "capability",
        "ttl: expired memories never returned",
        if has(MemoryCapability::Ttl) {
            pass(cap_ttl(&mut kit).await)
        } else {
            unadvertised(MemoryCapability::Ttl)
        },
    );
    record(
        "capability",
        "pin: pinned memories rank first",
        if has(MemoryCapability::Pin) {
            pass(cap_pin(&mut kit).await)
        } else {
            unadvertised(MemoryCapability::Pin)
        },
    );
    record(
        "capability",
        "fts: queries match word forms",
        if has(MemoryCapability::Fts) {
            pass(cap_fts(&mut kit).await)
        } else {
            unadvertised(MemoryCapability::Fts)
        },
    );
    record(
        "capability",
        "propagation: round-trips as given",
        if has(MemoryCapability::Propagation) {
            pass(cap_propagation(&mut kit).await)
        } else {
            unadvertised(MemoryCapability::Propagation)
        },
    );
    record(
        "capability",
        "embedding: nearest vector first",
        if has(MemoryCapability::Embedding) {
            pass(cap_embedding(&mut kit).await)
        } else {
            unadvertised(MemoryCapability::Embedding)
        },
    );
    // namespace deletion, last
    record(
        "namespaces",
        "DELETE → 204, memories gone",
        pass(delete_namespace(&kit).await),
    );
    record("namespaces", "DELETE again → 404 Error", pass(delete_twice(&kit).await));
    for name in kit.created.clone() {
        let _ = kit.call(Method::DELETE, &format!("/v1/namespaces/{name}"), None).await;
    }
    report.capabilities = caps.iter().map(ToString::to_string).collect();
    report
}

async fn health(kit: &Kit) -> Result<HealthResponse, String> {
    let a = kit.call(Method::GET, "/v1/health", None).await?;
    expect_status(&a, 200, "GET /v1/health")?;
    for field in ["status", "version", "capabilities"] {
        ensure!(a.body.get(field).is_some(), "health lacks {field}: {}", a.body);
    }
    let allowed = ["embedding", "fts", "ttl", "pin", "propagation"];
    for c in a.body["capabilities"].as_array().cloned().unwrap_or_default() {
        ensure!(
            c.as_str().is_some_and(|c| allowed.contains(&c)),
            "capability {c} is not one of {allowed:?}"
        );
    }
    let h: HealthResponse = serde_json::from_value(a.body.clone()).map_err(|e| format!("health: {e}: {}", a.body))?;
    ensure!(!h.version.is_empty(), "health: empty version");
    Ok(h)
}

async fn unknown_route(kit: &Kit) -> Check {
    let a = kit.call(Method::GET, "/v1/conformance-no-such-route", None).await?;
    expect_error(&a, &[404], "GET an unknown route")
}

async fn put_namespace(kit: &mut Kit) -> Check {
    let name = kit.ns("a");
    let a = kit
        .put_ns(&name, json!({"kind": "custom", "metadata": {"suite": "conformance"}}))
        .await?;
    expect_status(&a, 200, "PUT namespace")?;
    let ns: Namespace =
        serde_json::from_value(a.body.clone()).map_err(|e| format!("not a Namespace ({e}): {}", a.body))?;
    ensure!(ns.name == name, "name {} echoed as {}", name, ns.name);
    ensure!(ns.kind.to_string() == "custom", "kind echoed as {}", ns.kind);
    ensure!(
        ns.metadata.as_ref().and_then(|m| m.get("suite")) == Some(&json!("conformance")),
        "metadata not kept: {}",
        a.body
    );
    Ok(())
}

async fn put_replaces(kit: &mut Kit) -> Check {
    let name = kit.ns("replace");
    let first = kit
        .put_ns(&name, json!({"kind": "custom", "metadata": {"a": 1}}))
        .await?;
    expect_status(&first, 200, "first PUT")?;
    let second = kit.put_ns(&name, json!({"kind": "team"})).await?;
    expect_status(&second, 200, "second PUT")?;
    ensure!(second.body["kind"] == "team", "kind not replaced: {}", second.body);
    ensure!(
        second.body.get("metadata").is_none_or(Value::is_null),
        "metadata not replaced (a PUT without metadata clears it): {}",
        second.body
    );
    Ok(())
}

async fn put_bad_name(kit: &Kit) -> Check {
    let a = kit
        .call(Method::PUT, "/v1/namespaces/Bad:Name", Some(json!({"kind": "custom"})))
        .await?;
    expect_error(&a, &[400], "PUT /v1/namespaces/Bad:Name")
}

async fn put_bad_kind(kit: &Kit) -> Check {
    let a = kit
        .call(
            Method::PUT,
            &format!("/v1/namespaces/{}", kit.ns("kind")),
            Some(json!({"kind": "tribe"})),
        )
        .await?;
    expect_error(&a, &[400], "PUT with kind tribe")
}

async fn patch_some(kit: &mut Kit) -> Check {
    let name = kit.ns("patch");
    expect_status(&kit.put_ns(&name, json!({"kind": "org"})).await?, 200, "PUT")?;
    let a = kit
        .call(
            Method::PATCH,
            &format!("/v1/namespaces/{name}"),
            Some(json!({"metadata": {"x": 1}})),
        )
        .await?;
    expect_status(&a, 200, "PATCH metadata")?;
    ensure!(a.body["metadata"]["x"] == 1, "metadata not patched: {}", a.body);
    ensure!(a.body["kind"] == "org", "PATCH changed kind: {}", a.body);
    Ok(())
}

async fn patch_missing(kit: &Kit) -> Check {
    let a = kit
        .call(
            Method::PATCH,
            &format!("/v1/namespaces/{}", kit.ns("never-created")),
            Some(json!({"metadata": {"x": 1}})),
        )
        .await?;
    expect_error(&a, &[404], "PATCH a missing namespace")
}

async fn commit_basic(kit: &Kit) -> Check {
    let name = kit.ns("a");
    let a = kit.commit(&name, fact("conformance basic write")).await?;
    expect_status(&a, 201, "POST memory")?;
    let w: MemoryWriteResponse =
        serde_json::from_value(a.body.clone()).map_err(|e| format!("not a MemoryWriteResponse ({e}): {}", a.body))?;
    ensure!(w.namespace == name, "namespace echoed as {}", w.namespace);
    Ok(())
}

async fn commit_fresh_ids(kit: &Kit) -> Check {
    let name = kit.ns("a");
    let a = kit.commit(&name, fact("same words")).await?;
    let b = kit.commit(&name, fact("same words")).await?;
    expect_status(&a, 201, "first POST")?;
    expect_status(&b, 201, "second POST")?;
    ensure!(
        a.body["id"] != b.body["id"],
        "two writes without id got the same id {}",
        a.body["id"]
    );
    Ok(())
}

async fn commit_idempotent(kit: &Kit) -> Check {
    let name = kit.ns("idem");
    let id = Uuid::new_v4();
    let mut kit_ns = kit
        .call(
            Method::PUT,
            &format!("/v1/namespaces/{name}"),
            Some(json!({"kind": "custom"})),
        )
        .await?;
    expect_status(&kit_ns, 200, "PUT")?;
    for content in ["first version", "second version"] {
        let mut body = fact(content);
        body["id"] = json!(id);
        kit_ns = kit.commit(&name, body).await?;
        expect_status(&kit_ns, 201, "POST with id")?;
        ensure!(
            kit_ns.body["id"] == json!(id),
            "the answer's id {} is not the one sent ({id})",
            kit_ns.body["id"]
        );
    }
    let hits = kit.search(json!({"namespaces": [name], "limit": 100})).await?;
    let _ = kit.call(Method::DELETE, &format!("/v1/namespaces/{name}"), None).await;
    ensure!(hits.len() == 1, "writing id {id} twice left {} memories", hits.len());
    ensure!(hits[0].id == id, "the memory has id {}, not {id}", hits[0].id);
    ensure!(
        hits[0].content == "second version",
        "the second write did not update: {:?}",
        hits[0].content
    );
    Ok(())
}

async fn commit_missing_ns(kit: &Kit) -> Check {
    let a = kit.commit(&kit.ns("never-created"), fact("x")).await?;
    expect_error(&a, &[404], "POST into a missing namespace")
}

async fn commit_blank(kit: &Kit) -> Check {
    let a = kit.commit(&kit.ns("a"), fact("   ")).await?;
    expect_error(&a, &[400], "POST whitespace content")
}

async fn commit_bad_kind(kit: &Kit) -> Check {
    let a = kit
        .commit(&kit.ns("a"), json!({"content": "x", "kind": "note", "source": "agent"}))
        .await?;
    expect_error(&a, &[400], "POST kind note")
}

async fn parallel_writes(kit: &mut Kit) -> Check {
    let name = kit.ns("parallel");
    expect_status(&kit.put_ns(&name, json!({"kind": "custom"})).await?, 200, "PUT")?;
    let k: &Kit = kit;
    let writes = (0..20).map(|i| {
        let name = name.clone();
        async move { k.commit(&name, fact(&format!("parallel write {i}"))).await }
    });
    for a in futures_util::future::join_all(writes).await {
        expect_status(&a?, 201, "parallel POST")?;
    }
    let hits = kit.search(json!({"namespaces": [name], "limit": 100})).await?;
    ensure!(hits.len() == 20, "20 parallel writes left {} memories", hits.len());
    Ok(())
}

async fn search_empty(kit: &Kit) -> Check {
    let a = kit
        .call(Method::POST, "/v1/search", Some(json!({"namespaces": []})))
        .await?;
    expect_error(&a, &[400], "search with no namespaces")
}

async fn search_limit_too_big(kit: &Kit) -> Check {
    let a = kit
        .call(
            Method::POST,
            "/v1/search",
            Some(json!({"namespaces": [kit.ns("a")], "limit": 101})),
        )
        .await?;
    expect_error(&a, &[400], "search with limit 101")
}

async fn search_kinds(kit: &mut Kit) -> Check {
    let name = kit.ns("kinds");
    expect_status(&kit.put_ns(&name, json!({"kind": "custom"})).await?, 200, "PUT")?;
    for kind in ["fact", "summary", "checkpoint"] {
        let a = kit
            .commit(
                &name,
                json!({"content": format!("a {kind}"), "kind": kind, "source": "runtime"}),
            )
            .await?;
        expect_status(&a, 201, "POST")?;
    }
    let hits = kit.search(json!({"namespaces": [name], "kinds": ["summary"]})).await?;
    ensure!(
        hits.len() == 1 && hits[0].kind.to_string() == "summary",
        "kinds [summary] returned {:?}",
        hits.iter().map(|m| m.kind.to_string()).collect::<Vec<_>>()
    );
    Ok(())
}

async fn search_limit(kit: &Kit) -> Check {
    let hits = kit
        .search(json!({"namespaces": [kit.ns("parallel")], "limit": 3}))
        .await?;
    ensure!(hits.len() == 3, "limit 3 returned {}", hits.len());
    Ok(())
}

async fn whole_names(kit: &mut Kit) -> Check {
    let near = kit.ns("a-corp");
    expect_status(&kit.put_ns(&near, json!({"kind": "custom"})).await?, 200, "PUT")?;
    expect_status(&kit.commit(&near, fact("belongs to a-corp")).await?, 201, "POST")?;
    let hits = kit
        .search(json!({"namespaces": [kit.ns("a")], "query": "corp", "limit": 100}))
        .await?;
    ensure!(
        hits.iter().all(|m| m.namespace == kit.ns("a")),
        "searching {} returned memories of {:?}",
        kit.ns("a"),
        hits.iter().map(|m| &m.namespace).collect::<Vec<_>>()
    );
    let all = kit.search(json!({"namespaces": [kit.ns("a")], "limit": 100})).await?;
    ensure!(
        all.iter().all(|m| m.namespace == kit.ns("a")),
        "prefix match leaked {near}"
    );
    Ok(())
}

async fn forget_target(kit: &Kit) -> Result<Uuid, String> {
    let a = kit.commit(&kit.ns("a"), fact("to be forgotten")).await?;
    expect_status(&a, 201, "POST")?;
    serde_json::from_value(a.body["id"].clone()).map_err(|e| format!("id: {e}"))
}

async fn forget_elsewhere(kit: &Kit) -> Check {
    let id = forget_target(kit).await?;
    let a = kit
        .call(
            Method::DELETE,
            &format!("/v1/memories/{id}"),
            Some(json!({"requested_by_namespace": kit.ns("patch")})),
        )
        .await?;
    expect_error(&a, &[403, 404], "forget through another namespace")?;
    let hits = kit.search(json!({"namespaces": [kit.ns("a")], "limit": 100})).await?;
    ensure!(
        hits.iter().any(|m| m.id == id),
        "the memory was deleted through another namespace"
    );
    Ok(())
}

async fn forget_ok(kit: &Kit) -> Check {
    let id = forget_target(kit).await?;
    let a = kit
        .call(
            Method::DELETE,
            &format!("/v1/memories/{id}"),
            Some(json!({"requested_by_namespace": kit.ns("a")})),
        )
        .await?;
    expect_status(&a, 204, "forget")?;
    let hits = kit.search(json!({"namespaces": [kit.ns("a")], "limit": 100})).await?;
    ensure!(!hits.iter().any(|m| m.id == id), "a forgotten memory is still returned");
    Ok(())
}

async fn forget_twice(kit: &Kit) -> Check {
    let id = forget_target(kit).await?;
    let path = format!("/v1/memories/{id}");
    let body = json!({"requested_by_namespace": kit.ns("a")});
    expect_status(
        &kit.call(Method::DELETE, &path, Some(body.clone())).await?,
        204,
        "first forget",
    )?;
    expect_error(
        &kit.call(Method::DELETE, &path, Some(body)).await?,
        &[404],
        "second forget",
    )
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn cap_ttl(kit: &mut Kit) -> Check {
    let name = kit.ns("ttl");
    expect_status(&kit.put_ns(&name, json!({"kind": "custom"})).await?, 200, "PUT")?;
    let now = time::OffsetDateTime::now_utc();
    for (content, at) in [
        ("already expired", now - time::Duration::hours(1)),
        ("still valid", now + time::Duration::hours(1)),
    ] {
        let mut body = fact(content);
        body["expires_at"] = json!(rfc3339(at));
        expect_status(&kit.commit(&name, body).await?, 201, "POST with expires_at")?;
    }
    for query in [None, Some("expired"), Some("e")] {
        let mut req = json!({"namespaces": [name]});
        if let Some(q) = query {
            req["query"] = json!(q);
        }
        let hits = kit.search(req).await?;
        ensure!(
            !hits.iter().any(|m| m.content == "already expired"),
            "an expired memory was returned (query {query:?})"
        );
    }
    let hits = kit.search(json!({"namespaces": [name]})).await?;
    ensure!(
        hits.iter().any(|m| m.content == "still valid"),
        "a memory that expires later is missing"
    );
    Ok(())
}

async fn cap_pin(kit: &mut Kit) -> Check {
    let name = kit.ns("pin");
    expect_status(&kit.put_ns(&name, json!({"kind": "custom"})).await?, 200, "PUT")?;
    let mut pinned = fact("pinned early");
    pinned["pin"] = json!(true);
    expect_status(&kit.commit(&name, pinned).await?, 201, "POST pinned")?;
    for i in 0..3 {
        expect_status(&kit.commit(&name, fact(&format!("later {i}"))).await?, 201, "POST")?;
    }
    let hits = kit.search(json!({"namespaces": [name]})).await?;
    ensure!(
        hits.first().is_some_and(|m| m.content == "pinned early" && m.pin),
        "first hit is {:?}",
        hits.first().map(|m| &m.content)
    );
    Ok(())
}

async fn cap_fts(kit: &mut Kit) -> Check {
    let name = kit.ns("fts");
    expect_status(&kit.put_ns(&name, json!({"kind": "custom"})).await?, 200, "PUT")?;
    expect_status(
        &kit.commit(&name, fact("the migration jumped two versions")).await?,
        201,
        "POST",
    )?;
    expect_status(&kit.commit(&name, fact("nothing to see here")).await?, 201, "POST")?;
    // "jumping" is not a substring of "jumped": only a full-text match finds it.
    let hits = kit.search(json!({"namespaces": [name], "query": "jumping"})).await?;
    ensure!(
        hits.len() == 1 && hits[0].content.contains("jumped"),
        "query jumping returned {:?}",
        hits.iter().map(|m| &m.content).collect::<Vec<_>>()
    );
    Ok(())
}

async fn cap_propagation(kit: &mut Kit) -> Check {
    let name = kit.ns("propagation");
    expect_status(&kit.put_ns(&name, json!({"kind": "custom"})).await?, 200, "PUT")?;
    let sent = json!({"hops": [1, 2, 3], "via": {"team": "x"}, "flag": true});
    let mut body = fact("carries propagation");
    body["propagation"] = sent.clone();
    expect_status(&kit.commit(&name, body).await?, 201, "POST")?;
    let hits = kit.search(json!({"namespaces": [name]})).await?;
    let got = hits.first().and_then(|m| m.propagation.clone()).map(Value::Object);
    ensure!(got.as_ref() == Some(&sent), "propagation came back as {got:?}");
    Ok(())
}

async fn cap_embedding(kit: &mut Kit) -> Check {
    let name = kit.ns("embedding");
    expect_status(&kit.put_ns(&name, json!({"kind": "custom"})).await?, 200, "PUT")?;
    for (content, v) in [
        ("x axis", [1.0, 0.0, 0.0]),
        ("y axis", [0.0, 1.0, 0.0]),
        ("z axis", [0.0, 0.0, 1.0]),
    ] {
        let mut body = fact(content);
        body["embedding"] = json!(v);
        expect_status(&kit.commit(&name, body).await?, 201, "POST with embedding")?;
    }
    let hits = kit
        .search(json!({"namespaces": [name], "embedding": [0.1, 0.9, 0.05]}))
        .await?;
    ensure!(
        hits.first().is_some_and(|m| m.content == "y axis"),
        "nearest to (0.1, 0.9, 0.05) came back as {:?}",
        hits.iter().map(|m| &m.content).collect::<Vec<_>>()
    );
    Ok(())
}

async fn delete_namespace(kit: &Kit) -> Check {
    let name = kit.ns("a");
    let a = kit
        .call(Method::DELETE, &format!("/v1/namespaces/{name}"), None)
        .await?;
    expect_status(&a, 204, "DELETE namespace")?;
    let hits = kit.search(json!({"namespaces": [name], "limit": 100})).await?;
    ensure!(hits.is_empty(), "{} memories survived their namespace", hits.len());
    Ok(())
}

async fn delete_twice(kit: &Kit) -> Check {
    let a = kit
        .call(Method::DELETE, &format!("/v1/namespaces/{}", kit.ns("a")), None)
        .await?;
    expect_error(&a, &[404], "DELETE a deleted namespace")
}
