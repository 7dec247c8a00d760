//! The schema against a real Postgres: migrations reverse cleanly, and the SQL status type is
//! exactly the domain's vocabulary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use molecule_db::Migrations;
use molecule_db::schema::workspaces;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{Vocabulary, WorkspaceStatus};
use molecule_testkit::TestDb;

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Every table, type and index in `public` (except diesel's own bookkeeping), as one sorted list.
async fn schema_objects(db: &TestDb) -> Vec<String> {
    let mut conn = db.pool().get().await.unwrap();
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT c.relkind::text || ':' || c.relname AS name FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relname NOT LIKE '__diesel_schema_migrations%'
         UNION ALL
         SELECT 'type:' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE n.nspname = 'public' AND t.typtype = 'e'
         ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_down_up_round_trips() {
    let db = TestDb::empty().await;
    let m = Migrations::default();
    assert_eq!(schema_objects(&db).await, Vec::<String>::new());

    let applied = m.run_pending(db.pool()).await.unwrap();
    assert_eq!(applied, m.versions());
    let after_up = schema_objects(&db).await;
    assert!(after_up.contains(&"r:workspaces".to_owned()), "{after_up:?}");
    assert!(after_up.contains(&"type:workspace_status".to_owned()));
    assert!(m.pending(db.pool()).await.unwrap().is_empty());

    let reverted = m.revert_all(db.pool()).await.unwrap();
    assert_eq!(reverted.len(), m.versions().len());
    assert_eq!(
        schema_objects(&db).await,
        Vec::<String>::new(),
        "down migrations must remove everything"
    );
    assert_eq!(m.pending(db.pool()).await.unwrap(), m.versions());

    m.run_pending(db.pool()).await.unwrap();
    assert_eq!(schema_objects(&db).await, after_up);
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_status_type_is_the_domain_vocabulary() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let rows: Vec<Name> = diesel::sql_query("SELECT unnest(enum_range(NULL::workspace_status))::text AS name")
        .load(&mut conn)
        .await
        .unwrap();
    let sql: Vec<String> = rows.into_iter().map(|r| r.name).collect();
    let domain: Vec<String> = WorkspaceStatus::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(sql, domain);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_status_round_trips_through_the_table() {
    use diesel::{ExpressionMethods, QueryDsl};
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    for status in WorkspaceStatus::ALL {
        let id: uuid::Uuid = diesel::insert_into(workspaces::table)
            .values((
                workspaces::name.eq(format!("ws-{status}")),
                workspaces::status.eq(DbWorkspaceStatus(*status)),
            ))
            .returning(workspaces::id)
            .get_result(&mut conn)
            .await
            .unwrap();
        let back: DbWorkspaceStatus = workspaces::table
            .find(id)
            .select(workspaces::status)
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(back.0, *status);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tests_get_private_databases() {
    let a = TestDb::new().await;
    let b = TestDb::new().await;
    assert_ne!(a.name, b.name);
    a.execute_sql("INSERT INTO workspaces (name) VALUES ('only-in-a')")
        .await;
    let mut conn = b.pool().get().await.unwrap();
    let rows: Vec<Name> = diesel::sql_query("SELECT name FROM workspaces")
        .load(&mut conn)
        .await
        .unwrap();
    assert!(rows.is_empty());
}
