//! Create, read, update and delete, with the checks the original got wrong: a second unnamed
//! schedule is not a 500, a bad cron expression or timezone is a 400 naming its field, a
//! re-enabled schedule does not fire at once for the slot it missed.

use molecule_domain::ScheduleSource;
use molecule_schedules::store::{NewSchedule, ScheduleChange, Schedules};
use molecule_testkit::TestDb;
use molecule_tree::ServiceError;
use time::OffsetDateTime;

use crate::workspace;

fn new(cron: &str, prompt: &str) -> NewSchedule {
    NewSchedule {
        cron_expr: cron.into(),
        prompt: prompt.into(),
        ..NewSchedule::default()
    }
}

fn field(e: ServiceError) -> String {
    match e {
        ServiceError::Invalid { field, message } => format!("{field}: {message}"),
        other => panic!("not a 400: {other:?}"),
    }
}

#[tokio::test]
async fn create_checks_and_names_what_is_wrong() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let s = Schedules::new(db.pool().clone());

    // Two unnamed schedules: two generated names, no unique violation.
    let a = s.create(ws, new("*/5 * * * *", "ping\r\n")).await.unwrap();
    let b = s.create(ws, new("0 9 * * MON-FRI", "standup")).await.unwrap();
    assert!(a.name.starts_with("schedule-") && b.name.starts_with("schedule-"));
    assert_ne!(a.name, b.name);
    assert_eq!(a.prompt, "ping\n", "\\r stripped");
    assert_eq!(
        (a.timezone.as_str(), a.enabled, a.source),
        ("UTC", true, ScheduleSource::Runtime)
    );
    let next = a.next_run_at.unwrap();
    assert!(next > OffsetDateTime::now_utc() && next.minute() % 5 == 0, "{next}");

    // A taken name is a 409 naming it.
    let named = NewSchedule {
        name: Some("nightly".into()),
        ..new("0 2 * * *", "x")
    };
    s.create(ws, named.clone()).await.unwrap();
    match s.create(ws, named).await.unwrap_err() {
        ServiceError::Conflict { message, .. } => assert!(message.starts_with("name:"), "{message}"),
        other => panic!("{other:?}"),
    }

    // Bad input names its field and says why.
    let e = field(s.create(ws, new("every day", "x")).await.unwrap_err());
    assert!(
        e.starts_with("cron_expr: needs exactly 5 fields") && e.ends_with("(got \"every day\")"),
        "{e}"
    );
    let tz = NewSchedule {
        timezone: Some("Atlantis/Capital".into()),
        ..new("0 9 * * *", "x")
    };
    assert_eq!(
        field(s.create(ws, tz).await.unwrap_err()),
        "timezone: invalid timezone: Atlantis/Capital"
    );
    assert!(field(s.create(ws, new("", "x")).await.unwrap_err()).starts_with("cron_expr:"));
    assert!(field(s.create(ws, new("0 9 * * *", " \r ")).await.unwrap_err()).starts_with("prompt:"));
    assert_eq!(s.list(ws).await.unwrap().len(), 3, "nothing half-made");

    // Another workspace's schedule is not found through this one.
    let other = workspace(&db, "other").await;
    assert!(matches!(s.get(other, a.id).await, Err(ServiceError::NotFound(_))));
    assert!(matches!(s.delete(other, a.id).await, Err(ServiceError::NotFound(_))));
}

#[tokio::test]
async fn updates_recompute_the_next_run_and_re_enabling_does_not_fire_a_missed_slot() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let s = Schedules::new(db.pool().clone());
    let made = s.create(ws, new("0 9 * * *", "morning")).await.unwrap();

    let moved = s
        .update(
            ws,
            made.id,
            ScheduleChange {
                timezone: Some("Asia/Tokyo".into()),
                ..ScheduleChange::default()
            },
        )
        .await
        .unwrap();
    let next = moved.next_run_at.unwrap();
    assert_eq!(next.hour(), 0, "09:00 in Tokyo is 00:00 UTC: {next}");

    let e = field(
        s.update(
            ws,
            made.id,
            ScheduleChange {
                cron_expr: Some("0 9 * *".into()),
                ..ScheduleChange::default()
            },
        )
        .await
        .unwrap_err(),
    );
    assert!(e.starts_with("cron_expr:"), "{e}");

    // Disabled, its slot left in the past (as after a long pause), then enabled: the next run
    // is recomputed from now, so it does not fire at once.
    s.update(
        ws,
        made.id,
        ScheduleChange {
            enabled: Some(false),
            ..ScheduleChange::default()
        },
    )
    .await
    .unwrap();
    {
        use diesel_async::RunQueryDsl;
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_schedules SET next_run_at = now() - interval '3 days'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let back = s
        .update(
            ws,
            made.id,
            ScheduleChange {
                enabled: Some(true),
                ..ScheduleChange::default()
            },
        )
        .await
        .unwrap();
    assert!(back.next_run_at.unwrap() > OffsetDateTime::now_utc(), "{back:?}");

    s.delete(ws, made.id).await.unwrap();
    assert!(matches!(s.delete(ws, made.id).await, Err(ServiceError::NotFound(_))));
}
