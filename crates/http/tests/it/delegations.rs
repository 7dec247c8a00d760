//! Delegations through the HTTP API, with the original's bodies, against loopback A2A agents
//! that answer, never answer or are busy, a callee nobody listens for, and one that does not
//! exist.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use actix_web::test;
use molecule_http::{AppState, app};
use molecule_messaging::delegations::DelegationConfig;
use molecule_service::testing::workspace_with_token;
use molecule_testkit::agent::Mode;
use molecule_testkit::{StubAgent, TestDb, bearer, stable_json};
use serde_json::{Value, json};
use uuid::Uuid;

async fn poll_status<S, B>(app: &S, caller: Uuid, token: &str, did: &str) -> Value
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    molecule_testkit::until_ok(
        &format!("delegation {did} to finish"),
        Duration::from_secs(20),
        || async {
            let req = test::TestRequest::get()
                .uri(&format!("/workspaces/{caller}/delegations"))
                .insert_header(bearer(token))
                .to_request();
            let list: Value = test::call_and_read_body_json(app, req).await;
            let row = list
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["delegation_id"] == did)
                .cloned()
                .unwrap();
            if row["status"] == "completed" || row["status"] == "failed" {
                Ok(row)
            } else {
                Err(format!("still {}", row["status"]))
            }
        },
    )
    .await
}

#[actix_web::test]
async fn delegations_reach_their_terminal_state_with_activity_and_inbox_rows() {
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.pool().clone(), Some("adm".into())).unwrap();
    state.services = state.services.clone().with_delegation_config(DelegationConfig {
        inbox_push: true,
        a2a_timeout: Duration::from_secs(1),
        retry_after: Duration::from_millis(100),
    });
    state.services.ledger().install().await.unwrap();
    let s = state.services.clone();
    let caller = workspace_with_token(&s, "caller").await;
    let answering = workspace_with_token(&s, "answering").await;
    let silent = workspace_with_token(&s, "silent").await;
    let closed = workspace_with_token(&s, "closed").await;
    let echo = StubAgent::start(Mode::Echo).unwrap();
    let hang = StubAgent::start(Mode::Hang).unwrap();
    for (ws, url) in [
        (&answering, echo.url.clone()),
        (&silent, hang.url.clone()),
        (&closed, format!("http://127.0.0.1:{}", molecule_testkit::free_port())),
    ] {
        let reg = serde_json::from_value(json!({ "id": ws.id, "url": url, "agent_card": { "name": "stub" } })).unwrap();
        s.messaging().register(reg).await.unwrap();
    }
    let app = test::init_service(app(state.clone())).await;
    let token = caller.token.clone();
    let delegate = |target: Uuid, key: Option<&str>| {
        let mut body = json!({ "target_id": target, "task": "say hi" });
        if let Some(k) = key {
            body["idempotency_key"] = json!(k);
        }
        test::TestRequest::post()
            .uri(&format!("/workspaces/{}/delegate", caller.id))
            .insert_header(bearer(&token))
            .set_json(body)
            .to_request()
    };

    // 1. A callee that answers.
    let resp = test::call_service(&app, delegate(answering.id, Some("k1"))).await;
    assert_eq!(resp.status(), 202);
    let sent: Value = test::read_body_json(resp).await;
    insta::assert_json_snapshot!("a_delegation_accepted", stable_json(&sent));
    let ok_id = sent["delegation_id"].as_str().unwrap().to_owned();
    let done = poll_status(&app, caller.id, &token, &ok_id).await;
    insta::assert_json_snapshot!("completed_delegation_as_the_caller_lists_it", stable_json(&done));
    let got = echo.received().first().cloned().unwrap().body;
    assert_eq!(got["params"]["message"]["metadata"]["delegation_id"], ok_id.as_str());
    insta::assert_json_snapshot!("a_delegation_as_the_callee_gets_it", stable_json(&got));
    // The same idempotency key gives the same delegation back.
    let again = test::call_service(&app, delegate(answering.id, Some("k1"))).await;
    assert_eq!(again.status(), 200);
    let again: Value = test::read_body_json(again).await;
    assert_eq!(again["delegation_id"].as_str(), Some(ok_id.as_str()));
    insta::assert_json_snapshot!("the_same_idempotency_key_again", stable_json(&again));

    // 2. A callee nobody answers for (tried twice, then failed with the transport's reason),
    // 3. one that does not exist (refused up front: no delegation row, no background run),
    // and 4. one that holds the message past the timeout: busy, so the message waits in its
    // queue and the delegation shows `queued`.
    let unreachable: Value = test::call_and_read_body_json(&app, delegate(closed.id, Some("k2"))).await;
    let gone = test::call_service(&app, delegate(Uuid::new_v4(), None)).await;
    assert_eq!(gone.status(), 404);
    let failed_id = unreachable["delegation_id"].as_str().unwrap().to_owned();
    let unreachable = poll_status(&app, caller.id, &token, &failed_id).await;
    assert_eq!(unreachable["status"], "failed");
    assert!(
        unreachable["error"].as_str().unwrap().contains("refused"),
        "{unreachable}"
    );
    // The key of a failed delegation may be used again: a new delegation.
    let retried: Value = test::call_and_read_body_json(&app, delegate(closed.id, Some("k2"))).await;
    assert_eq!(retried["status"], "delegated", "{retried}");
    assert_ne!(retried["delegation_id"].as_str(), Some(failed_id.as_str()));
    poll_status(&app, caller.id, &token, retried["delegation_id"].as_str().unwrap()).await;
    let slow: Value = test::call_and_read_body_json(&app, delegate(silent.id, None)).await;
    let slow_id = slow["delegation_id"].as_str().unwrap().to_owned();
    molecule_testkit::until_ok(
        "the silent callee's delegation to show queued",
        Duration::from_secs(20),
        || async {
            let activity: Value = test::call_and_read_body_json(
                &app,
                test::TestRequest::get()
                    .uri(&format!("/workspaces/{}/activity?limit=100", caller.id))
                    .insert_header(bearer(&token))
                    .to_request(),
            )
            .await;
            let row = activity
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["method"] == "delegate" && r["request_body"]["delegation_id"] == slow_id.as_str())
                .cloned()
                .unwrap();
            if row["status"] == "queued" {
                Ok(())
            } else {
                Err(format!("delegate row is {}", row["status"]))
            }
        },
    )
    .await;
    let queue: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri(&format!("/workspaces/{}/a2a-queue", silent.id))
            .insert_header(bearer("adm"))
            .to_request(),
    )
    .await;
    assert_eq!(queue["depth"], 1, "{queue}");
    assert_eq!(queue["items"][0]["delegation_id"], slow_id.as_str());

    // Activity: one delegate row per delegation (status in step), one delegate_result each,
    // and one inbox (a2a_receive) row each. The result rows follow the ledger's terminal
    // transition (which `poll_status` waited for), so wait for them too.
    let activity: Value =
        molecule_testkit::until_ok("both delegations' result rows", Duration::from_secs(20), || async {
            let activity: Value = test::call_and_read_body_json(
                &app,
                test::TestRequest::get()
                    .uri(&format!("/workspaces/{}/activity?limit=100", caller.id))
                    .insert_header(bearer(&token))
                    .to_request(),
            )
            .await;
            let results = activity
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["method"] == "delegate_result" || r["activity_type"] == "a2a_receive")
                .count();
            if results == 6 {
                Ok(activity)
            } else {
                Err(format!("{results} of 6 result and inbox rows so far"))
            }
        })
        .await;
    let rows = activity.as_array().unwrap();
    let count = |f: &dyn Fn(&Value) -> bool| rows.iter().filter(|r| f(r)).count();
    assert_eq!(count(&|r| r["method"] == "delegate"), 4);
    assert_eq!(count(&|r| r["method"] == "delegate" && r["status"] == "completed"), 1);
    assert_eq!(count(&|r| r["method"] == "delegate" && r["status"] == "failed"), 2);
    assert_eq!(count(&|r| r["method"] == "delegate" && r["status"] == "queued"), 1);
    assert_eq!(
        count(&|r| r["activity_type"] == "delegation" && r["method"] == "delegate_result"),
        3
    );
    let inbox: Vec<&Value> = rows.iter().filter(|r| r["activity_type"] == "a2a_receive").collect();
    assert_eq!(inbox.len(), 3, "one inbox row per settled delegation");
    let ok_inbox = inbox
        .iter()
        .find(|r| r["response_body"]["delegation_id"] == ok_id.as_str())
        .unwrap();
    insta::assert_json_snapshot!("delegation_result_in_the_callers_inbox", stable_json(ok_inbox));
    assert_eq!(inbox.iter().filter(|r| r["status"] == "error").count(), 2);

    // Self-delegation is refused with a reason.
    let own = test::call_service(&app, delegate(caller.id, None)).await;
    assert_eq!(own.status(), 400);
    let body: Value = test::read_body_json(own).await;
    assert!(body["error"].as_str().unwrap().contains("self-delegation"), "{body}");

    // Admin views.
    let admin = |uri: &str| {
        test::TestRequest::get()
            .uri(uri)
            .insert_header(bearer("adm"))
            .to_request()
    };
    let stats: Value = test::call_and_read_body_json(&app, admin("/admin/delegations/stats")).await;
    assert_eq!(
        (
            stats["completed"].as_i64(),
            stats["failed"].as_i64(),
            stats["stuck"].as_i64()
        ),
        (Some(1), Some(2), Some(0))
    );
    assert!(stats["duration_seconds"]["p50"].is_number());
    let failed: Value = test::call_and_read_body_json(&app, admin("/admin/delegations?status=failed")).await;
    assert_eq!(failed["count"], 2);
    let bad = test::call_service(&app, admin("/admin/delegations?status=bogus")).await;
    assert_eq!(bad.status(), 400);
    let body: Value = test::read_body_json(bad).await;
    insta::assert_json_snapshot!("unknown_delegation_status_filter", stable_json(&body));
    assert_eq!(
        test::call_service(&app, admin("/admin/delegations?limit=0"))
            .await
            .status(),
        400
    );
}

/// A delegation to a busy callee waits in its queue; a heartbeat with a free slot delivers it,
/// and the result lands once, announced `via: "queue_drain"`. With
/// `DELEGATION_RESULT_INBOX_PUSH=0` the ledger is written and no inbox row is.
#[actix_web::test]
async fn a_queued_delegation_completes_through_the_drain_once_and_inbox_push_can_be_off() {
    for inbox_push in [true, false] {
        let db = TestDb::new().await;
        let mut state = AppState::for_tests(db.pool().clone(), Some("adm".into())).unwrap();
        state.services = state.services.clone().with_delegation_config(DelegationConfig {
            inbox_push,
            a2a_timeout: Duration::from_secs(5),
            retry_after: Duration::from_millis(100),
        });
        state.services.ledger().install().await.unwrap();
        let s = state.services.clone();
        let caller = workspace_with_token(&s, "caller").await;
        let callee = workspace_with_token(&s, "callee").await;
        let agent = StubAgent::start(Mode::Busy).unwrap();
        let reg = serde_json::from_value(json!({ "id": callee.id, "url": agent.url, "agent_card": {} })).unwrap();
        s.messaging().register(reg).await.unwrap();
        let app = test::init_service(app(state.clone())).await;
        let sent: Value = test::call_and_read_body_json(
            &app,
            test::TestRequest::post()
                .uri(&format!("/workspaces/{}/delegate", caller.id))
                .insert_header(bearer(&caller.token))
                .set_json(json!({ "target_id": callee.id, "task": "later please" }))
                .to_request(),
        )
        .await;
        let did = sent["delegation_id"].as_str().unwrap().to_owned();
        molecule_testkit::until_ok(
            "the delegation's message to wait in the queue",
            Duration::from_secs(10),
            || async {
                let q = s.messaging().queue_view(callee.id).await.unwrap();
                match q.items.first() {
                    Some(i) if q.depth == 1 && i.attempts == 1 && i.status.to_string() == "queued" => Ok(()),
                    _ => Err(format!("{q:?}")),
                }
            },
        )
        .await;
        agent.set(Mode::Echo);
        let hb = serde_json::from_value(json!({ "workspace_id": callee.id, "active_tasks": 0 })).unwrap();
        s.messaging().heartbeat(hb).await.unwrap();
        let done = poll_status(&app, caller.id, &caller.token, &did).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["response_preview"], "echo: later please");
        let delivered: Vec<_> = agent
            .received()
            .into_iter()
            .filter(|r| r.body["params"]["message"]["messageId"] == did.as_str())
            .collect();
        assert_eq!(delivered.len(), 1, "the callee got the task once");
        // The event follows the ledger's terminal transition, which the poll above saw.
        let complete: Vec<Value> =
            molecule_testkit::until_ok("DELEGATION_COMPLETE", Duration::from_secs(10), || async {
                let events: Value = test::call_and_read_body_json(
                    &app,
                    test::TestRequest::get()
                        .uri(&format!("/events/{}", caller.id))
                        .insert_header(bearer("adm"))
                        .to_request(),
                )
                .await;
                let complete: Vec<Value> = events
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["event"] == "DELEGATION_COMPLETE")
                    .cloned()
                    .collect();
                if complete.is_empty() {
                    Err(events.to_string())
                } else {
                    Ok(complete)
                }
            })
            .await;
        assert_eq!(complete.len(), 1, "{complete:?}");
        assert_eq!(complete[0]["payload"]["via"], "queue_drain");
        let inbox: Vec<Value> = molecule_testkit::until_ok("the result rows", Duration::from_secs(10), || async {
            let activity: Value = test::call_and_read_body_json(
                &app,
                test::TestRequest::get()
                    .uri(&format!("/workspaces/{}/activity?limit=100", caller.id))
                    .insert_header(bearer(&caller.token))
                    .to_request(),
            )
            .await;
            let rows = activity.as_array().unwrap();
            if rows
                .iter()
                .any(|r| r["method"] == "delegate_result" && r["activity_type"] == "delegation")
            {
                Ok(rows
                    .iter()
                    .filter(|r| r["activity_type"] == "a2a_receive")
                    .cloned()
                    .collect())
            } else {
                Err("no delegate_result row yet".into())
            }
        })
        .await;
        assert_eq!(
            inbox.len(),
            usize::from(inbox_push),
            "inbox_push={inbox_push}: {inbox:?}"
        );
    }
}
