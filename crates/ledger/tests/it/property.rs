//! Random interleavings of insert, set_status, heartbeat and sweep over many delegations,
//! checked against a model of the state machine on a real database: no forbidden transition,
//! no lost result, and exactly one `Applied` per real transition.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::time::Duration;

use molecule_domain::DelegationStatus;
use molecule_ledger::{Inserted, Ledger, LedgerError, NewDelegation, Outcome, Update};
use molecule_testkit::TestDb;
use proptest::prelude::*;
use uuid::Uuid;

const N: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    Insert(usize),
    Set(usize, u8),
    Heartbeat(usize),
    /// Makes the deadline pass (SQL), to be acted on by the next sweep.
    Expire(usize),
    /// Ages the heartbeat past the threshold (SQL).
    Stale(usize),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..N).prop_map(Op::Insert),
        6 => ((0..N), 0u8..4).prop_map(|(i, u)| Op::Set(i, u)),
        2 => (0..N).prop_map(Op::Heartbeat),
        1 => (0..N).prop_map(Op::Expire),
        1 => (0..N).prop_map(Op::Stale),
        2 => Just(Op::Sweep),
    ]
}

#[derive(Debug, Clone, Default)]
struct Row {
    status: Option<DelegationStatus>,
    result: Option<String>,
    expired: bool,
    stale: bool,
    has_heartbeat: bool,
}

fn update(u: u8, step: usize) -> Update {
    match u {
        0 => Update::Dispatched,
        1 => Update::InProgress,
        2 => Update::Completed {
            result: format!("result-{step}"),
        },
        _ => Update::Failed {
            error: format!("error-{step}"),
        },
    }
}

async fn run_case(l: &Ledger, db: &TestDb, case: &str, ops: &[Op]) {
    // The sweep is global: start every case from an empty table.
    db.execute_sql("DELETE FROM delegations").await;
    let id = |i: usize| format!("{case}-{i}");
    let (caller, callee) = (Uuid::new_v4(), Uuid::new_v4());
    let mut model: HashMap<usize, Row> = (0..N).map(|i| (i, Row::default())).collect();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Insert(i) => {
                let got = l
                    .insert(NewDelegation {
                        delegation_id: id(*i),
                        caller_id: caller,
                        callee_id: callee,
                        task: "t".into(),
                        idempotency_key: None,
                        deadline: None,
                    })
                    .await
                    .unwrap();
                let row = model.get_mut(i).unwrap();
                match (&row.status, got) {
                    (None, Inserted::Created(_)) => row.status = Some(DelegationStatus::Queued),
                    (Some(_), Inserted::Existing(_)) => {}
                    (m, g) => panic!("insert {i}: model {m:?}, got {g:?}"),
                }
            }
            Op::Set(i, u) => {
                let upd = update(*u, step);
                let to = upd.status();
                let got = l.set_status(&id(*i), upd.clone()).await;
                let row = model.get_mut(i).unwrap();
                match row.status {
                    None => assert_eq!(got.unwrap(), Outcome::NotFound, "set {i} before insert"),
                    Some(from) if from == to => assert_eq!(got.unwrap(), Outcome::Replayed, "{from} -> {to}"),
                    Some(from) => match from.check_transition(to) {
                        Ok(_) => {
                            match got.unwrap() {
                                Outcome::Applied { from: f, .. } => assert_eq!(f, from),
                                other => panic!("{from} -> {to}: expected Applied, got {other:?}"),
                            }
                            row.status = Some(to);
                            if let Update::Completed { result } = upd {
                                row.result = Some(result);
                            }
                            if to == DelegationStatus::InProgress {
                                row.has_heartbeat = true;
                                row.stale = false;
                            }
                        }
                        Err(_) => assert!(
                            matches!(got, Err(LedgerError::InvalidTransition(_))),
                            "{from} -> {to}: {got:?}"
                        ),
                    },
                }
            }
            Op::Heartbeat(i) => {
                let touched = l.heartbeat(&id(*i)).await.unwrap();
                let row = model.get_mut(i).unwrap();
                let in_flight = row.status.is_some_and(|s| s.is_in_flight());
                assert_eq!(touched, in_flight, "heartbeat {i} in {:?}", row.status);
                if in_flight {
                    row.has_heartbeat = true;
                    row.stale = false;
                    if row.status == Some(DelegationStatus::Stuck) {
                        row.status = Some(DelegationStatus::InProgress);
                    }
                }
            }
            Op::Expire(i) => {
                db.execute_sql(&format!(
                    "UPDATE delegations SET deadline = now() - interval '1 second' WHERE delegation_id = '{}'",
                    id(*i)
                ))
                .await;
                let row = model.get_mut(i).unwrap();
                if row.status.is_some() {
                    row.expired = true;
                }
            }
            Op::Stale(i) => {
                db.execute_sql(&format!("UPDATE delegations SET last_heartbeat = now() - interval '1 hour' WHERE delegation_id = '{}' AND last_heartbeat IS NOT NULL", id(*i))).await;
                let row = model.get_mut(i).unwrap();
                if row.has_heartbeat {
                    row.stale = true;
                }
            }
            Op::Sweep => {
                let report = l.sweep(Duration::from_secs(600)).await.unwrap();
                let mut failed = 0;
                let mut stuck = 0;
                for (i, row) in model.iter_mut() {
                    let Some(s) = row.status else { continue };
                    if row.expired && s.is_in_flight() {
                        row.status = Some(DelegationStatus::Failed);
                        failed += 1;
                        assert!(report.deadline_failed.iter().any(|d| d.delegation_id == id(*i)));
                    } else if row.stale
                        && row.has_heartbeat
                        && matches!(
                            s,
                            DelegationStatus::Queued | DelegationStatus::Dispatched | DelegationStatus::InProgress
                        )
                    {
                        row.status = Some(DelegationStatus::Stuck);
                        stuck += 1;
                    }
                }
                assert_eq!(
                    (report.deadline_failures, report.stuck_marked),
                    (failed, stuck),
                    "sweep report"
                );
            }
        }
        // The database agrees with the model after every step.
        for (i, row) in &model {
            let got = l.get(&id(*i)).await.unwrap();
            match (&row.status, got) {
                (None, None) => {}
                (Some(s), Some(d)) => {
                    assert_eq!(d.status, *s, "row {i} after {op:?}");
                    if *s == DelegationStatus::Completed {
                        assert_eq!(
                            d.result_preview, row.result,
                            "row {i}: the applied completion's result is kept"
                        );
                    }
                }
                (m, g) => panic!("row {i}: model {m:?}, db {g:?}"),
            }
        }
    }
}

#[test]
fn random_interleavings_match_the_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, ledger) = rt.block_on(async {
        let db = TestDb::empty().await;
        let l = Ledger::new(db.pool().clone());
        l.install().await.unwrap();
        (db, l)
    });
    let case = std::sync::atomic::AtomicU32::new(0);
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..60))| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        rt.block_on(run_case(&ledger, &db, &format!("c{n}"), &ops));
    });
}
