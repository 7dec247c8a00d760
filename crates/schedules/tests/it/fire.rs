//! Firing through a stand-in for the proxy: what is sent, how each kind of answer is
//! recorded (history row, event, the row's status), and run-now on the same path.

use std::sync::{Arc, Mutex};

use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;
use molecule_api::a2a::{ProxyOutcome, ProxyUnavailable, Queued};
use molecule_domain::ScheduleRunStatus;
use molecule_schedules::store::NewSchedule;
use molecule_schedules::{Deliver, Scheduler};
use molecule_testkit::TestDb;
use serde_json::Value;
use uuid::Uuid;

use crate::workspace;

/// A deliverer that records what it was handed and answers with `answer(prompt)`.
fn stand_in(
    sent: Arc<Mutex<Vec<(Uuid, Value)>>>,
    answer: impl Fn(&str) -> ProxyOutcome + Send + Sync + 'static,
) -> Deliver {
    Arc::new(move |ws, body: Value| {
        let prompt = body["params"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        sent.lock().unwrap().push((ws, body));
        let out = answer(&prompt);
        async move { Ok(out) }.boxed()
    })
}

fn answered(text: &str) -> ProxyOutcome {
    ProxyOutcome::Answered {
        status: 200,
        content_type: Some("application/json".into()),
        body: format!(r#"{{"result":{{"parts":[{{"kind":"text","text":"{text}"}}]}}}}"#).into_bytes(),
    }
}

#[derive(diesel::QueryableByName, Debug)]
struct HistoryRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    error_detail: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    request_body: Value,
}

async fn history(db: &TestDb, schedule: Uuid) -> Vec<HistoryRow> {
    let mut conn = db.pool().get().await.unwrap();
    diesel::sql_query(
        "SELECT status, error_detail, request_body FROM activity_logs \
         WHERE activity_type = 'cron_run' AND request_body->>'schedule_id' = $1 ORDER BY created_at",
    )
    .bind::<Text, _>(schedule.to_string())
    .load(&mut conn)
    .await
    .unwrap()
}

async fn events(db: &TestDb, ws: Uuid) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = db.pool().get().await.unwrap();
    let n: N =
        diesel::sql_query("SELECT count(*) AS n FROM events WHERE event_type = 'CRON_EXECUTED' AND workspace_id = $1")
            .bind::<SqlUuid, _>(ws)
            .get_result(&mut conn)
            .await
            .unwrap();
    n.n
}

#[tokio::test]
async fn due_slots_fire_through_the_deliverer_and_every_outcome_is_recorded() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let sent = Arc::new(Mutex::new(Vec::new()));
    let scheduler = Scheduler::new(
        db.pool().clone(),
        stand_in(sent.clone(), |prompt| match prompt {
            "answer me" => answered("done"),
            "you are busy" => ProxyOutcome::Queued(Queued {
                queued: true,
                queue_id: Uuid::new_v4(),
                queue_depth: 1,
                message: "queued".into(),
            }),
            _ => ProxyOutcome::Unavailable(ProxyUnavailable {
                error: "workspace w is hibernated and is waking up; retry shortly".into(),
                waking: Some(true),
                restarting: None,
                busy: None,
                retry_after: 15,
                status: None,
            }),
        }),
    );
    let mut ids = Vec::new();
    for prompt in ["answer me", "you are busy", "sleeping"] {
        let made = scheduler
            .schedules()
            .create(
                ws,
                NewSchedule {
                    cron_expr: "*/5 * * * *".into(),
                    prompt: prompt.into(),
                    ..NewSchedule::default()
                },
            )
            .await
            .unwrap();
        ids.push(made.id);
    }
    {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_schedules SET next_run_at = now() - interval '2 seconds'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let tick = scheduler.tick().await.unwrap();
    assert_eq!((tick.fired, tick.failed), (2, 1));
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    let (to, body) = &sent[0];
    assert_eq!(*to, ws);
    assert_eq!(body["method"], "message/send");
    let mid = body["params"]["message"]["messageId"].as_str().unwrap();
    // Fixed by the slot (a slot fired again after its replica died carries the same id).
    let slot: i64 = mid.rsplit('-').next().unwrap().parse().unwrap();
    assert!(mid.starts_with("cron-") && slot > 1_700_000_000, "{mid}");

    let rows = [
        history(&db, ids[0]).await,
        history(&db, ids[1]).await,
        history(&db, ids[2]).await,
    ];
    assert_eq!(rows[0][0].status, "ok");
    assert_eq!(
        rows[1][0].request_body["queued"], true,
        "a busy agent's prompt waits in its queue"
    );
    assert_eq!(rows[2][0].status, "error");
    assert!(
        rows[2][0].error_detail.as_deref().unwrap().contains("waking up"),
        "{:?}",
        rows[2]
    );
    assert!(rows[0][0].request_body["due_at"].is_number() && rows[0][0].request_body["manual"] == false);
    assert_eq!(events(&db, ws).await, 3);
    let failed = scheduler.schedules().get(ws, ids[2]).await.unwrap();
    assert_eq!(
        (failed.last_status, failed.run_count),
        (Some(ScheduleRunStatus::Error), 1)
    );

    // Run now: the same path, a history row of its own, and the next slot left as it was.
    let before = scheduler.schedules().get(ws, ids[0]).await.unwrap();
    let fired = scheduler.run_now(ws, ids[0]).await.unwrap();
    assert_eq!((fired.status, fired.lateness_seconds), (ScheduleRunStatus::Ok, None));
    let after = scheduler.schedules().get(ws, ids[0]).await.unwrap();
    assert_eq!(after.next_run_at, before.next_run_at);
    assert_eq!(after.run_count, 2);
    let rows = history(&db, ids[0]).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].request_body["manual"], true);
    // Nothing else was due.
    assert_eq!(scheduler.tick().await.unwrap().fired, 0);
}

/// A workspace whose runtime runs its own scheduler gets no fire from the platform: its slot
/// moves on, nothing is sent or recorded, and the hold is released.
#[tokio::test]
async fn a_runtime_with_its_own_scheduler_is_left_to_fire_its_schedules() {
    let db = TestDb::new().await;
    let own = workspace(&db, "own").await;
    let sent = Arc::new(Mutex::new(Vec::new()));
    let runs_own: molecule_schedules::RunsOwnScheduler = Arc::new(move |ws| async move { Ok(ws == own) }.boxed());
    let scheduler =
        Scheduler::new(db.pool().clone(), stand_in(sent.clone(), |_| answered("x"))).with_runtime_schedulers(runs_own);
    let made = scheduler
        .schedules()
        .create(
            own,
            NewSchedule {
                cron_expr: "* * * * *".into(),
                prompt: "mine".into(),
                ..NewSchedule::default()
            },
        )
        .await
        .unwrap();
    {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_schedules SET next_run_at = now() - interval '2 seconds'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let tick = scheduler.tick().await.unwrap();
    assert_eq!((tick.fired, tick.failed, tick.left_to_runtime), (0, 0, 1));
    assert!(sent.lock().unwrap().is_empty());
    let row = scheduler.schedules().get(own, made.id).await.unwrap();
    assert_eq!(row.run_count, 0);
    assert!(
        row.next_run_at.unwrap() > time::OffsetDateTime::now_utc(),
        "moved on: {row:?}"
    );
    assert!(history(&db, made.id).await.is_empty());
}
