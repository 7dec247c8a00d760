//! Many writers race completion against the sweeper's deadline failures on the same rows:
//! every row ends in exactly one terminal state, decided by exactly one `Applied`, with the
//! winner's result.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::time::Duration;

use molecule_ledger::{Ledger, NewDelegation, Outcome, Update};
use molecule_testkit::TestDb;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completion_races_the_sweeper_and_exactly_one_wins() {
    let db = TestDb::empty().await;
    let ledger = Ledger::new(db.pool().clone());
    ledger.install().await.unwrap();
    const ROWS: usize = 60;
    const COMPLETERS: usize = 4;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for i in 0..ROWS {
        ledger
            .insert(NewDelegation {
                delegation_id: format!("r{i}"),
                caller_id: a,
                callee_id: b,
                task: "t".into(),
                idempotency_key: None,
                deadline: None,
            })
            .await
            .unwrap();
        ledger.set_status(&format!("r{i}"), Update::InProgress).await.unwrap();
    }
    // Every deadline has passed: the sweeper wants to fail all of them.
    db.execute_sql("UPDATE delegations SET deadline = now() - interval '1 second'")
        .await;

    let mut tasks = Vec::new();
    for k in 0..COMPLETERS {
        let l = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            for i in 0..ROWS {
                let id = format!("r{}", (i + k * 7) % ROWS);
                let result = format!("from-{k}");
                match l.set_status(&id, Update::Completed { result: result.clone() }).await {
                    Ok(Outcome::Applied { .. }) => wins.push((id, result)),
                    // Another completer won (replayed/lost) or the sweeper failed it first
                    // (failed -> completed is refused): not this task's transition.
                    Ok(_) | Err(molecule_ledger::LedgerError::InvalidTransition(_)) => {}
                    Err(e) => panic!("{id}: {e}"),
                }
            }
            wins
        }));
    }
    let sweepers: Vec<_> = (0..2)
        .map(|_| {
            let l = ledger.clone();
            tokio::spawn(async move {
                let mut failed = Vec::new();
                for _ in 0..20 {
                    failed.extend(
                        l.sweep(Duration::from_secs(600))
                            .await
                            .unwrap()
                            .deadline_failed
                            .into_iter()
                            .map(|d| d.delegation_id),
                    );
                    tokio::task::yield_now().await;
                }
                failed
            })
        })
        .collect();

    let mut winners: HashMap<String, Vec<String>> = HashMap::new();
    for t in tasks {
        for (id, result) in t.await.unwrap() {
            winners.entry(id).or_default().push(format!("completed:{result}"));
        }
    }
    for s in sweepers {
        for id in s.await.unwrap() {
            winners.entry(id).or_default().push("failed:sweeper".into());
        }
    }
    for i in 0..ROWS {
        let id = format!("r{i}");
        let wins = winners.get(&id).cloned().unwrap_or_default();
        assert_eq!(
            wins.len(),
            1,
            "{id}: exactly one Applied terminal transition, got {wins:?}"
        );
        let row = ledger.get(&id).await.unwrap().unwrap();
        match wins[0].split_once(':').unwrap() {
            ("completed", result) => {
                assert_eq!(row.status.to_string(), "completed");
                assert_eq!(row.result_preview.as_deref(), Some(result), "{id}: the winner's result");
            }
            (_, _) => {
                assert_eq!(row.status.to_string(), "failed");
                assert_eq!(row.error_detail.as_deref(), Some("deadline exceeded by sweeper"));
            }
        }
    }
}
