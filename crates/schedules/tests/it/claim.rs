//! The claim: each due slot is taken by one replica only, however many claim at once; missed
//! slots fold into one fire that says how many it stands for; what a fire records.

use std::collections::BTreeSet;

use diesel_async::RunQueryDsl;
use molecule_domain::ScheduleRunStatus;
use molecule_schedules::store::{FireOutcome, NewSchedule, Schedules};
use molecule_testkit::TestDb;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::workspace;

/// Moves every schedule's next slot into the past, as if it had come due `ago` ago.
async fn due_since(db: &TestDb, ago: &str) {
    let mut conn = db.pool().get().await.unwrap();
    diesel::sql_query(format!(
        "UPDATE workspace_schedules SET next_run_at = now() - interval '{ago}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_claiming_at_once_take_each_due_slot_once() {
    let db = TestDb::new().await;
    let s = Schedules::new(db.pool().clone());
    for w in 0..20 {
        let ws = workspace(&db, &format!("w{w}")).await;
        for i in 0..10 {
            let new = NewSchedule {
                cron_expr: "* * * * *".into(),
                prompt: format!("tick {w}/{i}"),
                ..NewSchedule::default()
            };
            s.create(ws, new).await.unwrap();
        }
    }
    due_since(&db, "10 seconds").await;
    // Two replicas: their own pools on the same database, claiming in small batches at once.
    let replicas = [
        Schedules::new(db.pool().clone()),
        Schedules::new(
            molecule_db::connect(&db.url, &molecule_db::PoolOptions::default())
                .await
                .unwrap(),
        ),
    ];
    let now = OffsetDateTime::now_utc();
    let claims = replicas.iter().map(|r| async move {
        let mut mine = Vec::new();
        loop {
            let batch = r.claim_due(now, 7).await.unwrap();
            if batch.is_empty() {
                return mine;
            }
            mine.extend(batch.into_iter().map(|c| c.schedule.id));
        }
    });
    let taken: Vec<Vec<Uuid>> = futures_util::future::join_all(claims).await;
    let all: Vec<Uuid> = taken.iter().flatten().copied().collect();
    let unique: BTreeSet<Uuid> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        200,
        "every due slot taken once: {} and {}",
        taken[0].len(),
        taken[1].len()
    );
    assert_eq!(unique.len(), 200, "none taken twice");
    assert!(s.claim_due(now, 500).await.unwrap().is_empty(), "nothing is due twice");
}

#[tokio::test]
async fn missed_slots_fire_once_and_say_how_many_and_a_fire_is_recorded() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let s = Schedules::new(db.pool().clone());
    let made = s
        .create(
            ws,
            NewSchedule {
                cron_expr: "*/10 * * * *".into(),
                prompt: "report".into(),
                ..NewSchedule::default()
            },
        )
        .await
        .unwrap();
    // Down for an hour: six slots came and went; one fire stands for them.
    due_since(&db, "61 minutes").await;
    let now = OffsetDateTime::now_utc();
    let claimed = s.claim_due(now, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(c.schedule.id, made.id);
    // 61 minutes hold six or seven ten-minute boundaries after the missed slot.
    assert!((6..=7).contains(&c.missed), "{} missed slots folded in", c.missed);
    let next = c.schedule.next_run_at.unwrap();
    assert!(next > now && next - now <= time::Duration::minutes(10), "{next}");

    // Three empty answers in a row: the third is recorded as stale, with the reason.
    let empty = FireOutcome {
        status: ScheduleRunStatus::Ok,
        error: None,
        empty: true,
    };
    assert_eq!(
        s.record_fire(made.id, Some(c.due_at), &empty).await.unwrap(),
        ScheduleRunStatus::Ok
    );
    assert_eq!(
        s.record_fire(made.id, None, &empty).await.unwrap(),
        ScheduleRunStatus::Ok
    );
    assert_eq!(
        s.record_fire(made.id, None, &empty).await.unwrap(),
        ScheduleRunStatus::Stale
    );
    let row = s.get(ws, made.id).await.unwrap();
    assert_eq!((row.run_count, row.consecutive_empty_runs), (3, 3));
    assert!(
        row.last_error
            .unwrap()
            .starts_with("empty response 3 consecutive times")
    );
    // An answer with words resets the streak.
    let answered = FireOutcome { empty: false, ..empty };
    assert_eq!(
        s.record_fire(made.id, None, &answered).await.unwrap(),
        ScheduleRunStatus::Ok
    );
    assert_eq!(s.get(ws, made.id).await.unwrap().consecutive_empty_runs, 0);

    // Disabled (its workspace deleted): never due again.
    due_since(&db, "1 minute").await;
    let mut conn = db.pool().get().await.unwrap();
    assert_eq!(Schedules::disable_for(&mut conn, &[ws]).await.unwrap(), 1);
    assert!(s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap().is_empty());
}

/// A replica that dies mid-fire holds its slot until the lease runs out; then the next claim
/// fires the same slot again, and a fire's record releases the hold.
#[tokio::test]
async fn a_fire_whose_replica_died_is_taken_again_with_the_same_slot() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let s = Schedules::new(db.pool().clone());
    let made = s
        .create(
            ws,
            NewSchedule {
                cron_expr: "* * * * *".into(),
                prompt: "again".into(),
                ..NewSchedule::default()
            },
        )
        .await
        .unwrap();
    due_since(&db, "5 seconds").await;
    let first = s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(!first[0].retry);
    // The replica dies before recording. Its lease holds the slot: not taken meanwhile, even
    // once the next slot comes due (no two fires of one schedule at once).
    {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_schedules SET next_run_at = now() - interval '1 second'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert!(s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap().is_empty());
    // The lease runs out: the same slot again.
    {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_schedules SET firing_until = now() - interval '1 second'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let again = s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].retry);
    assert_eq!((again[0].schedule.id, again[0].due_at), (made.id, first[0].due_at));
    // Its record releases the hold; the slot that came due meanwhile is next.
    let ok = FireOutcome {
        status: ScheduleRunStatus::Ok,
        error: None,
        empty: false,
    };
    s.record_fire(made.id, Some(again[0].due_at), &ok).await.unwrap();
    let next = s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(!next[0].retry && next[0].due_at > first[0].due_at);
}

/// A fire marks its send before the prompt leaves: a slot taken over after that is handed
/// back as sent (to record, not to send again); a renewal keeps a live fire's hold, and a
/// hold that passed to another replica cannot be marked sent.
#[tokio::test]
async fn a_slot_sent_before_its_replica_died_is_taken_over_as_sent() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let s = Schedules::new(db.pool().clone()).with_fire_lease(std::time::Duration::from_secs(30));
    let made = s
        .create(
            ws,
            NewSchedule {
                cron_expr: "* * * * *".into(),
                prompt: "sent".into(),
                ..NewSchedule::default()
            },
        )
        .await
        .unwrap();
    due_since(&db, "5 seconds").await;
    let first = s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    let slot = first[0].due_at;
    let expire = async || {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_schedules SET firing_until = now() - interval '1 second'")
            .execute(&mut conn)
            .await
            .unwrap();
    };
    // A renewal puts a lapsed hold back a lease ahead: nothing to take over.
    expire().await;
    assert_eq!(s.renew(&[(made.id, slot), (Uuid::new_v4(), slot)]).await.unwrap(), 1);
    assert!(s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap().is_empty());
    // Marked sent once; then the replica dies and the lease runs out.
    assert!(s.mark_sent(made.id, slot).await.unwrap());
    assert!(!s.mark_sent(made.id, slot).await.unwrap(), "a send is marked once");
    expire().await;
    let taken = s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert!(taken[0].retry && taken[0].sent_at.is_some(), "{:?}", taken[0]);
    assert_eq!(taken[0].due_at, slot);
    // Recording it releases the hold and the sent mark with it.
    let lost = FireOutcome {
        status: ScheduleRunStatus::Error,
        error: Some("sent by a replica that stopped".into()),
        empty: false,
    };
    s.record_fire(made.id, Some(slot), &lost).await.unwrap();
    due_since(&db, "1 second").await;
    let next = s.claim_due(OffsetDateTime::now_utc(), 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(!next[0].retry && next[0].sent_at.is_none());
    // A hold that passed to another replica (another slot now) is not this fire's to send.
    assert!(!s.mark_sent(made.id, slot).await.unwrap());
}
