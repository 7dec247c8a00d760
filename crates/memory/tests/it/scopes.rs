//! The resolver on a real database: a tree of depth 3, a cycle, a re-parent, and the org
//! namespace writable only at the root (the lineage from `molecule-tree`'s walk, the rules
//! from `molecule-namespace`).

use molecule_domain::NamespaceKind;
use molecule_memory::scopes::{ResolveError, Resolver};
use molecule_namespace::NamespaceError;
use molecule_testkit::TestDb;
use uuid::Uuid;

async fn ws(db: &TestDb, name: &str, parent: Option<Uuid>) -> Uuid {
    let id = Uuid::new_v4();
    let parent = parent.map_or("NULL".to_owned(), |p| format!("'{p}'"));
    db.execute_sql(&format!(
        "INSERT INTO workspaces (id, name, parent_id) VALUES ('{id}', '{name}', {parent})"
    ))
    .await;
    id
}

fn names(ns: &[molecule_namespace::ResolvedNamespace]) -> Vec<String> {
    ns.iter().map(|n| n.name.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tree_of_depth_three() {
    let db = TestDb::new().await;
    let r = Resolver::new(molecule_tree::Tree::new(db.pool().clone(), Default::default()));
    let root = ws(&db, "acme", None).await;
    let lead = ws(&db, "lead", Some(root)).await;
    let dev = ws(&db, "dev", Some(lead)).await;
    let helper = ws(&db, "helper", Some(dev)).await;

    let at_root = r.readable(root).await.unwrap();
    assert_eq!(
        names(&at_root),
        vec![
            format!("workspace:{root}"),
            format!("team:{root}"),
            format!("org:{root}")
        ]
    );
    assert!(at_root.iter().all(|n| n.writable), "the root writes all three");

    let deep = r.readable(helper).await.unwrap();
    assert_eq!(
        names(&deep),
        vec![
            format!("workspace:{helper}"),
            format!("team:{dev}"),
            format!("org:{root}")
        ]
    );
    assert_eq!(
        deep.iter().map(|n| n.kind).collect::<Vec<_>>(),
        vec![NamespaceKind::Workspace, NamespaceKind::Team, NamespaceKind::Org]
    );
    assert_eq!(deep[1].display_name.as_deref(), Some("dev"));
    assert_eq!(deep[2].display_name.as_deref(), Some("acme"));
    assert_eq!(
        names(&r.writable(helper).await.unwrap()),
        vec![format!("workspace:{helper}"), format!("team:{dev}")],
        "org is read-only below the root"
    );
    assert!(!r.can_write(helper, &format!("org:{root}")).await.unwrap());
    assert!(r.can_write(root, &format!("org:{root}")).await.unwrap());
    assert!(r.can_write(lead, &format!("team:{root}")).await.unwrap());
    assert!(
        !r.can_write(lead, &format!("team:{dev}")).await.unwrap(),
        "a child's team is not mine"
    );
    assert!(!r.can_write(lead, "team:someone-else").await.unwrap());

    // Intersect: request order kept, foreign and duplicate names dropped, empty means all.
    let req = vec![
        format!("org:{root}"),
        "team:acme-corp".to_owned(),
        format!("workspace:{dev}"),
        format!("org:{root}"),
    ];
    let got: Vec<String> = r
        .intersect_readable(dev, &req)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, vec![format!("org:{root}"), format!("workspace:{dev}")]);
    assert_eq!(r.intersect_readable(dev, &[]).await.unwrap().len(), 3);

    // Removed workspaces stay in the chain.
    db.execute_sql(&format!("UPDATE workspaces SET status = 'removed' WHERE id = '{lead}'"))
        .await;
    assert_eq!(
        r.readable(dev).await.unwrap()[1].name.to_string(),
        format!("team:{lead}")
    );

    assert!(matches!(
        r.readable(Uuid::new_v4()).await,
        Err(ResolveError::Namespace(NamespaceError::WorkspaceNotFound(_)))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reparent_takes_effect_on_the_next_call() {
    let db = TestDb::new().await;
    let r = Resolver::new(molecule_tree::Tree::new(db.pool().clone(), Default::default()));
    let a = ws(&db, "a", None).await;
    let b = ws(&db, "b", None).await;
    let child = ws(&db, "child", Some(a)).await;
    assert!(r.can_write(child, &format!("team:{a}")).await.unwrap());
    db.execute_sql(&format!("UPDATE workspaces SET parent_id = '{b}' WHERE id = '{child}'"))
        .await;
    assert!(!r.can_write(child, &format!("team:{a}")).await.unwrap());
    assert!(r.can_write(child, &format!("team:{b}")).await.unwrap());
    assert_eq!(r.readable(child).await.unwrap()[2].name.to_string(), format!("org:{b}"));
    // Made a root: it now writes its own org.
    db.execute_sql(&format!("UPDATE workspaces SET parent_id = NULL WHERE id = '{child}'"))
        .await;
    assert!(r.can_write(child, &format!("org:{child}")).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cycle_ends_at_the_depth_cap() {
    let db = TestDb::new().await;
    let r = Resolver::new(molecule_tree::Tree::new(db.pool().clone(), Default::default()));
    let x = ws(&db, "x", None).await;
    let y = ws(&db, "y", Some(x)).await;
    // Corrupt data the API would refuse: x → y → x.
    db.execute_sql(&format!("UPDATE workspaces SET parent_id = '{y}' WHERE id = '{x}'"))
        .await;
    let ns = tokio::time::timeout(std::time::Duration::from_secs(10), r.readable(x))
        .await
        .expect("the walk terminates")
        .unwrap();
    assert_eq!(ns[1].name.to_string(), format!("team:{y}"));
    assert!(!ns[2].writable, "nobody in a cycle is a root");
    // (A self-loop is refused by the table's own CHECK.)
}
