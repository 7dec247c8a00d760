//! `molecule-instructions` against a real Postgres: the checks a rule gets (each names its
//! field; lengths in characters), the listings' order, updates that leave scope alone, and
//! the resolved text in the original's layout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use molecule_domain::InstructionScope;
use molecule_instructions::{InstructionChange, Instructions, Listing, NewInstruction};
use molecule_testkit::TestDb;
use molecule_tree::{ServiceConfig, ServiceError, Tree};
use uuid::Uuid;

async fn workspace(db: &TestDb, name: &str) -> Uuid {
    db.workspace_row(name, None).await
}

fn rule(scope: &str, target: Option<Uuid>, title: &str, priority: i32) -> NewInstruction {
    NewInstruction {
        scope: scope.into(),
        scope_target: target.map(|t| t.to_string()),
        title: title.into(),
        content: format!("{title} body"),
        priority: Some(priority),
        enabled: None,
    }
}

fn field(e: ServiceError) -> String {
    match e {
        ServiceError::Invalid { field, message } => format!("{field}: {message}"),
        other => panic!("not a 400: {other:?}"),
    }
}

#[tokio::test]
async fn a_rule_is_checked_field_by_field() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let i = Instructions::new(Tree::new(db.pool().clone(), ServiceConfig::default()));

    assert!(
        field(i.create(rule("team", None, "t", 0)).await.unwrap_err())
            .starts_with("scope: must be global or workspace")
    );
    assert_eq!(
        field(i.create(rule("workspace", None, "t", 0)).await.unwrap_err()),
        "scope_target: required for workspace scope"
    );
    assert!(
        field(i.create(rule("global", Some(ws), "t", 0)).await.unwrap_err()).starts_with("scope_target: a global rule")
    );
    assert!(
        field(
            i.create(rule("workspace", Some(Uuid::new_v4()), "t", 0))
                .await
                .unwrap_err()
        )
        .starts_with("scope_target: no live workspace")
    );
    let mut bad = rule("workspace", None, "t", 0);
    bad.scope_target = Some("not-a-uuid".into());
    assert!(field(i.create(bad).await.unwrap_err()).starts_with("scope_target: must be a workspace id"));
    assert_eq!(
        field(i.create(rule("global", None, "", 0)).await.unwrap_err()),
        "title: required"
    );
    assert_eq!(
        field(i.create(rule("global", None, &"ü".repeat(201), 0)).await.unwrap_err()),
        "title: exceeds 200 chars (got 201)"
    );
    // 8192 characters of two bytes each fit (the original counted bytes and refused them).
    let mut long = rule("global", None, &"ü".repeat(200), 0);
    long.content = "ü".repeat(8192);
    i.create(long).await.unwrap();
    let mut longer = rule("global", None, "t", 0);
    longer.content = "ü".repeat(8193);
    assert_eq!(
        field(i.create(longer).await.unwrap_err()),
        "content: exceeds 8192 chars (got 8193)"
    );
}

#[tokio::test]
async fn listings_and_the_resolved_text_keep_the_originals_order() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let other = workspace(&db, "other").await;
    let i = Instructions::new(Tree::new(db.pool().clone(), ServiceConfig::default()));
    assert_eq!(i.resolve(ws).await.unwrap(), "", "no rules, no text");

    let low = i.create(rule("global", None, "Be kind", 1)).await.unwrap();
    let high = i.create(rule("global", None, "Be brief", 5)).await.unwrap();
    let mine = i
        .create(rule("workspace", Some(ws), "You review code", 0))
        .await
        .unwrap();
    let theirs = i
        .create(rule("workspace", Some(other), "You write docs", 9))
        .await
        .unwrap();
    let off = i.create(rule("global", None, "Old rule", 7)).await.unwrap();
    i.update(
        off.id,
        InstructionChange {
            enabled: Some(false),
            ..InstructionChange::default()
        },
    )
    .await
    .unwrap();

    let ids = |v: Vec<molecule_instructions::Instruction>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(i.list(Listing::For(ws)).await.unwrap()), [high.id, low.id, mine.id]);
    assert_eq!(
        ids(i.list(Listing::All(None)).await.unwrap()),
        [off.id, high.id, low.id, theirs.id, mine.id],
        "the operator sees disabled rules too: scope, then priority"
    );
    assert_eq!(
        ids(i.list(Listing::All(Some(InstructionScope::Workspace))).await.unwrap()),
        [theirs.id, mine.id]
    );

    assert_eq!(
        i.resolve(ws).await.unwrap(),
        "\n## Platform-Wide Rules\n\n### Be brief\nBe brief body\n\n### Be kind\nBe kind body\n\n\
         \n## Role-Specific Rules\n\n### You review code\nYou review code body\n\n"
    );

    // Updates change what they name; scope and target stay.
    let changed = i
        .update(
            mine.id,
            InstructionChange {
                title: Some("You merge code".into()),
                priority: Some(3),
                ..InstructionChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (changed.title.as_str(), changed.priority, changed.scope_target),
        ("You merge code", 3, Some(ws))
    );
    assert!(changed.updated_at > mine.updated_at);
    assert_eq!(
        field(
            i.update(
                mine.id,
                InstructionChange {
                    content: Some(" ".into()),
                    ..InstructionChange::default()
                }
            )
            .await
            .unwrap_err()
        ),
        "content: required"
    );
    i.delete(theirs.id).await.unwrap();
    assert!(matches!(
        i.delete(theirs.id).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
    assert!(matches!(
        i.update(theirs.id, InstructionChange::default()).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
}
