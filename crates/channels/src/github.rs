//! `github`: GitHub's webhook (`/webhooks/github`, `/webhooks/github/:id`).
//!
//! Owns: the checks (`GITHUB_WEBHOOK_SECRET` set, else 503; `X-Hub-Signature-256` over the
//! body, else 401), the two schedule triggers (`issues` `opened` makes the workspace's
//! `pick-up-work` schedules due now, `pull_request_review` `submitted` its `pr review` and
//! `security review` ones: the path's workspace only, where the original woke every
//! workspace's), and the three events forwarded to the agent as caller `webhook:github`
//! (`issue_comment` and `pull_request_review_comment` `created`, a `workflow_run` that
//! `completed` and did not pass), each with the original's text and metadata.
//!
//! Must not know: HTTP frameworks, the schedules' table (a [`crate::Trigger`]).

use molecule_api::a2a::ProxyOutcome;
use molecule_secrets::ExposeSecret;
use molecule_tree::{Result, ServiceError};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::adapter::Headers;

/// How the webhook is answered.
#[derive(Debug)]
pub enum GithubOutcome {
    /// This status and JSON.
    Status(u16, Value),
    /// The agent's own answer, as the A2A proxy gives it.
    Forwarded(ProxyOutcome),
}

const PICK_UP_WORK: &[&str] = &["pick-up-work"];
const REVIEWS: &[&str] = &["pr review", "security review"];

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

impl crate::Channels {
    /// One GitHub delivery.
    pub async fn github(&self, path_workspace: Option<Uuid>, headers: &Headers, body: &[u8]) -> Result<GithubOutcome> {
        let Some(secret) = &self.inner.shared.settings.github_secret else {
            return Ok(GithubOutcome::Status(
                503,
                json!({ "error": "github webhook secret is not configured (set GITHUB_WEBHOOK_SECRET)" }),
            ));
        };
        if let Err(why) = crate::verify::github(
            secret.expose_secret().trim().as_bytes(),
            headers.get("X-Hub-Signature-256"),
            body,
        ) {
            tracing::info!(reason = %why, "github webhook refused");
            return Ok(GithubOutcome::Status(
                401,
                json!({ "error": "invalid webhook signature" }),
            ));
        }
        let event = headers.get("X-GitHub-Event").unwrap_or_default().to_owned();
        let delivery = headers.get("X-GitHub-Delivery").unwrap_or_default().to_owned();
        let payload: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Ok(bad(&event, "not a JSON object")),
            Err(e) => return Ok(bad(&event, &e.to_string())),
        };
        let action = s(&payload, "/action").to_owned();
        let workspace =
            match path_workspace {
                Some(id) => Some(id),
                None => match payload.get("workspace_id").and_then(Value::as_str) {
                    Some(raw) => Some(raw.parse::<Uuid>().map_err(|_| {
                        ServiceError::invalid("workspace_id", "workspace_id must be a workspace's UUID")
                    })?),
                    None => None,
                },
            };
        let ignored = |reason: &str| {
            Ok(GithubOutcome::Status(
                202,
                json!({ "status": "ignored", "reason": reason }),
            ))
        };
        let trigger = |patterns: &'static [&'static str]| {
            let (event, action) = (event.clone(), action.clone());
            async move {
                let Some(ws) = workspace else {
                    return Ok(GithubOutcome::Status(400, json!({ "error": "missing workspace id" })));
                };
                let Some(trigger) = &self.inner.trigger else {
                    return Ok(GithubOutcome::Status(
                        503,
                        json!({ "error": "schedules are not available" }),
                    ));
                };
                let n = trigger(ws, patterns).await?;
                Ok(GithubOutcome::Status(
                    200,
                    json!({ "status": "triggered", "event": event, "action": action, "schedules_affected": n }),
                ))
            }
        };
        match event.as_str() {
            "issues" if action == "opened" => return trigger(PICK_UP_WORK).await,
            "issues" => return ignored("only issues action=opened triggers crons"),
            "pull_request_review" if action == "submitted" => return trigger(REVIEWS).await,
            "pull_request_review" => return ignored("only pull_request_review action=submitted triggers crons"),
            _ => {}
        }
        let repo = s(&payload, "/repository/full_name");
        let sender = s(&payload, "/sender/login");
        let mut meta = Map::new();
        for (k, v) in [
            ("source", "github"),
            ("event", event.as_str()),
            ("action", action.as_str()),
            ("delivery_id", delivery.as_str()),
            ("repository", repo),
            ("sender", sender),
        ] {
            meta.insert(k.into(), json!(v));
        }
        let text = match (event.as_str(), action.as_str()) {
            ("issue_comment", "created") => {
                let n = payload.pointer("/issue/number").cloned().unwrap_or(Value::Null);
                meta.insert("issue_number".into(), n.clone());
                meta.insert("comment_url".into(), json!(s(&payload, "/comment/html_url")));
                format!(
                    "GitHub issue_comment event (created) in {repo} issue #{n} by {}:\n{}",
                    s(&payload, "/comment/user/login"),
                    s(&payload, "/comment/body").trim()
                )
            }
            ("pull_request_review_comment", "created") => {
                let n = payload.pointer("/pull_request/number").cloned().unwrap_or(Value::Null);
                meta.insert("pull_request_num".into(), n.clone());
                meta.insert("comment_url".into(), json!(s(&payload, "/comment/html_url")));
                format!(
                    "GitHub pull_request_review_comment event (created) in {repo} PR #{n} by {}:\n{}",
                    s(&payload, "/comment/user/login"),
                    s(&payload, "/comment/body").trim()
                )
            }
            ("workflow_run", "completed")
                if !matches!(
                    s(&payload, "/workflow_run/conclusion"),
                    "success" | "skipped" | "neutral"
                ) =>
            {
                let run = payload.get("workflow_run").cloned().unwrap_or(Value::Null);
                let sha: String = s(&run, "/head_sha").chars().take(7).collect();
                let actor = match s(&run, "/triggering_actor/login").trim() {
                    "" => sender,
                    login => login,
                };
                for (k, p) in [
                    ("run_id", "/id"),
                    ("run_number", "/run_number"),
                    ("workflow_name", "/name"),
                    ("conclusion", "/conclusion"),
                    ("head_branch", "/head_branch"),
                    ("head_sha", "/head_sha"),
                    ("run_url", "/html_url"),
                    ("trigger_event", "/event"),
                ] {
                    meta.insert(k.into(), run.pointer(p).cloned().unwrap_or(Value::Null));
                }
                format!(
                    "GitHub CI break — workflow '{}' run #{} {} on {}@{sha}\nTriggered by: {} ({})\nRepo: {repo}\nRun URL: {}",
                    s(&run, "/name"),
                    run.get("run_number").cloned().unwrap_or(Value::Null),
                    s(&run, "/conclusion"),
                    s(&run, "/head_branch"),
                    actor,
                    s(&run, "/event"),
                    s(&run, "/html_url"),
                )
            }
            _ => return ignored("unsupported event type"),
        };
        let Some(ws) = workspace else {
            return Ok(GithubOutcome::Status(400, json!({ "error": "missing workspace id" })));
        };
        let body = json!({ "method": "message/send", "params": {
            "message": { "role": "user", "messageId": format!("github-{}", if delivery.is_empty() { Uuid::new_v4().to_string() } else { delivery.clone() }),
                         "parts": [{ "kind": "text", "text": text }] },
            "metadata": meta } });
        let out = (self.inner.deliver)(ws, body, "webhook:github".into()).await?;
        Ok(GithubOutcome::Forwarded(out))
    }
}

fn bad(event: &str, why: &str) -> GithubOutcome {
    GithubOutcome::Status(400, json!({ "error": format!("invalid {event} payload: {why}") }))
}
