//! Structure events: persisted in `events` in the same transaction as the change they
//! describe, and delivered to every replica's live listeners through Postgres LISTEN/NOTIFY
//! (the notification is sent at commit, so listeners never see a rolled-back change).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use molecule_api::events::Event;
use molecule_db::Pool;
use molecule_db::schema::events as ev;
use molecule_domain::{EventType, Vocabulary};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::error::Result;

/// The NOTIFY channel every replica listens on.
pub const CHANNEL: &str = "molecule_events";
/// NOTIFY payloads must stay under 8000 bytes; larger events travel by id.
const INLINE_LIMIT: usize = 7000;
/// Events a slow live subscriber may fall behind by before it skips ahead.
const LIVE_BUFFER: usize = 1024;

#[derive(Deserialize)]
struct ByRef {
    #[serde(rename = "ref")]
    id: i64,
}

diesel::define_sql_function! {
    /// Postgres' `pg_notify(channel, payload)` (it returns void; the call is only executed).
    fn pg_notify(channel: Text, payload: Text) -> diesel::sql_types::Bool;
}

/// Revocations (and removals) this process has made, counted as they are written: a token
/// validation cached before the latest one is not trusted. Process-wide on purpose: a
/// revocation through one `Tree` forgets the cached validations of every other in the process,
/// which is only ever more cautious. The bus publishes revocations here; the token cache
/// reads them ([`revocations`]) and knows nothing of who revoked.
static REVOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Notes that a token may have stopped authenticating (a revocation, a rotation, a removed
/// workspace): every cached validation made before now is dropped.
pub fn note_revocation() {
    REVOCATIONS.fetch_add(1, Ordering::SeqCst);
}

/// How many revocations this process has noted so far.
pub fn revocations() -> u64 {
    AtomicU64::load(&REVOCATIONS, Ordering::SeqCst)
}

/// Records `ty` about `workspace_id` on `conn` (use the transaction that makes the change):
/// persisted events are inserted into `events`; every event is NOTIFYed.
pub async fn record(
    conn: &mut AsyncPgConnection,
    ty: EventType,
    workspace_id: Option<Uuid>,
    payload: Value,
) -> Result<Event> {
    let mut event = Event {
        id: None,
        event: ty.as_str().to_owned(),
        workspace_id,
        timestamp: OffsetDateTime::now_utc(),
        payload,
        actor: molecule_actor::current(),
    };
    if matches!(ty, EventType::WorkspaceRemoved | EventType::TokenRevoked) {
        // Whatever path removed the workspace or revoked its token, cached validations go.
        note_revocation();
    }
    if ty.is_persisted() {
        let (id, at): (i64, OffsetDateTime) = diesel::insert_into(ev::table)
            .values((
                ev::event_type.eq(&event.event),
                ev::workspace_id.eq(workspace_id),
                ev::payload.eq(&event.payload),
                ev::actor.eq(&event.actor),
            ))
            .returning((ev::id, ev::created_at))
            .get_result(conn)
            .await?;
        event.id = Some(id);
        event.timestamp = at;
    }
    // A DSL call, so the prepared statement is cached: one round trip on the hot path.
    diesel::select(pg_notify(CHANNEL, notification(&event)))
        .execute(conn)
        .await?;
    Ok(event)
}

/// The NOTIFY payload of an event: inline when small, by reference when persisted, without its
/// payload when live-only and too large.
fn notification(event: &Event) -> String {
    let inline = serde_json::to_string(event).unwrap_or_default();
    if inline.len() <= INLINE_LIMIT {
        inline
    } else if let Some(id) = event.id {
        serde_json::json!({ "ref": id }).to_string()
    } else {
        let mut slim = event.clone();
        slim.payload = serde_json::json!({ "truncated": true });
        serde_json::to_string(&slim).unwrap_or_default()
    }
}

/// The NOTIFY payload of a live-only event, for a statement that sends it with the change it
/// describes (a delivered A2A message's `ACTIVITY_LOGGED` and `A2A_RESPONSE`). Persisted types
/// are refused: they are written with their change through [`record`].
pub fn live_notification(ty: EventType, workspace_id: Option<Uuid>, payload: Value) -> Result<String> {
    if ty.is_persisted() {
        return Err(crate::ServiceError::internal(
            "notifying a live event",
            format!("{ty} is persisted; record it with its change"),
        ));
    }
    Ok(notification(&Event {
        id: None,
        event: ty.as_str().to_owned(),
        workspace_id,
        timestamp: OffsetDateTime::now_utc(),
        payload,
        actor: None,
    }))
}

/// Packs live notifications (each from [`live_notification`]) into as few NOTIFY payloads as
/// fit: a JSON array of events per payload, each under the inline limit; a notification alone
/// in its payload stays as it is. One NOTIFY costs the database a queue entry and a wake-up of
/// every listening replica, whatever it carries, so a group of audit rows sends one.
pub fn pack<'a>(notifications: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut packed: Vec<Vec<&str>> = Vec::new();
    let mut size = 0;
    for n in notifications {
        // "[" + "]" + a comma per element.
        match packed.last_mut() {
            Some(last) if size + n.len() < INLINE_LIMIT => {
                last.push(n);
                size += n.len() + 1;
            }
            _ => {
                packed.push(vec![n]);
                size = n.len() + 2;
            }
        }
    }
    packed
        .into_iter()
        .map(|group| match group.as_slice() {
            [one] => (*one).to_owned(),
            many => format!("[{}]", many.join(",")),
        })
        .collect()
}

/// Which persisted events to read: all of them, or those of one workspace, of one actor, of
/// one type; the newest `limit`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub workspace_id: Option<Uuid>,
    pub actor: Option<String>,
    pub event: Option<String>,
    /// Only events about this delegation (`payload.delegation_id`).
    pub delegation_id: Option<String>,
}

/// Persisted events, newest last: all of them, or one workspace's.
pub async fn recent(conn: &mut AsyncPgConnection, workspace_id: Option<Uuid>, limit: i64) -> Result<Vec<Event>> {
    matching(
        conn,
        &EventFilter {
            workspace_id,
            ..EventFilter::default()
        },
        limit,
    )
    .await
}

/// Persisted events that pass `filter`, newest last.
pub async fn matching(conn: &mut AsyncPgConnection, filter: &EventFilter, limit: i64) -> Result<Vec<Event>> {
    let mut q = ev::table.into_boxed();
    if let Some(id) = filter.workspace_id {
        q = q.filter(ev::workspace_id.eq(id));
    }
    if let Some(actor) = &filter.actor {
        q = q.filter(ev::actor.eq(actor));
    }
    if let Some(event) = &filter.event {
        q = q.filter(ev::event_type.eq(event));
    }
    if let Some(did) = &filter.delegation_id {
        q = q.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("payload->>'delegation_id' = ")
                .bind::<diesel::sql_types::Text, _>(did.clone()),
        );
    }
    type Row = (i64, String, Option<Uuid>, Value, OffsetDateTime, Option<String>);
    let rows: Vec<Row> = q
        .order(ev::id.desc())
        .limit(limit)
        .select((
            ev::id,
            ev::event_type,
            ev::workspace_id,
            ev::payload,
            ev::created_at,
            ev::actor,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .rev()
        .map(|(id, event, workspace_id, payload, timestamp, actor)| Event {
            id: Some(id),
            event,
            workspace_id,
            timestamp,
            payload,
            actor,
        })
        .collect())
}

/// This replica's fan-out of live events, fed by one LISTEN connection.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// When each workspace last had an event on this replica: the A2A idle watchdog reads it
    /// instead of subscribing (a subscriber per message in flight woke every one of them on
    /// every event).
    last_seen: crate::recent::Recent,
    /// When each workspace last had a persisted event (a change of its row: registration,
    /// status, removal); caches of workspace rows are older than this or stale.
    last_change: crate::recent::Recent,
    closing: watch::Receiver<bool>,
    closing_tx: Arc<watch::Sender<bool>>,
    /// Since when the LISTEN connection has been up (`None` while it is down): caches that
    /// rely on the bus to hear about changes trust nothing read before it.
    listening: watch::Receiver<Option<tokio::time::Instant>>,
    listening_tx: Arc<watch::Sender<Option<tokio::time::Instant>>>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(LIVE_BUFFER);
        let (listening_tx, listening) = watch::channel(None);
        let (closing_tx, closing) = watch::channel(false);
        Self {
            tx,
            last_seen: crate::recent::Recent::default(),
            last_change: crate::recent::Recent::default(),
            closing,
            closing_tx: Arc::new(closing_tx),
            listening,
            listening_tx: Arc::new(listening_tx),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// When workspace `id` last had an event on this bus (any replica's), if one is known.
    pub fn last_event_at(&self, id: Uuid) -> Option<tokio::time::Instant> {
        self.last_seen.get(id)
    }

    /// When workspace `id` last had a persisted event (a change to its row), if one is known.
    pub fn last_change_at(&self, id: Uuid) -> Option<tokio::time::Instant> {
        self.last_change.get(id)
    }

    /// Fans `event` out to the live subscribers and notes its workspace's last event (and
    /// last change: persisted events carry their id) times.
    fn publish(&self, event: Event) {
        if let Some(id) = event.workspace_id {
            self.last_seen.note(id);
            if event.id.is_some() {
                self.last_change.note(id);
            }
        }
        // No live subscribers is fine.
        let _ = self.tx.send(Arc::new(event));
    }

    /// Ends every live stream (WebSocket, SSE) so a graceful shutdown does not wait on them.
    pub fn close(&self) {
        self.closing_tx.send_replace(true);
    }

    /// Resolves once [`EventBus::close`] has been called.
    pub async fn closed(&self) {
        let mut rx = self.closing.clone();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Waits until the LISTEN connection is up (tests and readiness).
    pub async fn wait_listening(&self, within: Duration) -> bool {
        let mut rx = self.listening.clone();
        tokio::time::timeout(within, rx.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub fn is_listening(&self) -> bool {
        self.listening.borrow().is_some()
    }

    /// When the current LISTEN connection started listening; `None` while there is none.
    /// Notifications sent while it was down are lost, so a cache kept fresh by this bus trusts
    /// only what it read after this instant.
    pub fn listening_since(&self) -> Option<tokio::time::Instant> {
        *self.listening.borrow()
    }

    /// Keeps a LISTEN connection to `database_url` for as long as the task lives, reconnecting
    /// with backoff; by-reference notifications are resolved through `pool`.
    pub fn spawn_listener(&self, database_url: String, pool: Pool) -> tokio::task::JoinHandle<()> {
        let bus = self.clone();
        tokio::spawn(async move {
            loop {
                let attempt = || bus.listen_once(&database_url, &pool);
                let result = attempt
                    .retry(ExponentialBuilder::default().with_min_delay(Duration::from_millis(200)).with_max_delay(Duration::from_secs(10)).without_max_times())
                    .notify(|e: &String, after| tracing::warn!(error = %e, retry_in = ?after, "event listener disconnected"))
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "event listener gave up");
                }
            }
        })
    }

    async fn listen_once(&self, database_url: &str, pool: &Pool) -> Result<(), String> {
        let (client, mut connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let (note_tx, mut note_rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(msg) = messages.next().await {
                match msg {
                    Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                        if note_tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return e.to_string(),
                }
            }
            "connection closed".to_owned()
        });
        // Taken before LISTEN is sent, so nothing read before the connection came up is
        // trusted; only a change committing in the instant LISTEN takes to apply can go
        // unheard, and a cache trusts that read for its TTL at most.
        let since = tokio::time::Instant::now();
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| e.to_string())?;
        self.listening_tx.send_replace(Some(since));
        tracing::info!(channel = CHANNEL, "event listener connected");
        while let Some(payload) = note_rx.recv().await {
            if payload.starts_with('[') {
                // Several live events in one notification (see [`pack`]).
                match serde_json::from_str::<Vec<Event>>(&payload) {
                    Ok(events) => events.into_iter().for_each(|e| self.publish(e)),
                    Err(e) => tracing::warn!(payload, error = %e, "undecodable event notification"),
                }
                continue;
            }
            match self.decode(&payload, pool).await {
                Some(event) => self.publish(event),
                None => tracing::warn!(payload, "undecodable event notification"),
            }
        }
        self.listening_tx.send_replace(None);
        let reason = driver.await.unwrap_or_else(|e| e.to_string());
        Err(reason)
    }

    async fn decode(&self, payload: &str, pool: &Pool) -> Option<Event> {
        if let Ok(event) = serde_json::from_str::<Event>(payload) {
            return Some(event);
        }
        let ByRef { id } = serde_json::from_str(payload).ok()?;
        let mut conn = pool.get().await.ok()?;
        type Row = (String, Option<Uuid>, Value, OffsetDateTime, Option<String>);
        let (event, workspace_id, payload, timestamp, actor): Row = ev::table
            .find(id)
            .select((ev::event_type, ev::workspace_id, ev::payload, ev::created_at, ev::actor))
            .first(&mut conn)
            .await
            .ok()?;
        Some(Event {
            id: Some(id),
            event,
            workspace_id,
            timestamp,
            payload,
            actor,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report

    #[test]
    fn packed_notifications_stay_under_the_limit_and_decode_to_the_same_events() {
        use molecule_domain::EventType;
        let one = |i: u128, size: usize| {
            super::live_notification(
                EventType::ActivityLogged,
                Some(uuid::Uuid::from_u128(i)),
                serde_json::json!({ "summary": "x".repeat(size) }),
            )
            .unwrap()
        };
        let notes: Vec<String> = (0..40).map(|i| one(i, if i % 7 == 0 { 3000 } else { 100 })).collect();
        let packed = super::pack(notes.iter().map(String::as_str));
        assert!(
            packed.len() < notes.len() / 3,
            "{} payloads for {} events",
            packed.len(),
            notes.len()
        );
        let mut decoded = Vec::new();
        for p in &packed {
            assert!(p.len() <= super::INLINE_LIMIT, "{} bytes", p.len());
            match serde_json::from_str::<Vec<molecule_api::events::Event>>(p) {
                Ok(events) => decoded.extend(events),
                Err(_) => decoded.push(serde_json::from_str(p).unwrap()),
            }
        }
        let expected: Vec<molecule_api::events::Event> =
            notes.iter().map(|n| serde_json::from_str(n).unwrap()).collect();
        assert_eq!(
            serde_json::to_value(&decoded).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
        // A lone notification goes as it is (what a replica that does not unpack reads).
        assert_eq!(super::pack([notes[1].as_str()]), vec![notes[1].clone()]);
        assert!(super::pack(std::iter::empty()).is_empty());
    }
}
