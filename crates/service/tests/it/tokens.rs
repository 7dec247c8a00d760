//! The token cache against a real database and a live event bus: a busy token is read from
//! the table once, not per request; a revocation through the service, and a change another
//! replica makes (seen only through its notification), end it at once; without a live bus
//! nothing is cached.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use diesel_async::RunQueryDsl;
use molecule_api::workspaces::CreateWorkspace;
use molecule_service::{ServiceConfig, Services};
use molecule_testkit::TestDb;
use uuid::Uuid;

/// A workspace and a token of it, once the bus has heard of the mint (a change it hears of
/// later would rightly end a cached validation).
async fn workspace_with_token(s: &Services) -> (Uuid, String) {
    let mut events = s.bus().subscribe();
    let id = s
        .create_workspace(CreateWorkspace {
            name: format!("cached-{}", Uuid::new_v4().simple()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let token = s.tree().mint_token(id).await.unwrap().auth_token;
    if s.bus().is_listening() {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let e = events.recv().await.unwrap();
                if e.event == "TOKEN_MINTED" && e.workspace_id == Some(id) {
                    break;
                }
            }
        })
        .await
        .expect("the mint's notification");
    }
    (id, token)
}

/// Takes the token's row away behind the service's back (no event, no notification): only a
/// cached validation still accepts it.
async fn delete_silently(db: &TestDb, id: Uuid) {
    let mut conn = db.pool().get().await.unwrap();
    diesel::sql_query("DELETE FROM workspace_auth_tokens WHERE workspace_id = $1")
        .bind::<diesel::sql_types::Uuid, _>(id)
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn refused_within(s: &Services, token: &str, id: Uuid, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if s.tree().authorize_workspace(token, id).await.is_err() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_token_is_read_once_and_any_revocation_ends_it_at_once() {
    let db = TestDb::new().await;
    let s = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    let _listener = s.bus().spawn_listener(db.url().to_owned(), db.pool().clone());
    assert!(s.bus().wait_listening(Duration::from_secs(10)).await);

    // Cached: the row is gone, and the token still works (within the TTL).
    let (a, token_a) = workspace_with_token(&s).await;
    s.tree().authorize_workspace(&token_a, a).await.unwrap();
    delete_silently(&db, a).await;
    s.tree()
        .authorize_workspace(&token_a, a)
        .await
        .expect("a validation made a moment ago is trusted");
    // The owner check still applies to a cached token.
    assert!(s.tree().authorize_workspace(&token_a, Uuid::new_v4()).await.is_err());

    // A revocation through this process is refused on the very next call, before any
    // notification could say so: this service's bus listens to another database and hears
    // nothing of this one.
    let elsewhere = TestDb::new().await;
    let deaf = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    let _deaf_listener = deaf
        .bus()
        .spawn_listener(elsewhere.url().to_owned(), elsewhere.pool().clone());
    assert!(deaf.bus().wait_listening(Duration::from_secs(10)).await);
    let (b, token_b) = workspace_with_token(&s).await;
    deaf.tree().authorize_workspace(&token_b, b).await.unwrap();
    delete_silently(&db, b).await;
    deaf.tree().authorize_workspace(&token_b, b).await.expect("cached");
    let (b2, token_b2) = workspace_with_token(&s).await;
    deaf.tree().authorize_workspace(&token_b2, b2).await.unwrap();
    let token_id = deaf.tree().list_tokens(b2).await.unwrap()[0].id;
    deaf.tree().revoke_token(b2, token_id).await.unwrap();
    assert!(
        deaf.tree().authorize_workspace(&token_b2, b2).await.is_err(),
        "revoked, yet accepted"
    );
    // And every other cached validation in the process is dropped with it (the cautious side).
    assert!(deaf.tree().authorize_workspace(&token_b, b).await.is_err());

    // Another replica's change reaches this one by its notification only: a revoked row and
    // the event it records, written straight to the database.
    let (c, token_c) = workspace_with_token(&s).await;
    s.tree().authorize_workspace(&token_c, c).await.unwrap();
    {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_auth_tokens SET revoked_at = now() WHERE workspace_id = $1")
            .bind::<diesel::sql_types::Uuid, _>(c)
            .execute(&mut conn)
            .await
            .unwrap();
        diesel::sql_query(
            "SELECT pg_notify('molecule_events', json_build_object('id', 1, 'event', 'TOKEN_REVOKED',
                    'workspace_id', $1::text, 'timestamp', now(), 'payload', '{}'::json)::text)",
        )
        .bind::<diesel::sql_types::Uuid, _>(c)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    assert!(
        refused_within(&s, &token_c, c, Duration::from_secs(2)).await,
        "another replica's revocation was not heard"
    );

    // Without a live bus (a second service with no listener), every call reads the table.
    let quiet = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    let (d, token_d) = workspace_with_token(&quiet).await;
    quiet.tree().authorize_workspace(&token_d, d).await.unwrap();
    delete_silently(&db, d).await;
    assert!(quiet.tree().authorize_workspace(&token_d, d).await.is_err());
}
