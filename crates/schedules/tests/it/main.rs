//! `molecule-schedules` against a real Postgres: the checks a create makes, updates, the
//! claim that fires each due slot once across replicas, and firing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod claim;
mod crud;
mod fire;

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use molecule_testkit::TestDb;
use uuid::Uuid;

/// A workspace row to hang schedules on (tests may name any table).
pub(crate) async fn workspace(db: &TestDb, name: &str) -> Uuid {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let mut conn = db.pool().get().await.unwrap();
    let row: Id = diesel::sql_query("INSERT INTO workspaces (name) VALUES ($1) RETURNING id")
        .bind::<Text, _>(name)
        .get_result(&mut conn)
        .await
        .unwrap();
    row.id
}
