//! The key/value memory routes and the `/v2` memory routes over HTTP: the original's shapes
//! and status codes, and the `/v2` routes under the same ACL as the MCP tools.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::json;

use crate::mcp::world;

#[tokio::test(flavor = "multi_thread")]
async fn key_value_memory_over_http() {
    let w = world(false).await;
    let ws = w.create("kv", None).await;
    let other = w.create("kv-other", None).await;
    let path = format!("/workspaces/{}/memory", ws.id);

    let v1 = w
        .api
        .post(&path, &ws.token, &json!({ "key": "plan", "value": { "step": 1 } }))
        .await
        .expect(200);
    assert_eq!(v1, json!({ "status": "ok", "key": "plan", "version": 1 }));
    let clash = w
        .api
        .post(
            &path,
            &ws.token,
            &json!({ "key": "plan", "value": 2, "if_match_version": 0 }),
        )
        .await
        .expect(409);
    assert_eq!(
        clash,
        json!({ "error": "if_match_version mismatch", "expected_version": 0, "current_version": 1 })
    );
    w.api
        .post(
            &path,
            &ws.token,
            &json!({ "key": "plan", "value": 2, "if_match_version": 1 }),
        )
        .await
        .expect(200);
    w.api
        .post(
            &path,
            &ws.token,
            &json!({ "key": "brief", "value": "x", "ttl_seconds": 3600 }),
        )
        .await
        .expect(200);
    for (body, field) in [
        (json!({ "key": "no-value" }), "value"),
        (json!({ "key": "a/b", "value": 1 }), "key"),
        (json!({ "key": "k", "value": 1, "ttl": 5 }), "ttl"),
    ] {
        let refused = w.api.post(&path, &ws.token, &body).await.expect(400);
        assert!(refused.to_string().contains(field), "{body} → {refused}");
    }

    let list = w.api.get(&path, &ws.token).await.expect(200);
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["key"].as_str())
        .collect();
    assert_eq!(keys, ["brief", "plan"]);
    assert!(list[0]["expires_at"].is_string(), "{list}");
    assert!(
        list[1].get("expires_at").is_none(),
        "omitted when it does not expire: {list}"
    );
    let one = w.api.get(&format!("{path}/plan"), &ws.token).await.expect(200);
    assert_eq!((one["value"].clone(), one["version"].clone()), (json!(2), json!(2)));
    w.api.get(&format!("{path}/nope"), &ws.token).await.expect(404);
    w.api.get(&format!("{path}/plan"), &other.token).await.expect(403);
    assert_eq!(
        w.api.delete(&format!("{path}/plan"), &ws.token).await.expect(200),
        json!({ "status": "deleted" })
    );
    w.api.delete(&format!("{path}/plan"), &ws.token).await.expect(200);

    // Without a plugin, the /v2 routes say what to set.
    let v2 = w
        .api
        .get(&format!("/workspaces/{}/v2/namespaces", ws.id), &ws.token)
        .await
        .expect(503);
    assert!(v2.to_string().contains("MEMORY_PLUGIN_URL"), "{v2}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_v2_routes_follow_the_mcp_tools_rules() {
    let w = world(true).await;
    let root = w.create("v2-root", None).await;
    let child = w.create("v2-child", Some(&root)).await;
    let stranger = w.create("v2-stranger", None).await;

    let spaces = w
        .api
        .get(&format!("/workspaces/{}/v2/namespaces", child.id), &child.token)
        .await
        .expect(200);
    let readable: Vec<&str> = spaces["readable"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    let own = format!("workspace:{}", child.id);
    assert!(readable.contains(&own.as_str()), "{spaces}");
    let mine = spaces["readable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == own.as_str())
        .unwrap();
    assert_eq!(mine["kind"], "workspace");
    assert_eq!(mine["label"], "Workspace (v2-child)", "{spaces}");
    assert!(
        spaces["writable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == own.as_str())
    );

    w.api
        .post(
            &format!("/workspaces/{}/memories", child.id),
            &child.token,
            &json!({ "content": "the build runs on Tuesdays", "scope": "LOCAL" }),
        )
        .await
        .expect(201);
    let found = w
        .api
        .get(
            &format!("/workspaces/{}/v2/memories?q=Tuesdays&kind=fact", child.id),
            &child.token,
        )
        .await
        .expect(200);
    let memories = found["memories"].as_array().unwrap();
    assert_eq!(memories.len(), 1, "{found}");
    assert_eq!(memories[0]["namespace"], own.as_str());
    assert_eq!(memories[0]["kind"], "fact");
    let id = memories[0]["id"].as_str().unwrap().to_owned();

    // A namespace the workspace may not read is refused, as by the MCP tool (the original
    // answered an empty list).
    let foreign = format!(
        "/workspaces/{}/v2/memories?namespace=workspace:{}",
        child.id, stranger.id
    );
    let refused = w.api.get(&foreign, &child.token).await.expect(403);
    assert!(refused.to_string().contains("cannot read namespace"), "{refused}");
    w.api
        .get(
            &format!("/workspaces/{}/v2/memories?kind=opinion", child.id),
            &child.token,
        )
        .await
        .expect(400);
    w.api
        .get(&format!("/workspaces/{}/v2/memories?limit=500", child.id), &child.token)
        .await
        .expect(400);

    let forget = format!("/workspaces/{}/v2/memories/{id}", child.id);
    assert_eq!(
        w.api.delete(&forget, &child.token).await.expect(200),
        json!({ "status": "deleted" })
    );
    w.api.delete(&forget, &child.token).await.expect(404);
}
