//! `molecule-schedules` against a real Postgres: the checks a create makes, updates, the
//! claim that fires each due slot once across replicas, and firing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod claim;
mod crud;
mod fire;

use molecule_testkit::TestDb;
use uuid::Uuid;

/// A workspace row to hang schedules on.
pub(crate) async fn workspace(db: &TestDb, name: &str) -> Uuid {
    db.workspace_row(name, None).await
}
