//! Memory use-cases against a real memory-plugin-postgres that goes away and comes back: clear
//! errors while it is down (the transport's, then the open breaker's), no half-applied write,
//! and recovery once the cooldown has passed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use molecule_api::workspaces::CreateWorkspace;
use molecule_memory::memory::{Commit, MemoryError};
use molecule_memory_contract::client::{ClientConfig, PluginClient};
use molecule_memory_plugin::{PluginState, migrations};
use molecule_service::Services;
use molecule_testkit::{TestDb, free_port, until_ok};

fn plugin(state: &PluginState, port: u16) -> molecule_memory_plugin::Server {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    molecule_memory_plugin::serve(listener, state.clone(), Duration::from_secs(1)).unwrap()
}

async fn memories(db: &TestDb) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.pool().get().await.unwrap();
    let row: N = diesel::sql_query("SELECT count(*) AS n FROM memory_plugin.memories")
        .get_result(&mut conn)
        .await
        .unwrap();
    row.n
}

fn commit(text: &str) -> Commit {
    Commit {
        content: text.into(),
        ..Commit::default()
    }
}

/// The client gives up after 1 s and opens its breaker after 3 failures, for 5 s.
fn client(port: u16) -> PluginClient {
    PluginClient::new(ClientConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        timeout: Duration::from_secs(1),
        failure_threshold: 3,
        // Long enough that a loaded CI machine still reads the open breaker before it
        // closes again (2 s failed once when the suite ran beside a build).
        cooldown: Duration::from_secs(5),
    })
    .unwrap()
}

/// A workspace-server's services with memory on, in front of a real plugin on its own
/// database, which a test can stop (`handle`) and start again on the same port.
struct World {
    _db: TestDb,
    plugin_db: TestDb,
    state: PluginState,
    port: u16,
    s: Services,
    handle: molecule_memory_plugin::ServerHandle,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl World {
    /// The client gives up after 1 s and opens its breaker after 3 failures, for 2 s.
    async fn new() -> Self {
        let db = TestDb::new().await;
        let plugin_db = TestDb::with_migrations(migrations()).await;
        let state = PluginState::new(plugin_db.pool().clone());
        let port = free_port();
        let server = plugin(&state, port);
        let handle = server.handle();
        let serving = tokio::spawn(server.wait());
        let s = Services::new(db.pool().clone(), Default::default())
            .unwrap()
            .with_memory(Arc::new(client(port)));
        Self {
            _db: db,
            plugin_db,
            state,
            port,
            s,
            handle,
            serving,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_dies_gives_clear_errors_and_is_used_again_after_the_cooldown() {
    let World {
        _db,
        plugin_db,
        state,
        port,
        s,
        handle,
        serving,
    } = World::new().await;
    let ws = s
        .create_workspace(CreateWorkspace {
            name: "rememberer".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    s.memory().commit_memory(ws, commit("before the outage")).await.unwrap();
    assert_eq!(memories(&plugin_db).await, 1);

    // Down: three transport failures name the plugin and what happened, then the breaker
    // answers at once without sending anything.
    handle.stop(false).await;
    let _ = serving.await;
    // Hold the port while the plugin is down: no other process's server can take it (tests run
    // side by side, each picking free ports), and a connection now hangs until the client's
    // timeout. A client made now has no pooled connection to the old server either.
    let held = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the stopped plugin released its port");
    let s = Services::new(_db.pool().clone(), Default::default())
        .unwrap()
        .with_memory(Arc::new(client(port)));
    for _ in 0..3 {
        let e = s
            .memory()
            .commit_memory(ws, commit("during the outage"))
            .await
            .unwrap_err();
        assert!(matches!(e, MemoryError::Plugin(_)), "{e}");
        assert!(e.to_string().contains("did not answer"), "{e}");
    }
    let e = s.memory().search_memory(ws, Default::default()).await.unwrap_err();
    assert!(e.to_string().contains("circuit breaker open"), "{e}");
    assert_eq!(memories(&plugin_db).await, 1, "nothing half-written");

    // Back: once the cooldown has passed, calls go through again.
    drop(held);
    let server = plugin(&state, port);
    let _serving = tokio::spawn(server.wait());
    until_ok(
        "the breaker to let calls through again",
        Duration::from_secs(20),
        || async {
            s.memory()
                .commit_memory(ws, commit("after the outage"))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;
    let found = s.memory().search_memory(ws, Default::default()).await.unwrap();
    assert_eq!(found.len(), 2);
}

/// A workspace whose initial memories cannot all be stored is not created, and the ones
/// stored before the failure are forgotten again: nothing half-made in either database. The
/// plugin fails on the second memory (a trigger in its database refuses it, as a full disk or
/// a constraint would), and then is down altogether.
#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_whose_initial_memories_fail_is_not_created_and_leaves_no_memory() {
    use diesel_async::SimpleAsyncConnection;
    use molecule_api::memories::InitialMemory;
    use molecule_service::ServiceError;

    let World {
        _db,
        plugin_db,
        state: _,
        port: _,
        s,
        handle,
        serving,
    } = World::new().await;
    let mut conn = plugin_db.pool().get().await.unwrap();
    conn.batch_execute(
        "CREATE FUNCTION memory_plugin.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.content = 'poison' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON memory_plugin.memories
           FOR EACH ROW EXECUTE FUNCTION memory_plugin.refuse_poison();",
    )
    .await
    .unwrap();
    // TEAM memories of a child go to its parent's team namespace, which outlives the child's
    // purge: only forgetting them again removes them.
    let lead = s
        .create_workspace(CreateWorkspace {
            name: "lead".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let create = |contents: &[&str]| CreateWorkspace {
        name: "seeded".into(),
        parent_id: Some(lead),
        initial_memories: contents
            .iter()
            .map(|c| InitialMemory {
                content: (*c).into(),
                scope: Some("TEAM".into()),
            })
            .collect(),
        ..Default::default()
    };

    let e = s.create_workspace(create(&["kept?", "poison"])).await.unwrap_err();
    assert!(matches!(e, ServiceError::NotReady(_)), "{e}");
    assert!(e.to_string().contains("initial_memories[1]"), "{e}");
    assert!(e.to_string().contains("was not created"), "{e}");
    let names = |all: Vec<molecule_api::workspaces::Workspace>| all.into_iter().map(|w| w.name).collect::<Vec<_>>();
    assert_eq!(names(s.tree().list_workspaces().await.unwrap()), ["lead"]);
    assert_eq!(memories(&plugin_db).await, 0, "the first memory was forgotten again");

    // The plugin down: the first memory already fails; still nothing made.
    handle.stop(false).await;
    let _ = serving.await;
    let e = s.create_workspace(create(&["anyone?"])).await.unwrap_err();
    assert!(matches!(e, ServiceError::NotReady(_)), "{e}");
    assert_eq!(names(s.tree().list_workspaces().await.unwrap()), ["lead"]);
    assert_eq!(memories(&plugin_db).await, 0);
}
