//! `molecule-kv-memory` against a real Postgres: versions, TTL, compare-and-set, and the
//! original's expired-row bugs not copied (an expired key starts again at version 1; a
//! create-only write on it succeeds; two racing creates give a 409, not a 500).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use molecule_kv_memory::{KvMemory, Put};
use molecule_testkit::TestDb;
use molecule_tree::{ServiceConfig, ServiceError, Tree};
use serde_json::{Value, json};
use uuid::Uuid;

async fn workspace(db: &TestDb) -> Uuid {
    db.workspace_row("w", None).await
}

fn put(key: &str, value: Value) -> Put {
    Put {
        key: key.into(),
        value: Some(value),
        ..Put::default()
    }
}

fn cas(key: &str, value: Value, version: i64) -> Put {
    Put {
        if_match_version: Some(version),
        ..put(key, value)
    }
}

fn conflict(e: ServiceError) -> Value {
    match e {
        ServiceError::Conflict { message, details } => {
            let mut d = details;
            d["error"] = json!(message);
            d
        }
        other => panic!("not a 409: {other:?}"),
    }
}

async fn expire(db: &TestDb, key: &str) {
    db.execute_sql(&format!(
        "UPDATE workspace_memory SET expires_at = now() - interval '1 second' WHERE key = '{key}'"
    ))
    .await;
}

#[tokio::test]
async fn versions_ttl_and_compare_and_set() {
    let db = TestDb::new().await;
    let ws = workspace(&db).await;
    let kv = KvMemory::new(Tree::new(db.pool().clone(), ServiceConfig::default()));

    for (bad, field) in [
        (put("", json!(1)), "key"),
        (put("a/b", json!(1)), "key"),
        (put(&"k".repeat(257), json!(1)), "key"),
        (
            Put {
                key: "k".into(),
                ..Put::default()
            },
            "value",
        ),
        (cas("k", json!(1), -1), "if_match_version"),
    ] {
        match kv.put(ws, bad).await.unwrap_err() {
            ServiceError::Invalid { field: f, .. } => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }

    assert_eq!(kv.put(ws, put("plan", json!({ "step": 1 }))).await.unwrap().version, 1);
    assert_eq!(kv.put(ws, put("plan", json!({ "step": 2 }))).await.unwrap().version, 2);
    assert_eq!(
        kv.put(ws, cas("plan", json!({ "step": 3 }), 2)).await.unwrap().version,
        3
    );
    assert_eq!(
        conflict(kv.put(ws, cas("plan", json!(0), 2)).await.unwrap_err()),
        json!({ "error": "if_match_version mismatch", "expected_version": 2, "current_version": 3 })
    );
    assert_eq!(
        conflict(kv.put(ws, cas("plan", json!(0), 0)).await.unwrap_err()),
        json!({ "error": "if_match_version mismatch", "expected_version": 0, "current_version": 3 })
    );
    assert_eq!(
        conflict(kv.put(ws, cas("nothing", json!(0), 4)).await.unwrap_err()),
        json!({ "error": "if_match_version mismatch: key does not exist", "expected_version": 4, "current_version": null })
    );
    assert_eq!(
        kv.put(ws, cas("fresh", json!(null), 0)).await.unwrap().version,
        1,
        "null is a value"
    );
    assert_eq!(kv.get(ws, "fresh").await.unwrap().value, Value::Null);

    // TTL: set by a write, cleared by a write without one, 0 expires at once.
    let with_ttl = kv
        .put(
            ws,
            Put {
                ttl_seconds: Some(3600),
                ..put("t", json!(1))
            },
        )
        .await
        .unwrap();
    assert!(with_ttl.expires_at.is_some());
    assert!(kv.put(ws, put("t", json!(2))).await.unwrap().expires_at.is_none());
    kv.put(
        ws,
        Put {
            ttl_seconds: Some(0),
            ..put("gone", json!(1))
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        kv.get(ws, "gone").await.unwrap_err(),
        ServiceError::NotFound(_)
    ));

    // An expired key is invisible and does not count: versions start again, create-only works.
    expire(&db, "plan").await;
    assert!(matches!(
        kv.get(ws, "plan").await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
    assert!(kv.list(ws).await.unwrap().iter().all(|e| e.key != "plan"));
    assert_eq!(kv.put(ws, cas("plan", json!("again"), 0)).await.unwrap().version, 1);
    expire(&db, "plan").await;
    assert_eq!(kv.put(ws, put("plan", json!("again"))).await.unwrap().version, 1);

    let keys: Vec<String> = kv.list(ws).await.unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["fresh", "plan", "t"], "live entries, by key");
    kv.delete(ws, "t").await.unwrap();
    kv.delete(ws, "t").await.unwrap();

    expire(&db, "fresh").await;
    assert_eq!(kv.sweep().await.unwrap(), 2, "`fresh` and `gone`");
    assert_eq!(kv.sweep().await.unwrap(), 0);
}

#[tokio::test]
async fn racing_creates_give_one_winner_and_409s() {
    let db = TestDb::new().await;
    let ws = workspace(&db).await;
    let kv = KvMemory::new(Tree::new(db.pool().clone(), ServiceConfig::default()));
    for round in 0..5 {
        let key = format!("lock-{round}");
        let attempts = (0..4).map(|i| {
            let kv = kv.clone();
            let key = key.clone();
            async move { kv.put(ws, cas(&key, json!(i), 0)).await }
        });
        let results = futures_util::future::join_all(attempts).await;
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{results:?}");
        for r in results.into_iter().filter(Result::is_err) {
            assert_eq!(conflict(r.unwrap_err())["current_version"], 1);
        }
    }
}
