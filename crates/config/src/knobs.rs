//! The documented knobs. docs/configuration.md's table is checked against these lists by a
//! test in `bins/workspace-server`, and every config field must appear here.

/// One configuration knob.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    /// Environment variable (the TOML key is the same name in lower case).
    pub env: &'static str,
    /// Default, as an operator would write it.
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn k(env: &'static str, default: &'static str, meaning: &'static str) -> Knob {
    Knob { env, default, meaning }
}

/// Knobs read by both binaries.
pub const SHARED_KNOBS: &[Knob] = &[
    k("RUST_LOG", "info", "log filter (tracing-subscriber EnvFilter syntax)"),
    k("MOLECULE_LOG_FORMAT", "pretty", "`pretty` or `json` log lines"),
    k(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "unset",
        "OTLP/HTTP collector base URL; spans are exported when set",
    ),
    k("OTEL_SERVICE_NAME", "binary name", "service.name of exported spans"),
    k(
        "MOLECULE_DB_POOL_SIZE",
        "16",
        "maximum Postgres connections per process",
    ),
    k(
        "MOLECULE_DB_CONNECT_TIMEOUT_SECONDS",
        "5",
        "wait for a connection before failing (boot fails fast on a bad URL)",
    ),
    k(
        "MOLECULE_SHUTDOWN_TIMEOUT_SECONDS",
        "30",
        "grace period for in-flight requests on SIGTERM/SIGINT",
    ),
];

/// Knobs of workspace-server.
pub const SERVER_KNOBS: &[Knob] = &[
    k(
        "DATABASE_URL",
        "postgres://dev:dev@localhost:5432/molecule?sslmode=disable",
        "the platform database. Both binaries keep named prepared statements on their pooled connections (the server its hot statements, the plugin its commit): behind PgBouncer, use session pooling, or transaction pooling with PgBouncer 1.21 or later and `max_prepared_statements` set",
    ),
    k("PORT", "8080", "HTTP port"),
    k("MOLECULE_BIND_ADDR", "0.0.0.0", "HTTP bind address"),
    k(
        "ADMIN_TOKEN",
        "unset",
        "admin bearer token; when unset, admin routes answer 503 (never open)",
    ),
    k(
        "MOLECULE_ORG_ID",
        "unset",
        "tenant id; when set, requests must carry a matching X-Molecule-Org-Id",
    ),
    k(
        "MOLECULE_ENV",
        "unset",
        "`production`/`prod` enables production checks; `dev`/`development` turns the rate limit off",
    ),
    k(
        "SECRETS_ENCRYPTION_KEY",
        "unset",
        "AES-256-GCM key for workspace secrets (base64 of 32 bytes, or 32 raw chars); required in production",
    ),
    k(
        "MOLECULE_ENABLE_TEST_TOKENS",
        "0",
        "`1`: `GET /admin/workspaces/:id/test-token` answers in production too (outside production it always does)",
    ),
    k(
        "SECRETS_PREVIOUS_KEYS",
        "unset",
        "older keys, comma-separated: they open values sealed under them, never seal; `workspace-server secrets rotate-key` re-seals",
    ),
    k(
        "LIVENESS_TTL_SECONDS",
        "180",
        "no heartbeat for this long marks a workspace offline",
    ),
    k(
        "LIVENESS_SWEEP_INTERVAL_SECONDS",
        "30",
        "how often the liveness sweep runs (once per cluster)",
    ),
    k(
        "PLATFORM_URL",
        "http://127.0.0.1:$PORT",
        "URL agents use to reach the platform (shown to external agents)",
    ),
    k(
        "EXTERNAL_PLATFORM_URL",
        "PLATFORM_URL",
        "URL external agents use to reach the platform, in their connection payload (trailing `/` trimmed)",
    ),
    k(
        "MOLECULE_DEPLOY_MODE",
        "unset",
        "`saas` refuses loopback agent URLs; unset means saas when MOLECULE_ORG_ID is set",
    ),
    k(
        "DELEGATION_SWEEPER_INTERVAL_S",
        "300",
        "delegation sweeper period; invalid values fall back with a warning",
    ),
    k(
        "DELEGATION_STUCK_THRESHOLD_S",
        "600",
        "no delegation heartbeat for this long marks it stuck",
    ),
    k(
        "DELEGATION_RESULT_INBOX_PUSH",
        "1",
        "`0` stops pushing delegation results into the caller's inbox",
    ),
    k(
        "DELEGATION_LEDGER_WRITE",
        "unset",
        "accepted for compatibility; the ledger is always written",
    ),
    k(
        "DELEGATION_A2A_TIMEOUT_SECONDS",
        "1800",
        "how long a callee gets to answer a delegated message/send",
    ),
    k(
        "A2A_IDLE_TIMEOUT_SECONDS",
        "300",
        "a proxied message is cancelled (and queued) after this long with no event from the target; the heartbeat's idle_timeout_seconds overrides it per workspace",
    ),
    k(
        "A2A_QUEUE_TTL_SECONDS",
        "86400",
        "a queued message not delivered within this long is dropped by the reaper",
    ),
    k(
        "A2A_QUEUE_RETENTION_SECONDS",
        "604800",
        "delivered, failed and dropped queue items are deleted this long after they finished",
    ),
    k(
        "A2A_QUEUE_LEASE_SECONDS",
        "60",
        "a replica delivering a queued message (or a delegation) holds it this long, renewing every third; a dead replica's message is delivered again after it",
    ),
    k(
        "A2A_QUEUE_REAP_INTERVAL_SECONDS",
        "60",
        "how often the queue reaper runs (one replica per tick): expired leases back to the queue, expired items dropped, old ones deleted",
    ),
    k(
        "SCHEDULER_POLL_INTERVAL_SECONDS",
        "5",
        "how often each replica's scheduler looks for due schedules (every replica fires, ten at a time; each due slot fires once across replicas): the most a fire is late, plus the send",
    ),
    k(
        "SCHEDULER_FIRE_LEASE_SECONDS",
        "60",
        "a replica firing a schedule's slot holds it this long, renewing every third; a dead replica's slot is taken over after it (fired again if its prompt had not left, recorded and not resent if it had). At least 3",
    ),
    k(
        "APPROVAL_TIMEOUT_MINUTES",
        "10",
        "how long an agent's approval request waits for a decision (the default and the most a request's `timeout_seconds` may ask); then it expires and the agent hears `APPROVAL_DECIDED` with `expired`",
    ),
    k(
        "APPROVAL_EXPIRY_INTERVAL_SECONDS",
        "15",
        "how often pending approvals past their deadline are expired (any replica; each request expires once): the most an expiry is late when no agent is waiting on it",
    ),
    k(
        "TELEGRAM_API_BASE",
        "unset (`https://api.telegram.org`)",
        "where the Telegram Bot API is (`<base>/bot<token>/<method>`): a forward proxy, or a local fake in tests",
    ),
    k(
        "SLACK_API_BASE",
        "unset (`https://slack.com`)",
        "where Slack is: the Web API (`<base>/api/<method>`) and stored Incoming Webhook URLs (`https://hooks.slack.com/…` is sent to `<base>/…`)",
    ),
    k(
        "DISCORD_API_BASE",
        "unset (`https://discord.com`)",
        "where Discord is: interaction follow-ups (`<base>/api/v10/webhooks/…`) and stored webhook URLs (sent to `<base>/api/webhooks/…`)",
    ),
    k(
        "LARK_API_BASE",
        "unset (`https://open.feishu.cn`)",
        "where Lark/Feishu is: stored custom-bot webhook URLs (either host) are sent to `<base>/open-apis/…`",
    ),
    k(
        "DISCORD_APP_PUBLIC_KEY",
        "unset",
        "the Discord application's Ed25519 public key (hex), for Discord channels without their own `public_key`",
    ),
    k(
        "GITHUB_WEBHOOK_SECRET",
        "unset",
        "the secret GitHub signs `/webhooks/github` deliveries with (`X-Hub-Signature-256`); unset: that route answers 503",
    ),
    k(
        "CHANNEL_POLLER_LEASE_SECONDS",
        "15",
        "a replica polling a Telegram channel holds it this long, renewing every third; a dead replica's channel is polled by another after it. At least 3",
    ),
    k(
        "TELEGRAM_POLL_TIMEOUT_SECONDS",
        "10",
        "how long one Telegram `getUpdates` long poll waits (1 to 50); updates arrive at once whatever it is",
    ),
    k(
        "CHANNEL_SUPERVISE_INTERVAL_SECONDS",
        "2",
        "how often each replica starts the Telegram pollers it can take (a config change or a takeover is seen within it) and the channels' sweep runs (replies a stopped replica left unsent)",
    ),
    k(
        "KV_MEMORY_SWEEP_INTERVAL_SECONDS",
        "300",
        "how often expired key/value memory entries (`/workspaces/:id/memory`) are deleted; they are invisible from the moment they expire",
    ),
    k(
        "HIBERNATION_SWEEP_INTERVAL_SECONDS",
        "60",
        "how often the idle monitor looks for workspaces idle past their hibernation_idle_minutes (one replica per tick)",
    ),
    k(
        "MOLECULE_MCP_ALLOW_SEND_MESSAGE",
        "false",
        "`true` offers agents the MCP tool `send_message_to_user` (a message on the canvas: `AGENT_MESSAGE` and an activity row)",
    ),
    k(
        "MOLECULE_MCP_CALLS_PER_MINUTE",
        "120",
        "MCP calls a minute each token may make (the original's 120); past it `POST /workspaces/:id/mcp` answers 429 with `Retry-After`",
    ),
    k(
        "METRICS_PUBLIC",
        "false",
        "`true` serves `/metrics` without a token (scrapers that cannot send one); otherwise it takes the admin token",
    ),
    k(
        "RATE_LIMIT",
        "600",
        "requests a minute per client (its token, else its address) on each replica; past it 429 with `Retry-After`; every answer carries `X-RateLimit-Limit`/`-Remaining`/`-Reset`; off when `MOLECULE_ENV` is `dev`/`development`; `/health`, `/readyz` and `/metrics` are not limited",
    ),
    k(
        "TRUSTED_PROXIES",
        "unset",
        "addresses or CIDR networks of reverse proxies whose `X-Forwarded-For` names the client for the rate limit; from anyone else the header is ignored",
    ),
    k(
        "CORS_ORIGINS",
        "http://localhost:3000,http://localhost:3001",
        "origins whose pages may call the API (comma-separated `scheme://host[:port]`, or `*`); this server's own origin always may; a malformed entry stops the boot naming it",
    ),
    k(
        "TERMINAL_MAX_SESSIONS_PER_WORKSPACE",
        "4",
        "terminals (`GET /workspaces/:id/terminal`) one workspace may have open at once on one replica; past it the upgrade answers 429",
    ),
    k(
        "TERMINAL_IDLE_TIMEOUT_SECONDS",
        "1800",
        "a terminal closes after this long with no keystroke and no output (the original's 30 minutes counted keystrokes only)",
    ),
    k(
        "MOLECULE_BACKEND",
        "docker if the engine answers, else none",
        "`docker`, `local` (development only; never chosen automatically) or `none`",
    ),
    k(
        "MOLECULE_PLATFORM_INSTANCE",
        "sha256(DATABASE_URL)[:16]",
        "label value that keeps co-resident platforms off each other's workloads",
    ),
    k(
        "MOLECULE_DOCKER_NETWORK",
        "bridge",
        "container network mode: `bridge`, `host` or a network name",
    ),
    k(
        "MOLECULE_ALLOW_PRIVILEGED_TIERS",
        "false",
        "`true` grants tiers 3 and 4 the original's host access on Docker: privileged and host PID (T3), plus host network and `/var/run/docker.sock` (T4). Off, those tiers get their limits only, and create says so in `tier_note`",
    ),
    k(
        "TIER1_MEMORY_MB",
        "512",
        "tier 1 memory limit (Docker); T1 also has a read-only rootfs, tmpfs `/tmp` and only the configs volume",
    ),
    k("TIER2_MEMORY_MB", "512", "tier 2 memory limit (Docker)"),
    k("TIER3_MEMORY_MB", "2048", "tier 3 memory limit (Docker)"),
    k("TIER4_MEMORY_MB", "4096", "tier 4 memory limit (Docker)"),
    k(
        "TIER1_CPU_SHARES",
        "1024",
        "tier 1 CPU, 1024 = one CPU (Docker `CpuShares`, and a hard `NanoCpus` limit of shares/1024 CPUs)",
    ),
    k("TIER2_CPU_SHARES", "1024", "tier 2 CPU (1024 = one CPU)"),
    k("TIER3_CPU_SHARES", "2048", "tier 3 CPU (1024 = one CPU)"),
    k("TIER4_CPU_SHARES", "4096", "tier 4 CPU (1024 = one CPU)"),
    k(
        "MOLECULE_WORKSPACE_IMAGE",
        "molecule-agent:latest",
        "default agent image",
    ),
    k(
        "MOLECULE_RUNTIME_IMAGES",
        "unset",
        "per-runtime images, `runtime=image,runtime=image`",
    ),
    k("WORKSPACE_IMAGE_LOCAL_OVERRIDE", "0", "`1` ignores runtime_image_pins"),
    k(
        "MOLECULE_PROVISION_CONCURRENCY",
        "3",
        "provisions at once; `0` unlimited; invalid values fall back to 3 with a warning",
    ),
    k(
        "PROVISION_TIMEOUT_SECONDS",
        "unset",
        "provisioning timeout for every runtime (else template, else 30 min hermes / 10 min)",
    ),
    k(
        "PROVISION_TIMEOUT_SWEEP_INTERVAL_SECONDS",
        "30",
        "how often provisioning timeouts are checked (once per cluster)",
    ),
    k("CONFIGS_DIR", "unset", "templates directory: `<name>/config.yaml`"),
    k(
        "MOLECULE_DATA_DIR",
        ".molecule/data",
        "local backend: agent logs and data",
    ),
    k(
        "MOLECULE_LOCAL_AGENT_COMMAND",
        "molecule-agent",
        "local backend: the agent program",
    ),
    k(
        "MOLECULE_AGENT_ENV",
        "unset",
        "extra environment for every agent, `NAME=value,NAME=value`",
    ),
    k(
        "MOLECULE_CONTAINER_PLATFORM_URL",
        "PLATFORM_URL",
        "platform URL as agents see it",
    ),
    k(
        "MOLECULE_RECONCILE_GRACE_SECONDS",
        "300",
        "an orphaned workload is stopped only after this long",
    ),
    k(
        "MOLECULE_RECONCILE_INTERVAL_SECONDS",
        "60",
        "how often the leak reconciler runs (once per cluster)",
    ),
    k(
        "MOLECULE_ORG_TEMPLATES_DIR",
        "unset",
        "org templates root: `<dir>/org.yaml` for POST /org/import",
    ),
    k(
        "MOLECULE_EC2_DEFAULT_AMI",
        "unset",
        "EC2 backend: AMI for runtimes without their own",
    ),
    k(
        "MOLECULE_EC2_AMIS",
        "unset",
        "EC2 backend: `runtime=ami-…,runtime=ami-…`",
    ),
    k(
        "MOLECULE_EC2_DEFAULT_INSTANCE_TYPE",
        "t3.micro",
        "EC2 backend: instance type for runtimes without their own",
    ),
    k(
        "MOLECULE_EC2_INSTANCE_TYPES",
        "unset",
        "EC2 backend: `runtime=type,runtime=type`",
    ),
    k(
        "MOLECULE_EC2_SUBNET_ID",
        "unset",
        "EC2 backend: subnet for new instances",
    ),
    k(
        "MOLECULE_EC2_SECURITY_GROUP_IDS",
        "unset",
        "EC2 backend: comma-separated security groups",
    ),
    k(
        "MEMORY_PLUGIN_URL",
        "unset",
        "the memory plugin's base URL (e.g. `http://127.0.0.1:9100`); unset disables agent memory",
    ),
    k(
        "MEMORY_PLUGIN_TIMEOUT",
        "2s",
        "per-request timeout towards the memory plugin (Go-style duration: `500ms`, `2s`); invalid or ≤0 falls back to 2s",
    ),
];

/// Knobs of memory-plugin-postgres.
pub const PLUGIN_KNOBS: &[Knob] = &[
    k(
        "MEMORY_PLUGIN_DATABASE_URL",
        "DATABASE_URL",
        "the plugin's Postgres (falls back to DATABASE_URL)",
    ),
    k("DATABASE_URL", "unset", "fallback for MEMORY_PLUGIN_DATABASE_URL"),
    k(
        "MEMORY_PLUGIN_LISTEN_ADDR",
        "127.0.0.1:9100",
        "plugin HTTP listen address",
    ),
    k(
        "MEMORY_PLUGIN_SKIP_MIGRATE",
        "0",
        "`1` skips the plugin's migrations at boot",
    ),
    k(
        "MEMORY_PLUGIN_JANITOR_INTERVAL_SECONDS",
        "60",
        "how often expired memories and namespaces are deleted (one replica per tick)",
    ),
    k(
        "MEMORY_PLUGIN_MAX_BODY_BYTES",
        "1048576",
        "largest request body the plugin reads; bigger ones get 413",
    ),
];

/// Knobs of molecule-agent, the reference agent (set by the provisioner).
pub const AGENT_KNOBS: &[Knob] = &[
    k("WORKSPACE_ID", "unset (required)", "the workspace this agent serves"),
    k("PLATFORM_URL", "http://127.0.0.1:8080", "workspace-server base URL"),
    k(
        "MOLECULE_WORKSPACE_TOKEN",
        "unset (required)",
        "the workspace's bearer token",
    ),
    k("MODEL", "unset", "model name (reported in the agent card)"),
    k(
        "MOLECULE_BOOTSTRAP_CODE",
        "unset",
        "a one-time code the agent redeems at `POST /registry/bootstrap` for its secret environment (the EC2 backend's way, since user-data is readable)",
    ),
    k(
        "MOLECULE_SECRETS_FILE",
        "unset",
        "a JSON object of the secret environment (secrets, then the workspace token) that the backend delivers as a mode-0600 file, read at start beneath the process environment",
    ),
    k(
        "WORKSPACE_CONFIG_PATH",
        "/configs",
        "the agent's configs directory (the backends set it); files a redeemed bootstrap code carries (a template's, `config.yaml`) are written there",
    ),
    k("AGENT_PORT", "8000", "port of the agent's A2A endpoint"),
    k("AGENT_URL", "http://127.0.0.1:$AGENT_PORT", "URL the platform calls"),
    k("DELIVERY_MODE", "push", "`push` (serve A2A) or `poll` (read the inbox)"),
    k("HEARTBEAT_INTERVAL_SECONDS", "30", "registry heartbeat period"),
    k("AGENT_REPLY", "unset (echo)", "fixed reply text"),
    k(
        "AGENT_WORK_SECONDS",
        "0",
        "simulated work per message, with delegation heartbeats",
    ),
    k(
        "AGENT_WORK_MILLISECONDS",
        "0",
        "extra simulated work per message, in milliseconds (benchmarks: a model's latency)",
    ),
    k(
        "AGENT_APPROVAL_TIMEOUT_SECONDS",
        "300",
        "how long an approval the agent asks for (a message saying `approval:<action>`) waits for a decision on `/ws` (the runtime's `APPROVAL_TIMEOUT`); at most the server's `APPROVAL_TIMEOUT_MINUTES`",
    ),
    k(
        "AGENT_BUSY",
        "0",
        "`1` starts the agent busy: A2A answers 503 and heartbeats report a full slot; `POST /control/busy {\"busy\": bool}` on the agent's port changes it (with the platform's inbound secret as `Authorization: Bearer` once the agent has one)",
    ),
    k(
        "MOLECULE_ORG_ID",
        "unset",
        "the platform's tenant id; when set, every call carries X-Molecule-Org-Id (the provisioner passes it)",
    ),
];
