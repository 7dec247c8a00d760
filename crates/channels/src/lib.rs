//! `molecule-channels`: people talking to agents from chat (Telegram, Slack, Lark/Feishu,
//! Discord) and GitHub events waking them.
//!
//! Owns:
//! - the adapters behind one trait ([`adapter::Adapter`]: config schema and checks, inbound
//!   verification and parsing, sending with each vendor's chunking, typing), one module per
//!   vendor ([`telegram`], [`slack`], [`lark`], [`discord`]) and which serves which
//!   ([`catalogue`]), their HTTP client and base URLs ([`vendor`]), [`verify`] and [`chunk`];
//! - the `workspace_channels` and `channel_messages` tables ([`store`]);
//! - [`Channels`], the use-cases: the CRUD with sensitive fields sealed by the keyring and
//!   masked in every answer (`manage`), Send, Test and Discover, inbound messages from
//!   verification to the reply, including a reply the A2A queue delivers later (`inbound`),
//!   one Telegram poller per row across replicas under a lease (`poller`), the GitHub webhook
//!   ([`github`]), org templates' `channels:` (`manage`), and the scheduler's Slack hooks
//!   (`cron`: ambient context before a prompt, the answer posted back).
//!
//! Must not know: HTTP frameworks, how a message reaches an agent (the composer hands in a
//! [`Deliver`]: messaging's A2A proxy with its durable queue), the schedules' table (GitHub's
//! trigger is a [`Trigger`] handed in).

pub mod adapter;
pub mod catalogue;
pub mod chunk;
mod cron;
pub mod discord;
pub mod github;
mod inbound;
pub mod lark;
mod manage;
mod poller;
pub mod slack;
pub mod store;
pub mod telegram;
pub mod vendor;
pub mod verify;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use molecule_api::a2a::ProxyOutcome;
use molecule_secrets::{Keyring, SecretString};
use molecule_tree::{Result, Tree};
use serde_json::Value;
use uuid::Uuid;

pub use inbound::{InboundOutcome, MAX_BODY_BYTES, QueueAnswer};
pub use manage::{ImportedChannel, OrgChannel};

/// Sends an A2A body to a workspace as a system caller (`channel:<type>`, `webhook:github`):
/// the proxy's checks, its queue for a busy agent.
pub type Deliver = Arc<dyn Fn(Uuid, Value, String) -> BoxFuture<'static, Result<ProxyOutcome>> + Send + Sync>;

/// Makes a workspace's enabled schedules whose name contains one of the patterns due now
/// (GitHub's `issues opened` and `pull_request_review submitted`): how many.
pub type Trigger = Arc<dyn Fn(Uuid, &'static [&'static str]) -> BoxFuture<'static, Result<usize>> + Send + Sync>;

/// The channels' knobs.
#[derive(Clone, Default)]
pub struct Settings {
    /// `DISCORD_APP_PUBLIC_KEY`: the key of Discord rows without their own `public_key`.
    pub discord_public_key: Option<String>,
    /// `GITHUB_WEBHOOK_SECRET` (unset: the GitHub webhook answers 503).
    pub github_secret: Option<SecretString>,
    /// `CHANNEL_POLLER_LEASE_SECONDS`: how long a dead replica's Telegram poller holds its row.
    pub poller_lease: Duration,
    /// How long one `getUpdates` waits (Telegram's long poll).
    pub poll_wait: Duration,
    /// Where vendors reach this server (`EXTERNAL_PLATFORM_URL`): the inbound URL shown for a
    /// row and given to Telegram's `setWebhook`.
    pub public_url: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("discord_public_key", &self.discord_public_key.is_some())
            .field("github_secret", &self.github_secret.is_some())
            .field("poller_lease", &self.poller_lease)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// Default lease of a Telegram poller.
pub const DEFAULT_POLLER_LEASE: Duration = Duration::from_secs(15);
/// Default long-poll wait (shorter than the original's 30 s so a config change or a lost
/// lease is seen quickly; Telegram answers at once when an update waits).
pub const DEFAULT_POLL_WAIT: Duration = Duration::from_secs(10);

/// What every [`Channels`] handle of a process shares: the vendors' client, the knobs, and
/// this replica's pollers. One per process.
pub struct Shared {
    vendors: vendor::Vendors,
    settings: Settings,
    /// This process, as a poller lease holder.
    replica: Uuid,
    pollers: Mutex<HashMap<Uuid, poller::Running>>,
}

impl Shared {
    pub fn new(vendors: vendor::Vendors, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            vendors,
            settings,
            replica: Uuid::new_v4(),
            pollers: Mutex::new(HashMap::new()),
        })
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("replica", &self.replica)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The channels' use-cases. Cheap to build and clone: the composer builds one over the
/// current tree and proxy whenever it is asked, around the process's one [`Shared`].
#[derive(Clone)]
pub struct Channels {
    inner: Arc<Inner>,
}

struct Inner {
    tree: Tree,
    keyring: Arc<Keyring>,
    deliver: Deliver,
    trigger: Option<Trigger>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels").field("shared", &self.inner.shared).finish()
    }
}

impl Channels {
    pub fn new(
        tree: Tree,
        keyring: Arc<Keyring>,
        deliver: Deliver,
        trigger: Option<Trigger>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                tree,
                keyring,
                deliver,
                trigger,
                shared,
            }),
        }
    }

    fn pool(&self) -> &molecule_db::Pool {
        self.inner.tree.pool()
    }
}

/// Removed workspaces' channels are disabled (their pollers stop, their webhooks answer 401),
/// whichever path removed them: the tree calls every hook's `stop` with the removed ids.
#[derive(Clone)]
pub struct RemovalHook(pub molecule_db::Pool);

impl std::fmt::Debug for RemovalHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemovalHook")
    }
}

#[async_trait::async_trait]
impl molecule_tree::WorkloadHooks for RemovalHook {
    async fn stop(&self, ids: &[Uuid]) -> Vec<molecule_api::hooks::StopFailure> {
        let done = async {
            let mut conn = self.0.get().await?;
            let mut n = 0;
            for id in ids {
                n += store::disable_workspace(&mut conn, *id, "the workspace was removed").await?;
            }
            Ok::<_, molecule_tree::ServiceError>(n)
        }
        .await;
        match done {
            Ok(0) => {}
            Ok(n) => tracing::info!(disabled = n, "channels: removed workspaces' channels disabled"),
            Err(e) => tracing::error!(error = %e.chain(), "channels: could not disable removed workspaces' channels"),
        }
        Vec::new()
    }
}
