//! `molecule-approvals` against a real Postgres: the checks a request makes, who may decide,
//! one end per request, expiry with its event, and the wait an agent makes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod decide;
mod expire;
mod request;

use std::time::Duration;

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use molecule_approvals::Approvals;
use molecule_testkit::TestDb;
use molecule_tree::{ServiceConfig, ServiceError, Tree};
use uuid::Uuid;

/// A workspace row under `parent`.
pub(crate) async fn workspace(db: &TestDb, name: &str, parent: Option<Uuid>) -> Uuid {
    db.workspace_row(name, parent).await
}

pub(crate) fn approvals(db: &TestDb, max_wait: Duration) -> (Tree, Approvals) {
    let tree = Tree::new(db.pool().clone(), ServiceConfig::default());
    let approvals = Approvals::new(tree.clone(), max_wait);
    (tree, approvals)
}

/// The events recorded about `ws`, oldest first, as `(type, payload)`.
pub(crate) async fn events(db: &TestDb, ws: Uuid) -> Vec<(String, serde_json::Value)> {
    #[derive(diesel::QueryableByName)]
    struct Ev {
        #[diesel(sql_type = Text)]
        event_type: String,
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        payload: serde_json::Value,
    }
    let mut conn = db.pool().get().await.unwrap();
    let rows: Vec<Ev> = diesel::sql_query("SELECT event_type, payload FROM events WHERE workspace_id = $1 ORDER BY id")
        .bind::<SqlUuid, _>(ws)
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|e| (e.event_type, e.payload)).collect()
}

pub(crate) fn field(e: ServiceError) -> String {
    match e {
        ServiceError::Invalid { field, message } => format!("{field}: {message}"),
        other => panic!("not a 400: {other:?}"),
    }
}
