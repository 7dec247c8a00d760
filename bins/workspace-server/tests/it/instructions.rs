//! Platform instructions end to end: the operator writes rules, the reference agent (local
//! backend) reads them at boot with its own token and puts them first in its system prompt;
//! a restart picks up a rule added since; asked by a message, it requests approval and waits
//! on `/ws` for the operator's decision. The routes refuse what the original let through.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use molecule_testkit::client::text;
use molecule_testkit::{TestDb, until_ok};
use serde_json::json;

use crate::common;
use crate::messaging::{reference_agent, said, user_message};

const ADMIN: &str = "instructions-admin";

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_agent_reads_its_instructions_at_boot() {
    let Some(agent_bin) = reference_agent() else { return };
    let db = TestDb::new().await;
    let data = tempfile::tempdir().unwrap();
    let server = common::start_replica(&db.url, ADMIN, &common::local_agents(&agent_bin, data.path()));
    let api = server.api();
    api.ready().await;
    api.admin_post(
        "/instructions",
        &json!({ "scope": "global", "title": "Be brief", "content": "Answer in one line.", "priority": 5 }),
    )
    .await
    .expect(201);

    let id = text(&api.create(&json!({ "name": "reader" })).await, "id");
    let prompt = |expect: &'static str| {
        let (api, id) = (&api, &id);
        async move {
            until_ok("the agent's system prompt", Duration::from_secs(30), || async {
                let answer = api.a2a(id, ADMIN, &user_message("system-prompt")).await;
                match said(&answer.body) {
                    Some(p) if p.contains(expect) => Ok(p.to_owned()),
                    other => Err(format!("{} {other:?}", answer.status)),
                }
            })
            .await
        }
    };
    let first = prompt("## Platform-Wide Rules").await;
    assert!(
        first.starts_with("# Platform Instructions\n\n## Platform-Wide Rules\n\n### Be brief\nAnswer in one line.\n"),
        "{first}"
    );
    assert!(!first.contains("Role-Specific"), "{first}");

    // A rule for this workspace alone, read at its next boot.
    api.admin_post(
        "/instructions",
        &json!({ "scope": "workspace", "scope_target": id, "title": "You review", "content": "Review pull requests." }),
    )
    .await
    .expect(201);
    api.admin_action(&format!("/workspaces/{id}/restart")).await.expect(200);
    let second = prompt("## Role-Specific Rules").await;
    assert!(second.contains("### You review\nReview pull requests."), "{second}");
    assert!(
        second.find("Platform-Wide") < second.find("Role-Specific"),
        "global rules first: {second}"
    );

    // The same agent asks for approval and waits on /ws; the operator decides.
    let asking = tokio::spawn({
        let (api, id) = (api.clone(), id.clone());
        async move { api.a2a(&id, ADMIN, &user_message("approval:deploy")).await }
    });
    let pending = until_ok("the agent's approval request", Duration::from_secs(30), || async {
        let list = api.admin_get("/approvals/pending").await.expect(200);
        match list.as_array().unwrap().first() {
            Some(r) if r["workspace_id"] == id.as_str() => Ok(r.clone()),
            _ => Err(format!("none yet: {list}")),
        }
    })
    .await;
    assert_eq!(pending["action"], "deploy");
    let approval = text(&pending, "id");
    api.admin_post(
        &format!("/workspaces/{id}/approvals/{approval}/decide"),
        &json!({ "decision": "denied", "decided_by": "ops-on-call" }),
    )
    .await
    .expect(200);
    let answer = tokio::time::timeout(Duration::from_secs(30), asking)
        .await
        .expect("the agent answered once it heard the decision")
        .unwrap()
        .ok();
    assert_eq!(
        said(&answer),
        Some(format!("approval {approval}: denied by ops-on-call").as_str()),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_routes_refuse_what_the_original_let_through() {
    let db = TestDb::new().await;
    let server = common::start_replica(&db.url, ADMIN, &[]);
    let api = server.api();
    api.ready().await;
    let ws = api.external("w").await;
    let other = api.external("other").await;

    for (body, field) in [
        (json!({ "scope": "team", "title": "t", "content": "c" }), "scope"),
        (
            json!({ "scope": "global", "scope_target": ws.id, "title": "t", "content": "c" }),
            "scope_target",
        ),
        (
            json!({ "scope": "workspace", "title": "t", "content": "c" }),
            "scope_target",
        ),
        (json!({ "scope": "global", "content": "c" }), "title"),
        (
            json!({ "scope": "global", "title": "t", "content": "c", "colour": "red" }),
            "colour",
        ),
    ] {
        let refused = api.admin_post("/instructions", &body).await.expect(400);
        assert!(refused.to_string().contains(field), "{body} → {refused}");
    }
    let made = api
        .admin_post(
            "/instructions",
            &json!({ "scope": "workspace", "scope_target": ws.id, "title": "t", "content": "c" }),
        )
        .await
        .expect(201);
    let rule = text(&made, "id");
    api.post(
        "/instructions",
        &ws.token,
        &json!({ "scope": "global", "title": "t", "content": "c" }),
    )
    .await
    .expect(401);

    // Non-UUID ids are 404 (the original: 500); scope cannot change.
    api.put("/instructions/nope", ADMIN, &json!({ "title": "x" }))
        .await
        .expect(404);
    api.delete("/instructions/nope", ADMIN).await.expect(404);
    let moved = api
        .put(&format!("/instructions/{rule}"), ADMIN, &json!({ "scope": "global" }))
        .await
        .expect(400);
    assert!(moved.to_string().contains("scope"), "{moved}");
    let updated = api
        .put(&format!("/instructions/{rule}"), ADMIN, &json!({ "priority": 2 }))
        .await
        .expect(200);
    assert_eq!(updated, json!({ "status": "updated" }));

    let for_ws = api
        .admin_get(&format!("/instructions?workspace_id={}", ws.id))
        .await
        .expect(200);
    assert_eq!(for_ws[0]["priority"], 2);
    api.admin_get("/instructions?workspace_id=nope").await.expect(400);
    api.admin_get("/instructions?scope=team").await.expect(400);

    // Resolve: the workspace's own token; another's is refused, none is 401.
    let path = format!("/workspaces/{}/instructions/resolve", ws.id);
    let mine = api.get(&path, &ws.token).await.expect(200);
    assert_eq!(mine["workspace_id"], ws.id.as_str());
    assert!(mine["instructions"].as_str().unwrap().contains("### t\nc"), "{mine}");
    api.get(&path, &other.token).await.expect(403);
    api.call(reqwest::Method::GET, &path, None, None).await.expect(401);
    let theirs = api
        .get(&format!("/workspaces/{}/instructions/resolve", other.id), &other.token)
        .await
        .expect(200);
    assert_eq!(theirs["instructions"], "", "another workspace's rule does not apply");

    api.delete(&format!("/instructions/{rule}"), ADMIN).await.expect(200);
    api.delete(&format!("/instructions/{rule}"), ADMIN).await.expect(404);
}
