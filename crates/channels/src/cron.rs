//! `cron`: the scheduler's chat hooks (the original's Slack hooks, B §1.10).
//!
//! Owns: the ambient context a schedule's prompt starts with (the last ten people's messages
//! of the workspace's first enabled Slack channel in bot mode, oldest first, each cut to 200
//! characters), and the auto-post of a schedule's answer (cut to 500 characters) to every
//! enabled Slack channel of the workspace, budget-checked as any outbound message. Telegram is
//! left out, as in the original.
//!
//! Must not know: the schedules' table, how a fire is delivered.

use molecule_domain::ChannelType;
use uuid::Uuid;

use crate::store;

/// The most characters of an answer the auto-post carries.
const AUTO_POST_CHARS: usize = 500;
/// Messages of ambient context.
const CONTEXT_MESSAGES: usize = 10;

impl crate::Channels {
    async fn slack_rows(&self, workspace_id: Uuid) -> molecule_tree::Result<Vec<store::Row>> {
        let mut conn = self.pool().get().await?;
        Ok(store::list(&mut conn, workspace_id)
            .await?
            .into_iter()
            .filter(|r| r.enabled && r.kind().ok() == Some(ChannelType::Slack))
            .collect())
    }

    /// `[Slack channel context — recent team messages]` and the lines, or `None` when the
    /// workspace has no Slack channel in bot mode or Slack could not be read.
    pub async fn ambient_context(&self, workspace_id: Uuid) -> Option<String> {
        let row = match self.slack_rows(workspace_id).await {
            Ok(rows) => rows.into_iter().next()?,
            Err(e) => {
                tracing::warn!(workspace_id = %workspace_id, error = %e.chain(), "slack context not read");
                return None;
            }
        };
        let config = self.open(&row).ok()?;
        let recent = match crate::slack::recent(&self.inner.shared.vendors, &config, CONTEXT_MESSAGES).await {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(channel_id = %row.id, error = %e, "slack context not read; the prompt goes without it");
                return None;
            }
        };
        if recent.is_empty() {
            return None;
        }
        let lines: Vec<String> = recent
            .into_iter()
            .map(|(who, text)| format!("- {who}: {text}"))
            .collect();
        Some(format!(
            "[Slack channel context — recent team messages]\n{}",
            lines.join("\n")
        ))
    }

    /// Posts a schedule's answer (`body`: the agent's raw answer) to the workspace's Slack
    /// channels.
    pub async fn auto_post(&self, workspace_id: Uuid, body: Vec<u8>) {
        let parsed = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        let text = crate::inbound::reply_text(&parsed);
        if text.trim().is_empty() {
            return;
        }
        let text = if text.chars().count() > AUTO_POST_CHARS {
            format!("{}...", text.chars().take(AUTO_POST_CHARS - 3).collect::<String>())
        } else {
            text
        };
        let rows = match self.slack_rows(workspace_id).await {
            Ok(rows) => rows,
            Err(e) => {
                return tracing::warn!(workspace_id = %workspace_id, error = %e.chain(), "schedule answer not posted");
            }
        };
        for row in rows {
            if !self.take_budget(row.id).await {
                tracing::info!(channel_id = %row.id, "schedule answer not posted: the channel's budget is spent");
                continue;
            }
            if let Err(e) = self.send_everywhere(&row, &text).await {
                tracing::warn!(channel_id = %row.id, error = %e.chain(), "schedule answer not posted");
            }
        }
    }
}
