//! `fire`: sending a schedule's prompt and recording how it went, for a due slot (the
//! scheduler's tick) and for "run now" alike.
//!
//! Owns: the tick (claim due rows, fire them with bounded parallelism, renewing their holds
//! while they fire; a slot a stopped replica had sent is recorded, not sent again), the message a fire
//! sends (`message/send`, messageId `cron-<schedule>-<random>`, as the original), how an answer
//! is judged (delivered, queued for a busy agent, or not delivered with the reason; an empty
//! answer counts toward the phantom streak), the history row (`activity_logs`, type
//! `cron_run`, through the tree), the `CRON_EXECUTED` event, and each fire's lateness (due →
//! sent) in `/metrics` and, over this process's latest fires, in [`recent_lateness`]; each
//! claim's time (pool wait and transaction) in `/metrics`.
//!
//! Must not know: how a message reaches an agent. The composer hands in a [`Deliver`] (the
//! A2A proxy with its durable queue, as the operator's own messages go), so a busy agent's
//! prompt waits in its queue and a hibernated agent is woken.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use molecule_api::a2a::ProxyOutcome;
use molecule_db::Pool;
use molecule_domain::{ActivityStatus, ActivityType, EventType, ScheduleRunStatus, Vocabulary};
use molecule_tree::Result;
use molecule_tree::activity::ActivityRow;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{Claimed, FireOutcome, Schedule, Schedules};

/// How many of this process's latest due fires [`recent_lateness`] summarises.
pub const LATENESS_WINDOW: usize = 10_000;

/// This process's latest due fires' lateness, newest last (a window, like a metrics registry
/// is process-wide: schedulers are built per use).
static RECENT_LATENESS: std::sync::Mutex<std::collections::VecDeque<f64>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

fn note_lateness(seconds: f64) {
    let mut recent = RECENT_LATENESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if recent.len() == LATENESS_WINDOW {
        recent.pop_front();
    }
    recent.push_back(seconds);
}

/// Lateness (due → sent) over this process's latest due fires, for `/admin/liveness`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LatenessSummary {
    pub fires: usize,
    pub p50_seconds: f64,
    pub p99_seconds: f64,
    pub max_seconds: f64,
}

/// `None` before this process's first due fire.
pub fn recent_lateness() -> Option<LatenessSummary> {
    summarise(
        RECENT_LATENESS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect(),
    )
}

fn summarise(mut sorted: Vec<f64>) -> Option<LatenessSummary> {
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        // Nearest rank: the smallest value with at least q of the window at or below it.
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    };
    Some(LatenessSummary {
        fires: sorted.len(),
        p50_seconds: at(0.5),
        p99_seconds: at(0.99),
        max_seconds: at(1.0),
    })
}

/// Sends an A2A body to a workspace as the operator would (no calling workspace).
pub type Deliver = Arc<dyn Fn(Uuid, Value) -> BoxFuture<'static, Result<ProxyOutcome>> + Send + Sync>;

/// Whether a workspace's runtime runs its own scheduler (its heartbeats say so): its due slots
/// are moved on without a fire, so the two never double up.
pub type RunsOwnScheduler = Arc<dyn Fn(Uuid) -> BoxFuture<'static, Result<bool>> + Send + Sync>;

/// Context a workspace's chat adds before its prompt (the original's Slack channel context).
pub type Ambient = Arc<dyn Fn(Uuid) -> BoxFuture<'static, Option<String>> + Send + Sync>;
/// Told of a fire's answer (the raw body) to post it to the workspace's chat.
pub type AutoPost = Arc<dyn Fn(Uuid, Vec<u8>) -> BoxFuture<'static, ()> + Send + Sync>;
/// How long an auto-post may take (the original's).
const AUTO_POST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Due rows taken per claim (the original's batch).
pub const DUE_BATCH: i64 = 50;
/// Fires in flight at once per replica (the original's).
pub const PARALLEL_FIRES: usize = 10;
/// How long a fire waits for the agent's answer (the original's); the firing replica renews
/// its hold meanwhile, so a live replica's fire is never taken over.
pub const FIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// The prompt as the history row keeps it, at most (bytes, cut on a character boundary).
const HISTORY_PROMPT_BYTES: usize = 200;

/// What one fire came to.
#[derive(Debug, Clone)]
pub struct Fired {
    pub schedule_id: Uuid,
    pub workspace_id: Uuid,
    pub message_id: String,
    /// What the row records (`stale` after the empty-answer streak).
    pub status: ScheduleRunStatus,
    pub error: Option<String>,
    /// The agent was busy: the prompt waits in its queue.
    pub queued: bool,
    /// Seconds from the slot to the send (`None` for a manual run).
    pub lateness_seconds: Option<f64>,
}

/// A fire's facts, for its records.
struct Finish {
    s: Schedule,
    due_at: Option<OffsetDateTime>,
    missed: u32,
    message_id: String,
    took: std::time::Duration,
    status: ScheduleRunStatus,
    error: Option<String>,
    empty: bool,
    queued: bool,
    lateness_seconds: Option<f64>,
}

/// What one tick did.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    pub fired: usize,
    pub failed: usize,
    /// Due slots of workspaces whose runtime fires its schedules itself: moved on, not fired.
    pub left_to_runtime: usize,
}

/// The scheduler: claims due slots and fires them through [`Deliver`].
#[derive(Clone)]
pub struct Scheduler {
    schedules: Schedules,
    pool: Pool,
    deliver: Deliver,
    runs_own: Option<RunsOwnScheduler>,
    chat: Option<(Ambient, AutoPost)>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

/// Whether an agent's answer said nothing (the original's phantom markers).
fn is_empty_answer(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.trim().is_empty()
        || text.contains("(no response generated)")
        || text.contains("\"text\":\"\"")
        || text.contains("\"text\": \"\"")
}

/// `prompt` cut to at most `max` bytes on a character boundary, with `...` when cut.
fn cut(prompt: &str, max: usize) -> String {
    if prompt.len() <= max {
        return prompt.to_owned();
    }
    let mut end = max;
    while !prompt.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &prompt[..end])
}

/// How a delivery ended, as the row records it: (status, reason, empty answer, queued).
fn judge(outcome: &Result<ProxyOutcome>) -> (ScheduleRunStatus, Option<String>, bool, bool) {
    match outcome {
        Ok(ProxyOutcome::Answered { status, body, .. }) if (200..300).contains(status) => {
            (ScheduleRunStatus::Ok, None, is_empty_answer(body), false)
        }
        Ok(ProxyOutcome::Answered { status, .. }) => {
            (ScheduleRunStatus::Error, Some(format!("HTTP {status}")), false, false)
        }
        Ok(ProxyOutcome::Queued(_)) => (ScheduleRunStatus::Ok, None, false, true),
        Ok(ProxyOutcome::Unavailable(u)) => (ScheduleRunStatus::Error, Some(u.error.clone()), false, false),
        Ok(ProxyOutcome::BadGateway(b)) => (ScheduleRunStatus::Error, Some(b.error.clone()), false, false),
        Ok(ProxyOutcome::BudgetExceeded) => (
            ScheduleRunStatus::Error,
            Some("the workspace's monthly budget is spent".into()),
            false,
            false,
        ),
        Err(e) => (ScheduleRunStatus::Error, Some(e.to_string()), false, false),
    }
}

impl Scheduler {
    pub fn new(pool: Pool, deliver: Deliver) -> Self {
        Self {
            schedules: Schedules::new(pool.clone()),
            pool,
            deliver,
            runs_own: None,
            chat: None,
        }
    }

    /// The chat channels' hooks: `ambient` context before each prompt, and `post` with each
    /// answer that said something (on a task of its own, bounded to 30 s).
    #[must_use]
    pub fn with_chat(mut self, ambient: Ambient, post: AutoPost) -> Self {
        self.chat = Some((ambient, post));
        self
    }

    /// Asks `runs_own` before each due fire: a workspace whose runtime runs its own scheduler
    /// gets none from the platform.
    #[must_use]
    pub fn with_runtime_schedulers(mut self, runs_own: RunsOwnScheduler) -> Self {
        self.runs_own = Some(runs_own);
        self
    }

    /// Holds claimed slots for `lease`, renewed every third of it while they fire.
    #[must_use]
    pub fn with_fire_lease(mut self, lease: std::time::Duration) -> Self {
        self.schedules = self.schedules.with_fire_lease(lease);
        self
    }

    /// The table's use-cases.
    pub fn schedules(&self) -> &Schedules {
        &self.schedules
    }

    /// One pass: claims due slots (in batches, until none is left) and fires them, at most
    /// [`PARALLEL_FIRES`] at once.
    pub async fn tick(&self) -> Result<Tick> {
        let mut tick = Tick::default();
        loop {
            let claiming = Instant::now();
            let claimed = self.schedules.claim_due(OffsetDateTime::now_utc(), DUE_BATCH).await?;
            metrics::histogram!("molecule_schedule_claim_seconds").record(claiming.elapsed().as_secs_f64());
            if claimed.is_empty() {
                return Ok(tick);
            }
            let held: Vec<(Uuid, OffsetDateTime)> = claimed.iter().map(|c| (c.schedule.id, c.due_at)).collect();
            let fires = futures_util::stream::iter(claimed)
                .map(|c| self.fire_claimed(c))
                .buffer_unordered(PARALLEL_FIRES)
                .collect::<Vec<Result<Option<Fired>>>>();
            let results = self.holding(&held, fires).await;
            for r in results {
                match r {
                    Ok(None) => tick.left_to_runtime += 1,
                    Ok(Some(f)) if f.status == ScheduleRunStatus::Error => tick.failed += 1,
                    Ok(Some(_)) => tick.fired += 1,
                    Err(e) => {
                        tick.failed += 1;
                        tracing::warn!(error = %e.chain(), "schedule: a fire could not be recorded");
                    }
                }
            }
        }
    }

    /// Runs `work` while renewing the holds on `held` every third of the lease, so a slow
    /// agent never lets a live replica's slots pass to another.
    async fn holding<T>(&self, held: &[(Uuid, OffsetDateTime)], work: impl Future<Output = T>) -> T {
        let every = self.schedules.fire_lease() / 3;
        // The renewals run beside the fires, never instead of them: a renewal waits on the row
        // lock of a fire whose record is mid-transaction, and that fire must go on to commit
        // (awaited inside a `select!` arm, the renewal stopped the fires from being polled,
        // and the two waited on each other for good).
        let renewals = async {
            let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                renew.tick().await;
                if let Err(e) = self.schedules.renew(held).await {
                    tracing::warn!(error = %e.chain(), held = held.len(), "schedule: renewing the fires' holds failed; retrying at the next renewal");
                }
            }
        };
        tokio::select! {
            out = work => out,
            never = renewals => never,
        }
    }

    /// A claimed slot: fired, recorded without a send (a replica that stopped had sent it),
    /// or (`None`) released untouched when the workspace's runtime fires its schedules itself.
    async fn fire_claimed(&self, c: Claimed) -> Result<Option<Fired>> {
        if let Some(sent_at) = c.sent_at {
            return self.record_orphan(c.schedule, c.due_at, sent_at).await.map(Some);
        }
        if let Some(runs_own) = &self.runs_own
            && runs_own(c.schedule.workspace_id).await?
        {
            self.schedules.release(c.schedule.id, c.due_at).await?;
            return Ok(None);
        }
        self.fire(c.schedule, Some(c.due_at), c.missed).await.map(Some)
    }

    /// The messageId of a fire: fixed by the slot for a due fire, so a slot fired again after
    /// its replica died carries the same id; random for a manual run.
    fn message_id(id: Uuid, slot: Option<OffsetDateTime>) -> String {
        let schedule = id.simple().to_string();
        match slot {
            Some(at) => format!("cron-{}-{}", &schedule[..8], at.unix_timestamp()),
            None => format!("cron-{}-{}", &schedule[..8], &Uuid::new_v4().simple().to_string()[..8]),
        }
    }

    /// "Run now": fires schedule `id` of `workspace_id` through the same path as a due slot,
    /// leaving its next slot as it is.
    pub async fn run_now(&self, workspace_id: Uuid, id: Uuid) -> Result<Fired> {
        let schedule = self.schedules.get(workspace_id, id).await?;
        self.fire(schedule, None, 0).await
    }

    /// [`Scheduler::run_now`] detached from the caller: checks the schedule exists, starts the
    /// fire on a task of its own (a client hanging up never cancels it; its history row says
    /// how it went) and answers the schedule.
    pub async fn start_run_now(&self, workspace_id: Uuid, id: Uuid) -> Result<Schedule> {
        let schedule = self.schedules.get(workspace_id, id).await?;
        let this = self.clone();
        let firing = schedule.clone();
        tokio::spawn(async move {
            if let Err(e) = this.fire(firing, None, 0).await {
                tracing::warn!(schedule_id = %id, error = %e.chain(), "schedule: a manual run could not be recorded");
            }
        });
        Ok(schedule)
    }

    async fn fire(&self, s: Schedule, due_at: Option<OffsetDateTime>, missed: u32) -> Result<Fired> {
        let message_id = Self::message_id(s.id, due_at);
        let context = match &self.chat {
            Some((ambient, _)) => ambient(s.workspace_id).await,
            None => None,
        };
        let prompt = match context {
            Some(ctx) => format!("{ctx}\n\n{}", s.prompt),
            None => s.prompt.clone(),
        };
        let body = json!({
            "jsonrpc": "2.0",
            "id": message_id,
            "method": "message/send",
            "params": { "message": {
                "role": "user",
                "messageId": message_id,
                "parts": [{ "kind": "text", "text": prompt }],
            } },
        });
        if let Some(slot) = due_at
            && !self.schedules.mark_sent(s.id, slot).await?
        {
            return Err(molecule_tree::ServiceError::NotReady(format!(
                "schedule {}: its slot's hold passed to another replica before the send; not sent from here",
                s.id
            )));
        }
        let sent_at = OffsetDateTime::now_utc();
        let lateness_seconds = due_at.map(|d| (sent_at - d).as_seconds_f64().max(0.0));
        if let Some(late) = lateness_seconds {
            metrics::histogram!("molecule_schedule_fire_lateness_seconds").record(late);
            note_lateness(late);
        }
        let started = Instant::now();
        let outcome = match tokio::time::timeout(FIRE_TIMEOUT, (self.deliver)(s.workspace_id, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(molecule_tree::ServiceError::NotReady(format!(
                "no answer within {} s; the agent has the prompt",
                FIRE_TIMEOUT.as_secs()
            ))),
        };
        let took = started.elapsed();
        let (status, error, empty, queued) = judge(&outcome);
        if let (
            Some((_, post)),
            Ok(ProxyOutcome::Answered {
                status: 200..=299,
                body,
                ..
            }),
            false,
        ) = (&self.chat, &outcome, empty)
        {
            let posting = post(s.workspace_id, body.clone());
            let workspace_id = s.workspace_id;
            tokio::spawn(async move {
                if tokio::time::timeout(AUTO_POST_TIMEOUT, posting).await.is_err() {
                    tracing::warn!(workspace_id = %workspace_id, "a schedule's answer was not posted to the chat within 30 s");
                }
            });
        }
        self.finish(Finish {
            s,
            due_at,
            missed,
            message_id,
            took,
            status,
            error,
            empty,
            queued,
            lateness_seconds,
        })
        .await
    }

    /// A slot whose prompt a replica sent before it stopped: recorded (on the row, in the
    /// history, as an event) as sent with its answer lost, and not sent again.
    async fn record_orphan(&self, s: Schedule, slot: OffsetDateTime, sent_at: OffsetDateTime) -> Result<Fired> {
        let message_id = Self::message_id(s.id, Some(slot));
        let error = format!(
            "sent at {sent_at} by a replica that stopped before the agent answered; not sent again, so the agent has it once (messageId {message_id})"
        );
        self.finish(Finish {
            s,
            due_at: Some(slot),
            missed: 0,
            message_id,
            took: std::time::Duration::ZERO,
            status: ScheduleRunStatus::Error,
            error: Some(error),
            empty: false,
            queued: false,
            lateness_seconds: None,
        })
        .await
    }

    /// Records a fire: its row (releasing the slot's hold), its history row and its event.
    async fn finish(&self, f: Finish) -> Result<Fired> {
        let Finish {
            s,
            due_at,
            missed,
            message_id,
            took,
            status,
            error,
            empty,
            queued,
            lateness_seconds,
        } = f;
        let recorded = self
            .schedules
            .record_fire(
                s.id,
                due_at,
                &FireOutcome {
                    status,
                    error: error.clone(),
                    empty,
                },
            )
            .await?;
        metrics::counter!("molecule_schedule_fires_total", "status" => recorded.as_str()).increment(1);

        let mut request = json!({
            "schedule_id": s.id,
            "schedule_name": s.name,
            "cron_expr": s.cron_expr,
            "prompt": cut(&s.prompt, HISTORY_PROMPT_BYTES),
            "message_id": message_id,
            "manual": due_at.is_none(),
            "schedule_status": recorded.as_str(),
        });
        if let Some(due) = due_at {
            request["due_at"] = json!(due.unix_timestamp());
        }
        if missed > 0 {
            request["missed_slots"] = json!(missed);
        }
        if queued {
            request["queued"] = json!(true);
        }
        let summary = format!("Cron: {}", s.name);
        let detail = if recorded == ScheduleRunStatus::Stale {
            Some("the agent answered with nothing several times in a row".to_owned())
        } else {
            error.clone()
        };
        let mut conn = self.pool.get().await?;
        ActivityRow {
            method: Some("cron"),
            summary: Some(&summary),
            request_body: Some(&request),
            duration_ms: i32::try_from(took.as_millis()).ok(),
            error_detail: detail.as_deref(),
            ..ActivityRow::new(
                s.workspace_id,
                ActivityType::CronRun,
                if status == ScheduleRunStatus::Error {
                    ActivityStatus::Error
                } else {
                    ActivityStatus::Ok
                },
            )
        }
        .insert(&mut conn)
        .await?;
        molecule_tree::events::record(
            &mut conn,
            EventType::CronExecuted,
            Some(s.workspace_id),
            json!({ "schedule_id": s.id, "schedule_name": s.name, "status": recorded.as_str() }),
        )
        .await?;
        Ok(Fired {
            schedule_id: s.id,
            workspace_id: s.workspace_id,
            message_id,
            status: recorded,
            error,
            queued,
            lateness_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_summarised_by_nearest_rank() {
        assert_eq!(summarise(Vec::new()), None);
        let s = summarise((1..=100).rev().map(f64::from).collect()).unwrap();
        assert_eq!(
            (s.fires, s.p50_seconds, s.p99_seconds, s.max_seconds),
            (100, 50.0, 99.0, 100.0)
        );
        let one = summarise(vec![0.25]).unwrap();
        assert_eq!((one.p50_seconds, one.p99_seconds), (0.25, 0.25));
    }

    #[test]
    fn empty_answers_are_recognised() {
        assert!(is_empty_answer(b""));
        assert!(is_empty_answer(br#"{"result":{"parts":[{"kind":"text","text":""}]}}"#));
        assert!(is_empty_answer(b"(no response generated)"));
        assert!(!is_empty_answer(
            br#"{"result":{"parts":[{"kind":"text","text":"done"}]}}"#
        ));
    }

    #[test]
    fn prompts_are_cut_on_a_character_boundary() {
        assert_eq!(cut("short", 200), "short");
        let long = "é".repeat(150); // 300 bytes
        let c = cut(&long, 200);
        assert!(c.ends_with("...") && c.len() <= 203 && c.starts_with('é'), "{c}");
    }
}
