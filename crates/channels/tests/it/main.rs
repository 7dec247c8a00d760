//! `molecule-channels` against a real Postgres: the Telegram poller's lease (one holder; a live
//! holder keeps it; a lapsed one is taken over; a config change fences the holder out), the
//! position moved only by its holder, and inbound messages taken in once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use molecule_channels::store::{self, Change, NewMessage, NewRow, Write};
use molecule_domain::{ChannelMessageStatus, ChannelType};
use molecule_testkit::TestDb;
use serde_json::json;
use uuid::Uuid;

async fn channel(db: &TestDb) -> (Uuid, Uuid) {
    let ws = Uuid::new_v4();
    db.execute_sql(&format!("INSERT INTO workspaces (id, name) VALUES ('{ws}', 'chatty')"))
        .await;
    let id = Uuid::new_v4();
    let mut conn = db.pool().get().await.unwrap();
    let empty = json!({});
    let row = NewRow {
        id,
        workspace_id: ws,
        kind: ChannelType::Telegram,
        config: &json!({ "chat_id": "1" }),
        secrets: &empty,
        enabled: true,
        allowed_users: None,
        budget: None,
        source: "runtime",
    };
    assert_eq!(store::write(&mut conn, row, Write::Insert).await.unwrap(), Some(id));
    let again = NewRow {
        id: Uuid::new_v4(),
        workspace_id: ws,
        kind: ChannelType::Telegram,
        config: &empty,
        secrets: &empty,
        enabled: true,
        allowed_users: None,
        budget: None,
        source: "runtime",
    };
    assert_eq!(
        store::write(&mut conn, again, Write::Insert).await.unwrap(),
        None,
        "one channel per type per workspace"
    );
    (ws, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_replica_holds_a_poller_lease_until_it_lapses_or_the_config_changes() {
    let db = TestDb::new().await;
    let (ws, id) = channel(&db).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut conn = db.pool().get().await.unwrap();
    let (version, offset) = store::claim_poller(&mut conn, id, a, 60).await.unwrap().unwrap();
    assert_eq!(offset, 0);
    assert!(
        store::claim_poller(&mut conn, id, b, 60).await.unwrap().is_none(),
        "a live holder keeps it"
    );
    assert!(
        store::claim_poller(&mut conn, id, a, 60).await.unwrap().is_some(),
        "the holder may claim again"
    );
    // Only the holder moves the position.
    assert!(store::advance_offset(&mut conn, id, a, 41).await.unwrap());
    assert!(!store::advance_offset(&mut conn, id, b, 99).await.unwrap());
    assert!(store::renew_poller(&mut conn, id, a, version, 60).await.unwrap());
    // A config change fences the holder out at its next renewal.
    let changed = Change {
        enabled: Some(true),
        ..Change::default()
    };
    assert!(store::update(&mut conn, ws, id, changed).await.unwrap());
    assert!(!store::renew_poller(&mut conn, id, a, version, 60).await.unwrap());
    // A lapsed lease goes to whoever claims next, with the position where it was.
    db.execute_sql(&format!(
        "UPDATE workspace_channels SET poller_lease_until = now() - interval '1 second' WHERE id = '{id}'"
    ))
    .await;
    let (_, offset) = store::claim_poller(&mut conn, id, b, 60).await.unwrap().unwrap();
    assert_eq!(offset, 42);
    assert!(
        !store::advance_offset(&mut conn, id, a, 50).await.unwrap(),
        "the old holder is fenced out"
    );
    // A disabled row is nobody's.
    store::disable(&mut conn, id, "test").await.unwrap();
    store::release_poller(&mut conn, id, b).await.unwrap();
    assert!(store::claim_poller(&mut conn, id, a, 60).await.unwrap().is_none());
    // Another workspace cannot touch it.
    assert!(
        !store::update(&mut conn, Uuid::new_v4(), id, Change::default())
            .await
            .unwrap()
    );
    assert!(store::get(&mut conn, Uuid::new_v4(), id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_is_taken_in_once_and_a_final_status_stays() {
    let db = TestDb::new().await;
    let (ws, id) = channel(&db).await;
    let mut conn = db.pool().get().await.unwrap();
    let m = |ext: &'static str| NewMessage {
        channel_id: id,
        workspace_id: ws,
        external_id: ext,
        a2a_message_id: "channel-telegram-x-1",
        chat_id: "1",
        user_id: "u",
        username: "ada",
        text: "hello",
        reply_context: &serde_json::Value::Null,
        status: ChannelMessageStatus::Received,
    };
    let first = store::take_in(&mut conn, m("1")).await.unwrap().unwrap();
    assert!(
        store::take_in(&mut conn, m("1")).await.unwrap().is_none(),
        "a retry is a duplicate"
    );
    assert!(
        store::set_status(&mut conn, first, ChannelMessageStatus::Answered, Some("hi"), None)
            .await
            .unwrap()
    );
    assert!(
        store::set_status(&mut conn, first, ChannelMessageStatus::Replied, Some("hi"), None)
            .await
            .unwrap()
    );
    assert!(
        !store::set_status(&mut conn, first, ChannelMessageStatus::Failed, None, Some("late"))
            .await
            .unwrap(),
        "a final status is never left"
    );
    let found = store::by_a2a_id(&mut conn, "channel-telegram-x-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.status().unwrap(), ChannelMessageStatus::Replied);
    let history = store::history(&mut conn, id, "1").await.unwrap();
    assert_eq!((history.len(), history[0].reply.as_str()), (1, "hi"));
    store::reset_history(&mut conn, id, "1").await.unwrap();
    assert!(store::history(&mut conn, id, "1").await.unwrap().is_empty());
}
