//! `molecule-testkit` (dev-dependency only): every test gets its own database.
//!
//! Owns: finding a Postgres server for the tests (`DATABASE_URL` when set, otherwise one
//! throwaway cluster per test process, started from Debian's binaries and destroyed by a
//! watchdog when the process exits), building a migrated *template* database once per
//! migration set (guarded by an advisory lock, so parallel test processes cooperate), and
//! cloning it into a fresh database per test. Tests never share rows.
//! Also the other real-protocol peers tests need: moto (EC2), a loopback OTLP collector and a
//! scriptable A2A agent.
//!
//! Must not know: what the tests test. It never mocks SQL: everything runs on a real server.
//!
//! Also the helpers every suite needs: [`until`]/[`until_ok`] (poll against a deadline, never
//! a bare sleep), [`bearer`] (an authorised request), [`stable_json`] (a wire body ready for an
//! `insta` snapshot) and [`free_port`]. Fixtures that need the application ("a workspace with a
//! token") live in `molecule_service::testing`: the test kit must not depend on what it tests.
//!
//! Modules: `vendors` (feature `vendors`: local fakes of the chat vendors' APIs and their
//! signers), `moto` (moto_server for EC2 tests), `otlp` (a loopback OTLP collector), `agent`
//! (a loopback A2A agent that echoes, says busy or hangs, as the test sets it), `client` (the
//! typed client of workspace-server's HTTP API that the black-box suites share: it speaks the
//! wire, never the server's crates).

// Test tooling: DATABASE_URL, CI and the tool paths come from the environment.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::print_stderr)]

pub mod agent;
#[cfg(feature = "client")]
pub mod client;
mod moto;
mod otlp;
#[cfg(feature = "vendors")]
pub mod vendors;

use std::sync::OnceLock;

pub use agent::StubAgent;
#[cfg(feature = "client")]
pub use client::{Agent, Api, Reply};
pub use moto::{Moto, moto_server_path};
pub use otlp::{OtlpSink, Received};

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_db::{Migrations, Pool, PoolOptions};
use molecule_pg_cluster::{Cluster, Options};

/// How often [`until`] asks again.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(25);

/// Polls `f` until it yields a value, failing the test after `within` with "timed out waiting
/// for {what}". Tests synchronise through this, never through a sleep of a guessed length.
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    within: std::time::Duration,
    mut f: impl FnMut() -> F,
) -> T {
    until_ok(what, within, || {
        let attempt = f();
        async move { attempt.await.ok_or_else(|| "not yet".to_owned()) }
    })
    .await
}

/// Like [`until`], for a condition that can say why it does not hold yet: `f` answers
/// `Err(reason)` while waiting, and the failure message carries the last reason.
pub async fn until_ok<T, F: std::future::Future<Output = Result<T, String>>>(
    what: &str,
    within: std::time::Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(reason) => assert!(
                std::time::Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}: {reason}"
            ),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// `body` with what changes from run to run replaced, for a wire-body snapshot (as Meilisearch
/// redacts its snapshots, without insta's `redactions` feature and its parser): every RFC 3339
/// timestamp becomes `"[timestamp]"`, and every UUID and loopback port inside any string
/// `[uuid]` and `[port]`, at any depth; object keys are sorted.
pub fn stable_json(body: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    fn is_timestamp(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':'
    }
    match body {
        Value::String(s) if is_timestamp(s) => Value::String("[timestamp]".into()),
        Value::String(s) => Value::String(redact_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(stable_json).collect()),
        // Keys sorted: the workspace turns on serde_json's `preserve_order`, and snapshots
        // must not follow the order a body happens to be written in.
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), stable_json(v))).collect())
        }
        other => other.clone(),
    }
}

/// `text` with every UUID written `[uuid]` and every loopback port `[port]`, wherever they
/// stand in it (`workspace:<uuid>`, an error naming `http://127.0.0.1:<port>/`).
fn redact_text(text: &str) -> String {
    use std::sync::LazyLock;
    // Literal patterns, checked by the tests that use them: they compile.
    #[allow(clippy::expect_used)]
    static UUID: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
            .expect("a literal pattern")
    });
    #[allow(clippy::expect_used)]
    static PORT: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"(127\.0\.0\.1|localhost):\d+").expect("a literal pattern"));
    let text = UUID.replace_all(text, "[uuid]");
    PORT.replace_all(&text, "$1:[port]").into_owned()
}

/// The `Authorization` header of a bearer token, as a pair both actix's `TestRequest::
/// insert_header` and reqwest's `header` take: `req.insert_header(bearer(&token))`.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// A port on 127.0.0.1 that was free a moment ago.
///
/// # Panics
/// When no loopback port can be bound at all (the test cannot run).
#[allow(clippy::expect_used)] // test tooling: a machine without loopback cannot run the tests
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// Anything that went wrong setting up a test database. Tests `unwrap` it; the message says
/// what to fix.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where the server is: its admin URL (database `postgres`).
#[derive(Debug, Clone)]
struct Server {
    admin_url: String,
    /// The throwaway cluster is destroyed with the process, so per-test drops are skipped.
    throwaway: bool,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

fn server() -> Result<Server, Error> {
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("DATABASE_URL")
                && !url.trim().is_empty()
            {
                return Ok(Server {
                    admin_url: with_database(&url, "postgres"),
                    throwaway: false,
                });
            }
            start_throwaway().map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Into::into)
}

fn start_throwaway() -> Result<Server, Error> {
    let dir = std::env::temp_dir().join(format!(
        "molecule-testkit-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let cluster = Cluster::start(&dir, &Options::default())
        .map_err(|e| format!("no DATABASE_URL set and a throwaway cluster could not start: {e}"))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    eprintln!(
        "molecule-testkit: started a throwaway PostgreSQL on 127.0.0.1:{} (set DATABASE_URL to reuse a server)",
        cluster.port()
    );
    Ok(Server {
        admin_url: cluster.url("postgres"),
        throwaway: true,
    })
}

pub use molecule_pg_cluster::with_database;

/// Serves HTTP/1 on `listener` (non-blocking, bound by the caller) on a thread and runtime of
/// its own, so any test runtime can use it: each request goes to `handle` with `state`. It
/// stops when the test process ends.
pub(crate) fn serve_http<S, F>(
    listener: std::net::TcpListener,
    workers: usize,
    state: std::sync::Arc<S>,
    handle: fn(hyper::Request<hyper::body::Incoming>, std::sync::Arc<S>) -> F,
) -> Result<(), Error>
where
    S: Send + Sync + 'static,
    F: std::future::Future<
            Output = Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, std::convert::Infallible>,
        > + Send
        + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    // A peer hanging up mid-request is what some tests do; not an error here.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
    });
    Ok(())
}

/// Runs `f` on a private multi-thread runtime in its own thread: template setup uses diesel's
/// blocking migration harness, which must not run on the test's (possibly single-threaded)
/// runtime.
fn on_side_runtime<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, Error>> + Send>> + Send + 'static,
) -> Result<T, Error> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        rt.block_on(f())
    })
    .join()
    .map_err(|_| "test kit setup thread panicked")?
}

/// A fresh database for one test. Dropping it drops the database (on a shared server).
pub struct TestDb {
    pub url: String,
    pub name: String,
    pool: Option<Pool>,
    server: Server,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).finish()
    }
}

impl TestDb {
    /// A database with the workspace-server's migrations applied.
    pub async fn new() -> Self {
        Self::with_migrations(Migrations::default()).await
    }

    /// A database with `set` applied, cloned from a template built once per migration set.
    pub async fn with_migrations(set: Migrations) -> Self {
        Self::try_create(Some(set))
            .await
            .unwrap_or_else(|e| panic!("molecule-testkit: {e}"))
    }

    /// An empty database (no migrations), for tests of the migrations themselves.
    pub async fn empty() -> Self {
        Self::try_create(None)
            .await
            .unwrap_or_else(|e| panic!("molecule-testkit: {e}"))
    }

    async fn try_create(set: Option<Migrations>) -> Result<Self, Error> {
        let server = server()?;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = server.admin_url.clone();
        let db = name.clone();
        on_side_runtime(move || {
            Box::pin(async move {
                let template = match set {
                    Some(set) => Some(ensure_template(&admin, set).await?),
                    None => None,
                };
                let mut conn = AsyncPgConnection::establish(&admin).await?;
                let sql = match template {
                    Some(t) => format!("CREATE DATABASE \"{db}\" TEMPLATE \"{t}\""),
                    None => format!("CREATE DATABASE \"{db}\""),
                };
                diesel::sql_query(sql).execute(&mut conn).await?;
                Ok(())
            })
        })?;
        let url = with_database(&server.admin_url, &name);
        let pool = molecule_db::connect(
            &url,
            &PoolOptions {
                max_size: 8,
                ..PoolOptions::default()
            },
        )
        .await?;
        Ok(Self {
            url,
            name,
            pool: Some(pool),
            server,
        })
    }

    pub fn pool(&self) -> &Pool {
        // Only `Drop` takes the pool out.
        #[allow(clippy::expect_used)]
        self.pool.as_ref().expect("pool present until drop")
    }

    /// Runs one SQL statement (panics with the statement on failure).
    pub async fn execute_sql(&self, sql: &str) -> usize {
        let mut conn = self.pool().get().await.unwrap_or_else(|e| panic!("checkout: {e}"));
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A bare `workspaces` row named `name` under `parent` (tests may write any table), for
    /// crates that hang their own rows on a workspace without the tree's use-cases.
    pub async fn workspace_row(&self, name: &str, parent: Option<uuid::Uuid>) -> uuid::Uuid {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: uuid::Uuid,
        }
        let mut conn = self.pool().get().await.unwrap_or_else(|e| panic!("checkout: {e}"));
        let row: Id = diesel::sql_query("INSERT INTO workspaces (name, parent_id) VALUES ($1, $2) RETURNING id")
            .bind::<Text, _>(name)
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(parent)
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("inserting workspace {name}: {e}"));
        row.id
    }

    /// The database's own URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A second pool on the same database with its own size and wait, e.g. fewer slots than
    /// a test sends concurrent requests.
    pub async fn pool_with(&self, opts: PoolOptions) -> Pool {
        molecule_db::connect(&self.url, &opts)
            .await
            .unwrap_or_else(|e| panic!("molecule-testkit: {e}"))
    }

    /// The admin URL of the server the database lives on (database `postgres`).
    pub fn admin_url(&self) -> &str {
        &self.server.admin_url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop(self.pool.take());
        if self.server.throwaway {
            return; // the whole cluster goes with the process
        }
        let admin = self.server.admin_url.clone();
        let name = self.name.clone();
        let result = on_side_runtime(move || {
            Box::pin(async move {
                let mut conn = AsyncPgConnection::establish(&admin).await?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                Ok(())
            })
        });
        if let Err(e) = result {
            eprintln!("molecule-testkit: could not drop {}: {e}", self.name);
        }
    }
}

/// Name of the template for `set`: derived from its versions and content fingerprint, so a new
/// or edited migration makes a new template and stale ones are never reused.
fn template_name(set: &Migrations) -> String {
    // FNV-1a: stable across processes and Rust versions (std's hasher is not).
    let mut h: u64 = 0xcbf29ce484222325;
    for v in set
        .versions()
        .into_iter()
        .chain(std::iter::once(set.fingerprint.to_owned()))
    {
        for b in v.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("tpl_{h:016x}")
}

async fn ensure_template(admin_url: &str, set: Migrations) -> Result<String, Error> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let name = template_name(&set);
    let mut conn = AsyncPgConnection::establish(admin_url).await?;
    // One builder per server at a time; other processes wait, then find it built.
    diesel::sql_query("SELECT pg_advisory_lock(728007001)")
        .execute(&mut conn)
        .await?;
    let result = async {
        let found: Found = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(&name)
            .get_result(&mut conn)
            .await?;
        if found.n == 0 {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
            diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
                .execute(&mut conn)
                .await?;
            {
                let pool = molecule_db::connect(
                    &with_database(admin_url, &building),
                    &PoolOptions {
                        max_size: 1,
                        ..PoolOptions::default()
                    },
                )
                .await?;
                set.run_pending(&pool).await?;
            }
            // The rename publishes the template only once it is complete. The migration
            // pool's backends exit asynchronously after the drop, so poll until they are gone.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            loop {
                let renamed = diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
                    .execute(&mut conn)
                    .await;
                match renamed {
                    Ok(_) => break,
                    Err(e) if e.to_string().contains("being accessed") && std::time::Instant::now() < deadline => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    diesel::sql_query("SELECT pg_advisory_unlock(728007001)")
        .execute(&mut conn)
        .await?;
    result.map(|()| name)
}
