//! The plugin over real Postgres, through real HTTP and the contract's own client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use molecule_domain::Vocabulary;
use molecule_memory_contract::client::{ClientConfig, ClientError, PluginClient};
use molecule_memory_contract::*;
use molecule_memory_plugin::{PluginState, janitor_pass, migrations};
use molecule_testkit::TestDb;
use time::OffsetDateTime;
use uuid::Uuid;

struct Running {
    db: TestDb,
    client: PluginClient,
    base: String,
    state: PluginState,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start() -> Running {
    let db = TestDb::with_migrations(migrations()).await;
    let state = PluginState::new(db.pool().clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = molecule_memory_plugin::serve(listener, state.clone(), Duration::from_secs(1)).unwrap();
    let base = format!("http://{}", server.local_addr);
    let client = PluginClient::new(ClientConfig {
        base_url: base.clone(),
        ..ClientConfig::default()
    })
    .unwrap();
    Running {
        db,
        client,
        base,
        state,
        _server: tokio::spawn(server.wait()),
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = db.pool().get().await.unwrap();
    diesel::sql_query(sql).get_result::<N>(&mut conn).await.unwrap().n
}

fn ns(kind: NamespaceKind) -> NamespaceUpsert {
    NamespaceUpsert {
        kind,
        expires_at: None,
        metadata: None,
    }
}

/// Creates each namespace with `kind` and nothing else.
async fn create(c: &PluginClient, kind: NamespaceKind, names: &[&str]) {
    for name in names {
        c.upsert_namespace(name, &ns(kind)).await.unwrap();
    }
}

fn search(namespaces: &[&str]) -> SearchRequest {
    SearchRequest {
        namespaces: namespaces.iter().map(|s| (*s).to_owned()).collect(),
        ..SearchRequest::default()
    }
}

async fn contents(c: &PluginClient, req: &SearchRequest) -> Vec<String> {
    c.search(req)
        .await
        .unwrap()
        .memories
        .into_iter()
        .map(|m| m.content)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_by_id_twice_gives_one_row_and_never_moves_a_memory() {
    let r = start().await;
    let c = &r.client;
    create(c, NamespaceKind::Workspace, &["workspace:a", "workspace:b"]).await;
    let id = Uuid::new_v4();
    let mut w = MemoryWrite::fact("first version");
    w.id = Some(id);
    assert_eq!(c.commit("workspace:a", &w).await.unwrap().id, id);
    w.content = "second version".into();
    assert_eq!(c.commit("workspace:a", &w).await.unwrap().id, id);
    assert_eq!(
        count(&r.db, "SELECT count(*) AS n FROM memory_plugin.memories").await,
        1
    );
    assert_eq!(contents(c, &search(&["workspace:a"])).await, vec!["second version"]);

    // The same id from another namespace is refused, and the memory stays where it was.
    let e = c.commit("workspace:b", &w).await.unwrap_err();
    assert!(matches!(e, ClientError::Plugin { status: 409, .. }), "{e}");
    assert!(e.to_string().contains("workspace:a"), "{e}");
    assert_eq!(contents(c, &search(&["workspace:a"])).await, vec!["second version"]);

    // Without an id, each write is a new memory.
    let a = c.commit("workspace:a", &MemoryWrite::fact("x")).await.unwrap().id;
    let b = c.commit("workspace:a", &MemoryWrite::fact("x")).await.unwrap().id;
    assert_ne!(a, b);

    // A missing namespace is a clear 404, not a 500.
    let e = c.commit("workspace:nope", &MemoryWrite::fact("x")).await.unwrap_err();
    assert!(matches!(e, ClientError::Plugin { status: 404, .. }), "{e}");
    assert!(e.to_string().contains("PUT /v1/namespaces/workspace:nope"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_rows_are_never_returned_and_the_janitor_deletes_them() {
    let r = start().await;
    let c = &r.client;
    let past = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let future = OffsetDateTime::now_utc() + time::Duration::hours(1);
    c.upsert_namespace("team:t", &ns(NamespaceKind::Team)).await.unwrap();
    for (content, expires) in [("stale", Some(past)), ("fresh", Some(future)), ("forever", None)] {
        let mut w = MemoryWrite::fact(content);
        w.expires_at = expires;
        w.embedding = Some(vec![1.0, 0.5]);
        c.commit("team:t", &w).await.unwrap();
    }
    // An expired namespace hides all of its memories.
    let mut gone = ns(NamespaceKind::Custom);
    gone.expires_at = Some(past);
    c.upsert_namespace("custom:gone", &gone).await.unwrap();
    // (Committing into it is refused like a missing one.)
    assert!(c.commit("custom:gone", &MemoryWrite::fact("late")).await.is_err());
    c.patch_namespace(
        "custom:gone",
        &NamespacePatch {
            expires_at: Some(None),
            metadata: None,
        },
    )
    .await
    .unwrap();
    c.commit("custom:gone", &MemoryWrite::fact("hidden stale memory"))
        .await
        .unwrap();
    c.patch_namespace(
        "custom:gone",
        &NamespacePatch {
            expires_at: Some(Some(past)),
            metadata: None,
        },
    )
    .await
    .unwrap();

    // Every search path filters TTL: recent, full text, substring, embedding.
    let mut all = search(&["team:t", "custom:gone"]);
    let mut seen = contents(c, &all).await;
    seen.sort();
    assert_eq!(seen, vec!["forever", "fresh"]);
    for q in ["stale", "st", "s"] {
        all.query = Some(q.into());
        assert!(!contents(c, &all).await.iter().any(|m| m.contains("stale")), "{q}");
    }
    all.query = None;
    all.embedding = Some(vec![1.0, 0.5]);
    let mut by_vector = contents(c, &all).await;
    by_vector.sort();
    assert_eq!(
        by_vector,
        vec!["forever", "fresh"],
        "the embedding path filters TTL too"
    );
    all.embedding = None;

    let report = janitor_pass(&r.state.store).await.unwrap();
    assert_eq!(report["memories_expired"], 1, "{report}");
    assert_eq!(report["namespaces_expired"], 1, "{report}");
    assert_eq!(
        count(&r.db, "SELECT count(*) AS n FROM memory_plugin.memories").await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_namespace_cascades_to_its_memories() {
    let r = start().await;
    let c = &r.client;
    create(c, NamespaceKind::Org, &["org:o", "org:keep"]).await;
    for i in 0..3 {
        c.commit("org:o", &MemoryWrite::fact(format!("m{i}"))).await.unwrap();
    }
    c.commit("org:keep", &MemoryWrite::fact("kept")).await.unwrap();
    c.delete_namespace("org:o").await.unwrap();
    assert_eq!(
        count(
            &r.db,
            "SELECT count(*) AS n FROM memory_plugin.memories WHERE namespace = 'org:o'"
        )
        .await,
        0
    );
    assert_eq!(contents(c, &search(&["org:keep", "org:o"])).await, vec!["kept"]);
    let e = c.delete_namespace("org:o").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
}

/// LangGraph CVE-2026-71433: prefix matching on namespace names leaked memories across
/// tenants. Matching here is by whole name.
#[tokio::test(flavor = "multi_thread")]
async fn namespaces_match_by_whole_name_only() {
    let r = start().await;
    let c = &r.client;
    let names = [
        "team:acme",
        "team:acme-corp",
        "team:acme:sub",
        "team:acme.x",
        "team:acm",
        "team:acmeXcorp",
        "team:acme_",
    ];
    for n in names {
        c.upsert_namespace(n, &ns(NamespaceKind::Team)).await.unwrap();
        c.commit(n, &MemoryWrite::fact(format!("secret of {n}"))).await.unwrap();
    }
    for n in names {
        let mut req = search(&[n]);
        assert_eq!(contents(c, &req).await, vec![format!("secret of {n}")], "{n}");
        req.query = Some("secret".into());
        assert_eq!(contents(c, &req).await, vec![format!("secret of {n}")], "{n} full text");
        req.query = Some("s".into());
        assert_eq!(contents(c, &req).await, vec![format!("secret of {n}")], "{n} substring");
    }
    // Wildcards in names are not names.
    for bad in ["team:acme%", "team:*", "team:acme/.."] {
        let e = c.search(&search(&[bad])).await.unwrap_err();
        assert!(matches!(e, ClientError::Invalid(_)), "{bad}: {e}");
    }
    // And the plugin refuses them too, when a client skips validation.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/v1/search", r.base))
        .json(&serde_json::json!({"namespaces": ["team:acme%"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn search_modes_ranking_kinds_and_limits() {
    let r = start().await;
    let c = &r.client;
    create(c, NamespaceKind::Workspace, &["workspace:w"]).await;
    let write = |content: &str, kind: MemoryKind, pin: bool, embedding: Option<Vec<f32>>| {
        let mut w = MemoryWrite::fact(content);
        w.kind = kind;
        w.pin = pin;
        w.embedding = embedding;
        w
    };
    let rows = [
        write(
            "deploys go through the staging cluster",
            MemoryKind::Fact,
            false,
            Some(vec![1.0, 0.0, 0.0]),
        ),
        write(
            "the staging cluster was rebuilt",
            MemoryKind::Summary,
            false,
            Some(vec![0.0, 1.0, 0.0]),
        ),
        write("discount code is 50%_OFF", MemoryKind::Fact, false, None),
        write(
            "always run the linter",
            MemoryKind::Checkpoint,
            true,
            Some(vec![0.0, 0.0, 1.0]),
        ),
    ];
    for w in &rows {
        c.commit("workspace:w", w).await.unwrap();
    }
    let base = search(&["workspace:w"]);

    // Recent: the pinned one first, then newest first.
    let recent = contents(c, &base).await;
    assert_eq!(recent[0], "always run the linter");
    assert_eq!(recent[1], "discount code is 50%_OFF");

    // Full text, stemmed ("deploy" finds "deploys"), with a score.
    let mut q = base.clone();
    q.query = Some("deploy".into());
    let hits = c.search(&q).await.unwrap().memories;
    assert_eq!(hits.len(), 1);
    assert!(hits[0].score.is_some_and(|s| s > 0.0));

    // Full text misses a partial word; the substring fallback still finds it.
    q.query = Some("linte".into());
    assert_eq!(contents(c, &q).await, vec!["always run the linter"]);

    // Substring patterns are literal: "%" and "_" are not wildcards.
    q.query = Some("%_".into());
    assert_eq!(contents(c, &q).await, vec!["discount code is 50%_OFF"]);
    q.query = Some("%".into());
    assert_eq!(contents(c, &q).await, vec!["discount code is 50%_OFF"]);

    // Kinds filter.
    let mut k = base.clone();
    k.kinds = Some(vec![MemoryKind::Summary, MemoryKind::Checkpoint]);
    let mut got = contents(c, &k).await;
    got.sort();
    assert_eq!(got, vec!["always run the linter", "the staging cluster was rebuilt"]);

    // Limit.
    let mut l = base.clone();
    l.limit = Some(2);
    assert_eq!(contents(c, &l).await.len(), 2);

    // Embedding: nearest by cosine first among unpinned; vectors of another length are skipped.
    let mut e = base.clone();
    e.embedding = Some(vec![0.1, 0.9, 0.0]);
    let hits = c.search(&e).await.unwrap().memories;
    assert_eq!(hits.len(), 3, "only rows with a 3-dimensional embedding");
    assert_eq!(hits[0].content, "always run the linter", "pinned first");
    assert_eq!(hits[1].content, "the staging cluster was rebuilt");
    assert!(hits[1].score.unwrap() > hits[2].score.unwrap());
    e.embedding = Some(vec![1.0, 0.0]);
    assert!(c.search(&e).await.unwrap().memories.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn forget_checks_the_requesting_namespace() {
    let r = start().await;
    let c = &r.client;
    create(c, NamespaceKind::Workspace, &["workspace:a", "workspace:b"]).await;
    let id = c.commit("workspace:a", &MemoryWrite::fact("mine")).await.unwrap().id;
    let by = |n: &str| ForgetRequest {
        requested_by_namespace: n.into(),
    };
    let e = c.forget(id, &by("workspace:b")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
    assert_eq!(contents(c, &search(&["workspace:a"])).await, vec!["mine"]);
    c.forget(id, &by("workspace:a")).await.unwrap();
    let e = c.forget(id, &by("workspace:a")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_upsert_replaces_and_patch_changes_only_what_is_given() {
    let r = start().await;
    let c = &r.client;
    let meta: JsonObject = serde_json::from_value(serde_json::json!({"owner": "ops"})).unwrap();
    let mut up = ns(NamespaceKind::Team);
    up.metadata = Some(meta.clone());
    let first = c.upsert_namespace("team:x", &up).await.unwrap();
    assert_eq!(first.metadata.as_ref(), Some(&meta));
    // PUT is a full replace: no metadata now means none.
    let second = c.upsert_namespace("team:x", &ns(NamespaceKind::Custom)).await.unwrap();
    assert_eq!((second.kind, second.metadata), (NamespaceKind::Custom, None));
    assert_eq!(second.created_at, first.created_at);
    // PATCH keeps what it is not given.
    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
    let p = c
        .patch_namespace(
            "team:x",
            &NamespacePatch {
                expires_at: Some(Some(later)),
                metadata: Some(Some(meta.clone())),
            },
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.as_ref(), Some(&meta));
    let p = c
        .patch_namespace(
            "team:x",
            &NamespacePatch {
                expires_at: None,
                metadata: Some(None),
            },
        )
        .await
        .unwrap();
    assert_eq!(p.metadata, None);
    assert_eq!(
        p.expires_at.map(|t| t.unix_timestamp()),
        Some(later.unix_timestamp()),
        "untouched"
    );
    let e = c
        .patch_namespace(
            "team:none",
            &NamespacePatch {
                expires_at: Some(None),
                metadata: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wire_edges_answer_in_json() {
    let r = start().await;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<&str>| {
        let mut req = http.request(method, format!("{}{path}", r.base));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
            (status, body)
        }
    };
    let (s, b) = call(reqwest::Method::GET, "/v1/nowhere", None).await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")));
    let (s, b) = call(reqwest::Method::GET, "/v1/search", None).await;
    assert_eq!((s, b["code"].as_str()), (405, Some("bad_request")));
    let (s, b) = call(reqwest::Method::POST, "/v1/search", Some("{not json")).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("bad_request")));
    assert!(b["message"].as_str().unwrap().contains("invalid JSON"));
    let huge = format!(r#"{{"namespaces":["team:x"],"query":"{}"}}"#, "a".repeat(2 << 20));
    use reqwest::Method as M;
    // In order: the PUT creates team:x for the cases after it.
    let cases: [(M, &str, &str, u16, &str); 8] = [
        (
            M::PUT,
            "/v1/namespaces/Bad%20Name",
            r#"{"kind":"team"}"#,
            400,
            "a bad name",
        ),
        (
            M::PUT,
            "/v1/namespaces/team:x",
            r#"{"kind":"tribe"}"#,
            400,
            "an unknown kind",
        ),
        (
            M::DELETE,
            "/v1/memories/not-a-uuid",
            r#"{"requested_by_namespace":"team:x"}"#,
            400,
            "a bad id",
        ),
        (M::PATCH, "/v1/namespaces/team:x", "{}", 400, "an empty patch"),
        (
            M::POST,
            "/v1/search",
            &huge,
            413,
            "a body over MEMORY_PLUGIN_MAX_BODY_BYTES",
        ),
        (
            M::PUT,
            "/v1/namespaces/team:x",
            r#"{"kind":"team"}"#,
            200,
            "a good namespace",
        ),
        (
            M::POST,
            "/v1/namespaces/team:x/memories",
            r#"{"content":"a\u0000b","kind":"fact","source":"agent"}"#,
            400,
            "NUL, which Postgres cannot store",
        ),
        (
            M::POST,
            "/v1/namespaces/team:x/memories",
            r#"{"content":"x","kind":"fact","source":"agent","embedding":[1e300]}"#,
            400,
            "a non-finite embedding",
        ),
    ];
    for (method, path, body, want, what) in cases {
        let (s, b) = call(method.clone(), path, Some(body)).await;
        assert_eq!(s, want, "{what}: {method} {path} answered {b}");
        if want == 413 {
            assert!(
                b["message"].as_str().unwrap().contains("MEMORY_PLUGIN_MAX_BODY_BYTES"),
                "{b}"
            );
        }
    }
}

/// Opaque JSON comes back exactly as sent, even numbers that jsonb prints as 309-digit
/// integers (schemathesis found a 500 there: the value was stored, then could not be read).
#[tokio::test(flavor = "multi_thread")]
async fn opaque_json_round_trips_exactly() {
    let r = start().await;
    let http = reqwest::Client::new();
    let odd = r#"{"max":1.7976931348623155e308,"big":-1.4768251678631527e187,"tiny":2.3422120357914172e-232}"#;
    let want: serde_json::Value = serde_json::from_str(odd).unwrap();
    let send = |method: reqwest::Method, path: String, body: String| {
        let req = http
            .request(method, format!("{}{path}", r.base))
            .header("content-type", "application/json")
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    let put = format!(r#"{{"kind":"team","metadata":{odd}}}"#);
    let (s, b) = send(reqwest::Method::PUT, "/v1/namespaces/team:n".into(), put).await;
    assert_eq!(s, 200, "{b}");
    let patch = format!(r#"{{"metadata":{odd}}}"#);
    let (s, b) = send(reqwest::Method::PATCH, "/v1/namespaces/team:n".into(), patch).await;
    assert_eq!(s, 200, "{b}");
    let got: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(got["metadata"], want, "{b}");
    let commit = format!(r#"{{"content":"odd numbers","kind":"fact","source":"agent","propagation":{odd}}}"#);
    let (s, b) = send(reqwest::Method::POST, "/v1/namespaces/team:n/memories".into(), commit).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = send(
        reqwest::Method::POST,
        "/v1/search".into(),
        r#"{"namespaces":["team:n"]}"#.into(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let got: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(got["memories"][0]["propagation"], want, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_what_works_and_degrades_without_the_schema() {
    let r = start().await;
    let caps = r.client.refresh().await.unwrap();
    for cap in MemoryCapability::ALL {
        assert!(caps.contains(cap), "{cap} advertised");
    }
    // Without the schema (MEMORY_PLUGIN_SKIP_MIGRATE=1 on a fresh database): 503, degraded.
    migrations().revert_all(r.db.pool()).await.unwrap();
    let resp = reqwest::get(format!("{}/v1/health", r.base)).await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["status"].as_str()),
        (Some("unavailable"), Some("degraded"))
    );
    assert!(body["message"].as_str().unwrap().contains("MEMORY_PLUGIN_SKIP_MIGRATE"));
    // And back.
    migrations().run_pending(r.db.pool()).await.unwrap();
    assert!(r.client.health().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_constraints_list_the_domain_vocabularies() {
    let db = TestDb::with_migrations(migrations()).await;
    async fn allowed(db: &TestDb, table: &str, column: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Def {
            #[diesel(sql_type = Text)]
            def: String,
        }
        let mut conn = db.pool().get().await.unwrap();
        let defs: Vec<Def> = diesel::sql_query(
            "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
              WHERE conrelid = $1::regclass AND contype = 'c'",
        )
        .bind::<Text, _>(table)
        .load(&mut conn)
        .await
        .unwrap();
        let def = defs
            .iter()
            .map(|d| &d.def)
            .find(|d| d.contains(&format!("({column} = ANY")))
            .unwrap_or_else(|| panic!("no CHECK on {table}.{column}"));
        let mut values: Vec<String> = def.split('\'').skip(1).step_by(2).map(str::to_owned).collect();
        values.sort();
        values
    }
    fn vocabulary<V: Vocabulary>() -> Vec<String> {
        let mut v: Vec<String> = V::ALL.iter().map(|x| x.as_str().to_owned()).collect();
        v.sort();
        v
    }
    assert_eq!(
        allowed(&db, "memory_plugin.memories", "kind").await,
        vocabulary::<MemoryKind>()
    );
    assert_eq!(
        allowed(&db, "memory_plugin.memories", "source").await,
        vocabulary::<MemorySource>()
    );
    assert_eq!(
        allowed(&db, "memory_plugin.namespaces", "kind").await,
        vocabulary::<NamespaceKind>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_go_down_and_up_and_keep_their_own_bookkeeping() {
    let db = TestDb::new().await; // the server's schema too: the two sets must not mix
    let set = migrations();
    let migrations_in_set = 3;
    assert_eq!(set.run_pending(db.pool()).await.unwrap().len(), migrations_in_set);
    assert!(set.pending(db.pool()).await.unwrap().is_empty());
    // The full-text index has no pending list (the insert that merged it stalled commits),
    // and the bound on it stays should anyone turn it back on.
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM pg_class WHERE relname = 'memories_tsv_idx' AND reloptions @> '{fastupdate=off,gin_pending_list_limit=256}'").await,
        1
    );
    assert!(
        molecule_db::Migrations::default()
            .pending(db.pool())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(set.revert_all(db.pool()).await.unwrap().len(), migrations_in_set);
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'memory_plugin' AND tablename <> '__diesel_schema_migrations'").await,
        0
    );
    assert_eq!(set.run_pending(db.pool()).await.unwrap().len(), migrations_in_set);
    assert!(
        molecule_db::Migrations::default()
            .pending(db.pool())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The listing extension: keyset pages over several namespaces (pinned first, newest first)
/// neither repeat nor skip, even with rows of one instant; `ids` narrows a listing; both are
/// refused beside a query, and a token the plugin did not issue is a 400.
#[tokio::test(flavor = "multi_thread")]
async fn listings_page_by_token_and_filter_by_id() {
    let r = start().await;
    let c = &r.client;
    create(c, NamespaceKind::Workspace, &["workspace:p", "workspace:q"]).await;
    let mut written = std::collections::BTreeSet::new();
    for i in 0..130 {
        let mut w = MemoryWrite::fact(format!("memory {i}"));
        w.pin = i % 10 == 0;
        let ns = if i % 2 == 0 { "workspace:p" } else { "workspace:q" };
        written.insert(c.commit(ns, &w).await.unwrap().id);
    }
    // Rows sharing one created_at: the id breaks the tie.
    let conn = &mut r.db.pool().get().await.unwrap();
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE memory_plugin.memories SET created_at = '2026-01-01Z' WHERE content LIKE 'memory 1%'",
        ),
        conn,
    )
    .await
    .unwrap();

    let mut req = search(&["workspace:p", "workspace:q"]);
    req.limit = Some(25);
    let (mut seen, mut pages, mut pinned_done) = (Vec::new(), 0, false);
    loop {
        let page = c.search(&req).await.unwrap();
        pages += 1;
        for m in &page.memories {
            assert!(!(pinned_done && m.pin), "a pinned memory after unpinned ones");
            pinned_done |= !m.pin;
            seen.push(m.id);
        }
        match page.next_page_token {
            Some(t) => req.page_token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 6, "130 rows in pages of 25: five full pages and a last one");
    assert_eq!(seen.len(), 130, "no repeats");
    assert_eq!(seen.iter().copied().collect::<std::collections::BTreeSet<_>>(), written);

    // Exactly full last page: the token leads to an empty page, which carries none.
    let mut exact = search(&["workspace:p"]);
    exact.limit = Some(65);
    let first = c.search(&exact).await.unwrap();
    assert_eq!(first.memories.len(), 65);
    exact.page_token = first.next_page_token;
    let second = c.search(&exact).await.unwrap();
    assert!(second.memories.is_empty() && second.next_page_token.is_none());

    let some: Vec<_> = written.iter().copied().take(3).collect();
    let mut by_id = search(&["workspace:p", "workspace:q"]);
    by_id.ids = Some(some.clone());
    let got: std::collections::BTreeSet<_> = c.search(&by_id).await.unwrap().memories.iter().map(|m| m.id).collect();
    assert_eq!(got, some.into_iter().collect());

    let raw = reqwest::Client::new();
    for body in [
        serde_json::json!({"namespaces": ["workspace:p"], "query": "memory", "page_token": "v1.0.0.00000000-0000-0000-0000-000000000000"}),
        serde_json::json!({"namespaces": ["workspace:p"], "query": "memory", "ids": []}),
        serde_json::json!({"namespaces": ["workspace:p"], "page_token": "not-mine"}),
    ] {
        let resp = raw
            .post(format!("{}/v1/search", r.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
    }
}

/// A commit is a prepared statement that each pooled connection keeps: on a one-connection
/// pool, three commits leave exactly one prepared insert behind (a `sql_query` leaves none,
/// and Postgres parses and plans it on every commit).
#[tokio::test]
async fn commits_reuse_one_prepared_statement_per_connection() {
    let db = TestDb::with_migrations(migrations()).await;
    let pool = molecule_db::connect(
        &db.url,
        &molecule_db::PoolOptions {
            max_size: 1,
            ..molecule_db::PoolOptions::default()
        },
    )
    .await
    .unwrap();
    let store = PluginState::new(pool.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = molecule_memory_plugin::serve(listener, store, Duration::from_secs(1)).unwrap();
    let client = PluginClient::new(ClientConfig {
        base_url: format!("http://{}", server.local_addr),
        ..ClientConfig::default()
    })
    .unwrap();
    let _serving = tokio::spawn(server.wait());
    client
        .upsert_namespace("workspace:prepared", &ns(NamespaceKind::Workspace))
        .await
        .unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for i in 0..3 {
        let w = client
            .commit("workspace:prepared", &MemoryWrite::fact(format!("memory {i}")))
            .await
            .unwrap();
        ids.insert(w.id);
    }
    assert_eq!(ids.len(), 3);
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = pool.get().await.unwrap();
    let prepared = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO memory_plugin.memories%'",
    )
    .get_result::<N>(&mut conn)
    .await
    .unwrap()
    .n;
    assert_eq!(
        prepared, 1,
        "the commit's prepared statements on the pool's one connection"
    );
}
