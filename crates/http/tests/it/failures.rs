//! Failures an operator must be able to tell apart: an unexpected database error is a 500
//! with a request id and no database text; a database that cannot be reached is a 503 with
//! `Retry-After`; and the hot routes never hold one pooled connection while waiting for
//! another, so a fleet larger than the pool cannot deadlock it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test;
use molecule_db::PoolOptions;
use molecule_http::{AppState, app};
use molecule_ledger::{NewDelegation, Update};
use molecule_service::testing::workspace_with_token;
use molecule_testkit::{TestDb, bearer};
use serde_json::{Value, json};

const ADMIN: &str = "admin-secret";
/// Text only the database knows; it must never reach a client.
const CANARY: &str = "canary-db-internals-7f3a";

fn admin_post(uri: &str, body: Value) -> actix_http::Request {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(bearer(ADMIN))
        .set_json(body)
        .to_request()
}

#[actix_web::test]
async fn an_unexpected_database_error_is_a_500_with_a_request_id_and_no_database_text() {
    let db = TestDb::new().await;
    // A failure no code path plans for: every insert into workspaces raises.
    db.execute_sql(&format!(
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{CANARY}'; END $$"
    ))
    .await;
    db.execute_sql("CREATE TRIGGER boom BEFORE INSERT ON workspaces FOR EACH ROW EXECUTE FUNCTION boom()")
        .await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let app = test::init_service(app(state)).await;
    let resp = test::call_service(&app, admin_post("/workspaces", json!({ "name": "a" }))).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let header = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("X-Request-Id on every answer");
    let body: Value = test::read_body_json(resp).await;
    let text = body.to_string();
    assert!(!text.contains(CANARY), "database text reached the client: {text}");
    for internal in ["plpgsql", "trigger", "workspaces", "SQL", "diesel"] {
        assert!(!text.contains(internal), "{internal:?} reached the client: {text}");
    }
    assert_eq!(
        body["request_id"], header,
        "the body names the same request id as the header"
    );
    assert!(body["error"].as_str().unwrap().contains(&header), "{text}");
}

#[actix_web::test]
async fn a_database_that_cannot_be_reached_is_a_503_with_retry_after() {
    let db = TestDb::new().await;
    let pool = db
        .pool_with(PoolOptions {
            max_size: 2,
            connect_timeout: Duration::from_secs(2),
        })
        .await;
    let state = AppState::for_tests(pool.clone(), Some(ADMIN.into())).unwrap();
    let app = test::init_service(app(state)).await;
    pool.close();
    let resp = test::call_service(&app, admin_post("/workspaces", json!({ "name": "a" }))).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get("retry-after").is_some(), "503 carries Retry-After");
    let body: Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().contains("retry"), "{body}");
    assert!(
        !body.to_string().contains("Pool"),
        "pool internals reached the client: {body}"
    );
}

/// More concurrent requests than the pool has connections, on each hot route. A request that
/// held one connection while waiting for a second (as the heartbeat once did, for its
/// delegation heartbeat) would wait for the pool's timeout: it then answers 503, or, for the
/// best-effort delegation heartbeat, leaves the callee's delegations untouched.
#[actix_web::test]
async fn hot_routes_never_wait_for_a_second_connection() {
    const SLOTS: usize = 2;
    const AGENTS: usize = 16;
    let db = TestDb::new().await;
    let pool = db
        .pool_with(PoolOptions {
            max_size: SLOTS,
            connect_timeout: Duration::from_secs(3),
        })
        .await;
    let state = AppState::for_tests(pool, Some(ADMIN.into())).unwrap();
    let s = state.services.clone();
    s.ledger().install().await.unwrap();
    let boss = workspace_with_token(&s, "boss").await.id;
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let ws = workspace_with_token(&s, &format!("agent-{i}")).await;
        let did = format!("d-{i}");
        s.ledger()
            .insert(NewDelegation {
                delegation_id: did.clone(),
                caller_id: boss,
                callee_id: ws.id,
                task: "t".into(),
                idempotency_key: None,
                deadline: None,
            })
            .await
            .unwrap();
        s.ledger().set_status(&did, Update::InProgress).await.unwrap();
        agents.push((ws.id, ws.token, did));
    }
    db.execute_sql("UPDATE delegations SET last_heartbeat = now() - interval '1 hour'")
        .await;
    let app = test::init_service(app(state)).await;
    let post = |uri: String, token: &str, body: Value| {
        test::TestRequest::post()
            .uri(&uri)
            .insert_header(bearer(token))
            .set_json(body)
            .to_request()
    };

    let register = agents.iter().map(|(id, token, _)| {
        let req = post(
            "/registry/register".into(),
            token,
            json!({ "id": id, "url": "http://127.0.0.1:9", "agent_card": {} }),
        );
        test::call_service(&app, req)
    });
    let heartbeats = agents.iter().flat_map(|(id, token, _)| {
        (0..2).map(move |_| {
            post(
                "/registry/heartbeat".into(),
                token,
                json!({ "workspace_id": id, "active_tasks": 1 }),
            )
        })
    });
    let registered = futures_util::future::join_all(register).await;
    for r in &registered {
        assert_eq!(r.status(), StatusCode::OK, "register under pool pressure");
    }
    let beats = futures_util::future::join_all(heartbeats.map(|r| test::call_service(&app, r))).await;
    for r in &beats {
        assert_eq!(r.status(), StatusCode::OK, "heartbeat under pool pressure");
    }
    let stale: Vec<String> = {
        let mut out = Vec::new();
        for (_, _, did) in &agents {
            let d = s.ledger().get(did).await.unwrap().unwrap();
            if d.last_heartbeat.unwrap() < time::OffsetDateTime::now_utc() - time::Duration::minutes(30) {
                out.push(did.clone());
            }
        }
        out
    };
    assert!(stale.is_empty(), "delegation heartbeats lost to pool waits: {stale:?}");
    let updates = agents.iter().map(|(id, token, did)| {
        let req = post(
            format!("/workspaces/{id}/delegations/{did}/update"),
            token,
            json!({ "status": "completed", "response_preview": "done" }),
        );
        test::call_service(&app, req)
    });
    for r in futures_util::future::join_all(updates).await {
        assert_eq!(r.status(), StatusCode::OK, "delegation update under pool pressure");
    }
}
