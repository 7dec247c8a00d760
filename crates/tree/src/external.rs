//! External agents' credentials: the connection payload an operator hands to an agent running
//! outside the platform, rotating its credentials, and showing the payload again without one.
//!
//! Owns: the one builder of that payload (create, rotate and connection all use it), and the
//! rule that these are for `external` workspaces only (a provisioned workload gets its token
//! from the dispatcher at every provision). Must not know: HTTP, or how an agent is run.

use diesel_async::AsyncConnection;
use molecule_domain::{EventType, Runtime, Vocabulary};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::{Tree, events, tokens};

/// What the payload shows in place of a token it does not hold (the connection view).
pub const TOKEN_NOT_SHOWN: &str = "";
/// The placeholder the snippets carry when the payload shows no token.
const TOKEN_PLACEHOLDER: &str = "<ROTATE_TO_REVEAL_TOKEN>";

impl Tree {
    /// The connection payload of workspace `id`: where the platform is, the absolute register
    /// and heartbeat endpoints, and ready-to-run snippets. `token` is empty when it is not
    /// shown (the snippets then carry a placeholder).
    pub fn connection_payload(&self, id: Uuid, token: &str) -> Value {
        let base = self.config.platform_url.trim_end_matches('/');
        let register = format!("{base}/registry/register");
        let heartbeat = format!("{base}/registry/heartbeat");
        let shown = if token.is_empty() { TOKEN_PLACEHOLDER } else { token };
        let curl = format!(
            "curl -sS -X POST {register} -H 'Authorization: Bearer {shown}' -H 'Content-Type: application/json' \
             -d '{{\"id\":\"{id}\",\"url\":\"<YOUR_AGENT_URL>\",\"agent_card\":{{\"name\":\"my-agent\"}}}}'"
        );
        let python = format!(
            "import requests\n\
             PLATFORM_URL = \"{base}\"\n\
             WORKSPACE_ID = \"{id}\"\n\
             TOKEN = \"{shown}\"\n\
             headers = {{\"Authorization\": f\"Bearer {{TOKEN}}\"}}\n\
             requests.post(f\"{{PLATFORM_URL}}/registry/register\", headers=headers, timeout=10,\n\
             \x20             json={{\"id\": WORKSPACE_ID, \"url\": \"<YOUR_AGENT_URL>\", \"agent_card\": {{\"name\": \"my-agent\"}}}}).raise_for_status()\n\
             # then every 30 s:\n\
             requests.post(f\"{{PLATFORM_URL}}/registry/heartbeat\", headers=headers, timeout=10,\n\
             \x20             json={{\"workspace_id\": WORKSPACE_ID}}).raise_for_status()\n"
        );
        let mcp = format!("{base}/workspaces/{id}/mcp");
        // Snippets that write configuration refuse to run with the placeholder (a config
        // holding it would fail later, far from the cause); none appends to a config file
        // (a re-run would duplicate a table or block), and none asks for MOLECULE_ORG_ID
        // (the agent never reads it).
        let guard = format!(
            "MOLECULE_WORKSPACE_TOKEN='{shown}'\n\
             case \"$MOLECULE_WORKSPACE_TOKEN\" in '<'*) echo 'rotate the credentials first (POST /workspaces/{id}/external/rotate)' >&2; exit 1;; esac\n"
        );
        let universal_mcp = json!({
            "mcpServers": {
                "molecule": {
                    "type": "http",
                    "url": mcp,
                    "headers": { "Authorization": format!("Bearer {shown}") }
                }
            }
        });
        let universal_mcp = serde_json::to_string_pretty(&universal_mcp).unwrap_or_default();
        let claude_code = format!(
            "{guard}claude mcp add --transport http molecule {mcp} \\\n  --header \"Authorization: Bearer $MOLECULE_WORKSPACE_TOKEN\"\n\
             # then, in Claude Code: /mcp lists molecule with its memory and delegation tools\n"
        );
        let codex = format!(
            "# Open ~/.codex/config.toml in your editor and paste this table once (a second copy\n\
             # of [mcp_servers.molecule] makes the file unreadable to codex):\n\
             #\n\
             # [mcp_servers.molecule]\n\
             # url = \"{mcp}\"\n\
             # bearer_token_env_var = \"MOLECULE_WORKSPACE_TOKEN\"\n\
             #\n\
             # then start codex with the token in its environment:\n\
             {guard}export MOLECULE_WORKSPACE_TOKEN\ncodex\n"
        );
        let hermes = format!(
            "# In ~/.hermes/config.yaml, under your existing mcp_servers: block (add the block if\n\
             # there is none; never a second one), add:\n\
             #\n\
             #   molecule:\n\
             #     url: \"{mcp}\"\n\
             #     headers:\n\
             #       Authorization: \"Bearer {shown}\"\n\
             #\n\
             # then restart the hermes gateway so it loads the server.\n"
        );
        let openclaw = format!(
            "{guard}openclaw mcp set molecule \"{{\\\"url\\\":\\\"{mcp}\\\",\\\"headers\\\":{{\\\"Authorization\\\":\\\"Bearer $MOLECULE_WORKSPACE_TOKEN\\\"}}}}\"\n\
             # run the gateway so it outlives this terminal (systemd is the right home in production):\n\
             nohup openclaw gateway > ~/.openclaw-gateway.log 2>&1 &\ndisown\n"
        );
        json!({
            "workspace_id": id,
            "platform_url": base,
            "auth_token": token,
            "registry_endpoint": register,
            "heartbeat_endpoint": heartbeat,
            "mcp_endpoint": mcp,
            "curl_register_template": curl,
            "python_snippet": python,
            "universal_mcp_snippet": universal_mcp,
            "claude_code_channel_snippet": claude_code,
            "codex_snippet": codex,
            "hermes_channel_snippet": hermes,
            "openclaw_snippet": openclaw,
        })
    }

    /// `POST /workspaces/:id/external/rotate`: revokes every live token of the external
    /// workspace, mints one and records `EXTERNAL_CREDENTIALS_ROTATED` (without the token), in
    /// one transaction; answers the full payload. The old token stops working at once.
    pub async fn rotate_external(&self, id: Uuid) -> Result<Value> {
        self.require_external(id).await?;
        let mut conn = self.pool.get().await?;
        let minted = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let minted = tokens::issue(conn, id, tokens::Issue::Replacing).await?;
                events::record(
                    conn,
                    EventType::ExternalCredentialsRotated,
                    Some(id),
                    json!({ "token_prefix": minted.auth_token.chars().take(8).collect::<String>() }),
                )
                .await?;
                Ok(minted)
            })
            .await?;
        Ok(self.connection_payload(id, &minted.auth_token))
    }

    /// `GET /workspaces/:id/external/connection`: the payload with an empty token, for an
    /// operator who needs the URLs or a snippet again without cutting off the live agent.
    pub async fn external_connection(&self, id: Uuid) -> Result<Value> {
        self.require_external(id).await?;
        Ok(self.connection_payload(id, TOKEN_NOT_SHOWN))
    }

    /// 404 for an unknown or removed workspace, 400 with the way to go for one that is not
    /// external.
    async fn require_external(&self, id: Uuid) -> Result<()> {
        let w = self.get_workspace(id).await?;
        if w.status == molecule_domain::WorkspaceStatus::Removed {
            return Err(ServiceError::NotFound(format!("workspace {id} not found")));
        }
        if w.runtime != Runtime::External {
            return Err(ServiceError::invalid(
                "id",
                format!(
                    "workspace {id} is not external (runtime {}): its workload gets a fresh token at every provision; use POST /workspaces/{id}/restart",
                    w.runtime.as_str()
                ),
            ));
        }
        Ok(())
    }
}
