//! Secrets against a real database: the original's shapes and precedence, ciphertext bound to
//! its row, restarts through the hooks, the boot check of key ids, rotate-key, and the model
//! stored as the runtime's secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use molecule_api::secrets::{SetModel, SetSecret};
use molecule_api::workspaces::CreateWorkspace;
use molecule_secrets::{ExposeSecret, Keyring, SecretString};
use molecule_service::{ServiceError, Services, WorkloadHooks};
use molecule_testkit::TestDb;
use molecule_vault::secrets::KeyringRefused;
use uuid::Uuid;

const KEY_A: &str = "0123456789abcdef0123456789abcdef";
const KEY_B: &str = "fedcba9876543210fedcba9876543210";
const CANARY: &str = "sk-canary-7f3a9c2e51d84b06";

#[derive(Default)]
struct Restarts(Mutex<Vec<Uuid>>);

#[async_trait::async_trait]
impl WorkloadHooks for Restarts {
    fn has_provisioner(&self) -> bool {
        true
    }
    async fn restart(&self, id: Uuid, _reset: bool) -> molecule_api::hooks::RestartOutcome {
        self.0.lock().unwrap().push(id);
        molecule_api::hooks::RestartOutcome::Started
    }
}

fn ring(primary: Option<&str>, previous: &[&str]) -> Arc<Keyring> {
    let previous: Vec<SecretString> = previous.iter().map(|k| SecretString::from(*k)).collect();
    Arc::new(Keyring::new(primary.map(SecretString::from).as_ref(), &previous).unwrap())
}

fn services(db: &TestDb, keyring: Arc<Keyring>, hooks: Arc<Restarts>) -> Services {
    Services::new(db.pool().clone(), Default::default())
        .unwrap()
        .with_keyring(keyring)
        .with_hooks(hooks)
}

fn set(key: &str, value: &str) -> SetSecret {
    SetSecret {
        key: key.into(),
        value: SecretString::from(value),
    }
}

async fn create(s: &Services, name: &str, secrets: &[(&str, &str)], model: Option<&str>) -> Uuid {
    s.create_workspace(CreateWorkspace {
        name: name.into(),
        model: model.map(str::to_owned),
        secrets: secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretString::from(*v)))
            .collect(),
        ..Default::default()
    })
    .await
    .unwrap()
    .id
}

fn values(map: BTreeMap<String, SecretString>) -> BTreeMap<String, String> {
    map.into_iter()
        .map(|(k, v)| (k, v.expose_secret().to_owned()))
        .collect()
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    key: String,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    encrypted_value: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    encryption_version: i16,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    key_id: Option<String>,
}

async fn rows(db: &TestDb) -> Vec<Row> {
    let mut c = db.pool().get().await.unwrap();
    diesel::sql_query(
        "SELECT key, encrypted_value, encryption_version, key_id FROM workspace_secrets
         UNION ALL SELECT key, encrypted_value, encryption_version, key_id FROM global_secrets",
    )
    .load(&mut c)
    .await
    .unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_keep_the_original_shapes_and_precedence_and_are_sealed_to_their_row() {
    let db = TestDb::new().await;
    let hooks = Arc::new(Restarts::default());
    let keyring = ring(Some(KEY_A), &[]);
    let s = services(&db, keyring.clone(), hooks.clone());
    let own = create(&s, "own", &[("OPENAI_API_KEY", CANARY)], Some("minimax/MiniMax-M2.7")).await;
    let plain = create(&s, "plain", &[], None).await;

    // A global reaches every workspace without its own value; the change restarts only those.
    let changed = s
        .vault()
        .set_global_secret(set("OPENAI_API_KEY", "sk-global"))
        .await
        .unwrap();
    assert_eq!((changed.status, changed.key.as_str()), ("saved", "OPENAI_API_KEY"));
    assert_eq!(changed.restarted, vec![plain]);
    let mut both = s
        .vault()
        .set_global_secret(set("GITHUB_TOKEN", "ghp-global"))
        .await
        .unwrap()
        .restarted;
    both.sort();
    let mut want = vec![own, plain];
    want.sort();
    assert_eq!(both, want);

    // Lists: no values; the overridden global is hidden; the shape is the original's.
    let listed = serde_json::to_value(s.vault().list_secrets(own).await.unwrap()).unwrap();
    let by_key: BTreeMap<String, serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_str().unwrap().to_owned(), e.clone()))
        .collect();
    assert_eq!(
        by_key.keys().map(String::as_str).collect::<Vec<_>>(),
        ["GITHUB_TOKEN", "LLM_PROVIDER", "MODEL_PROVIDER", "OPENAI_API_KEY"]
    );
    assert_eq!(by_key["OPENAI_API_KEY"]["scope"], "workspace");
    assert_eq!(by_key["GITHUB_TOKEN"]["scope"], "global");
    for e in by_key.values() {
        let mut fields: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort();
        assert_eq!(fields, ["created_at", "has_value", "key", "scope", "updated_at"]);
        assert_eq!(e["has_value"], true);
    }
    assert!(!listed.to_string().contains(CANARY));
    let plain_list = serde_json::to_value(s.vault().list_secrets(plain).await.unwrap()).unwrap();
    assert_eq!(plain_list[1]["key"], "OPENAI_API_KEY");
    assert_eq!(plain_list[1]["scope"], "global");

    // Values: globals, then the workspace's own on top; the model as the runtime reads it.
    let v = values(s.vault().secret_values(own).await.unwrap());
    assert_eq!(v["OPENAI_API_KEY"], CANARY);
    assert_eq!(v["GITHUB_TOKEN"], "ghp-global");
    assert_eq!(v["MODEL_PROVIDER"], "minimax/MiniMax-M2.7");
    assert_eq!(v["LLM_PROVIDER"], "minimax");
    assert_eq!(
        values(s.vault().secret_values(plain).await.unwrap())["OPENAI_API_KEY"],
        "sk-global"
    );

    // At rest: ciphertext under the key's id, never the value.
    let stored = rows(&db).await;
    assert!(!stored.is_empty());
    for r in &stored {
        assert_eq!(r.encryption_version, 2, "{}", r.key);
        assert_eq!(r.key_id.as_deref(), keyring.primary_id());
        assert!(!contains(&r.encrypted_value, CANARY) && !contains(&r.encrypted_value, "sk-global"));
    }

    // A ciphertext moved into another row does not open there.
    s.vault()
        .set_secret(plain, set("OTHER", "value-of-plain"))
        .await
        .unwrap();
    let mut c = db.pool().get().await.unwrap();
    diesel::sql_query(
        "WITH a AS (SELECT id, encrypted_value FROM workspace_secrets WHERE workspace_id = $1 AND key = 'OPENAI_API_KEY'),
              b AS (SELECT id, encrypted_value FROM workspace_secrets WHERE workspace_id = $2 AND key = 'OTHER')
         UPDATE workspace_secrets w SET encrypted_value = CASE WHEN w.id = a.id THEN b.encrypted_value ELSE a.encrypted_value END
         FROM a, b WHERE w.id IN (a.id, b.id)",
    )
    .bind::<diesel::sql_types::Uuid, _>(own)
    .bind::<diesel::sql_types::Uuid, _>(plain)
    .execute(&mut c)
    .await
    .unwrap();
    for id in [own, plain] {
        let err = s.vault().secret_values(id).await.unwrap_err();
        assert!(matches!(err, ServiceError::Internal { .. }), "{err:?}");
        let text = err.chain();
        assert!(text.contains("cannot be opened") && !text.contains(CANARY), "{text}");
    }
    drop(c);

    // Delete: the original's answer, 404 the second time, a restart of the workspace.
    hooks.0.lock().unwrap().clear();
    let gone = s.vault().delete_secret(plain, "OTHER").await.unwrap();
    assert_eq!(
        (gone.status, gone.restarted.as_slice()),
        ("deleted", [plain].as_slice())
    );
    assert!(matches!(
        s.vault().delete_secret(plain, "OTHER").await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        s.vault().delete_global_secret("NOPE").await,
        Err(ServiceError::NotFound(_))
    ));
    assert_eq!(*hooks.0.lock().unwrap(), vec![plain]);

    // Bad input names its field; a bad secret at create leaves no workspace behind.
    for (k, v) in [("1BAD", "x"), ("has-dash", "x"), ("", "x")] {
        assert!(matches!(
            s.vault().set_secret(plain, set(k, v)).await,
            Err(ServiceError::Invalid { field: "key", .. })
        ));
    }
    let huge = "x".repeat(molecule_vault::secrets::MAX_VALUE_BYTES + 1);
    assert!(matches!(
        s.vault().set_secret(plain, set("BIG", &huge)).await,
        Err(ServiceError::Invalid { field: "value", .. })
    ));
    let before = s.tree().list_workspaces().await.unwrap().len();
    let refused = s
        .create_workspace(CreateWorkspace {
            name: "bad-secret".into(),
            secrets: [("no-dash".to_owned(), SecretString::from("v"))].into(),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Invalid { field: "secrets", .. })),
        "{refused:?}"
    );
    assert_eq!(s.tree().list_workspaces().await.unwrap().len(), before);

    // No event carries a value.
    let mut c = db.pool().get().await.unwrap();
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = diesel::sql_types::Text)]
        payload: String,
    }
    let events: Vec<P> = diesel::sql_query("SELECT payload::text AS payload FROM events")
        .load(&mut c)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.payload.contains("OPENAI_API_KEY")));
    assert!(
        events
            .iter()
            .all(|e| !e.payload.contains(CANARY) && !e.payload.contains("sk-global"))
    );
}

#[tokio::test]
async fn the_model_and_its_provider_are_stored_for_the_runtime() {
    let db = TestDb::new().await;
    let s = services(&db, ring(None, &[]), Arc::new(Restarts::default()));
    let id = create(&s, "modelled", &[], Some("minimax/MiniMax-M2.7")).await;
    let m = s.vault().get_model(id).await.unwrap();
    assert_eq!(
        (m.model.as_deref(), m.llm_provider.as_deref()),
        (Some("minimax/MiniMax-M2.7"), Some("minimax"))
    );
    let changed = s
        .vault()
        .set_model(
            id,
            SetModel {
                model: Some("anthropic:claude-opus-4-7".into()),
                llm_provider: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.llm_provider.as_deref(), Some("anthropic"));
    assert_eq!(changed.restarted, vec![id]);
    // An explicit provider wins; an underivable slug drops a stale provider.
    let p = s
        .vault()
        .set_model(
            id,
            SetModel {
                model: Some("sonnet".into()),
                llm_provider: Some("anthropic".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(p.llm_provider.as_deref(), Some("anthropic"));
    s.vault()
        .set_model(
            id,
            SetModel {
                model: Some("mystery".into()),
                llm_provider: None,
            },
        )
        .await
        .unwrap();
    let v = values(s.vault().secret_values(id).await.unwrap());
    assert_eq!(v.get("MODEL_PROVIDER").map(String::as_str), Some("mystery"));
    assert!(!v.contains_key("LLM_PROVIDER"), "{v:?}");
    assert_eq!(
        s.tree().get_workspace(id).await.unwrap().model.as_deref(),
        Some("mystery")
    );
    let bad = s
        .vault()
        .set_model(
            id,
            SetModel {
                model: Some("x".into()),
                llm_provider: Some("no spaces".into()),
            },
        )
        .await;
    assert!(matches!(
        bad,
        Err(ServiceError::Invalid {
            field: "llm_provider",
            ..
        })
    ));
    // Without a key, values are plaintext rows (version 0).
    assert!(
        rows(&db)
            .await
            .iter()
            .all(|r| r.encryption_version == 0 && r.key_id.is_none())
    );
}

#[tokio::test]
async fn an_unknown_key_refuses_boot_and_rotate_key_reseals_every_row_once() {
    let db = TestDb::new().await;
    let hooks = Arc::new(Restarts::default());
    // Rows of three kinds: plaintext (no key yet), then under key A.
    let plain = services(&db, ring(None, &[]), hooks.clone());
    let early = create(&plain, "early", &[("EARLY", "plain-value")], None).await;
    let a = services(&db, ring(Some(KEY_A), &[]), hooks.clone());
    let later = create(&a, "later", &[("LATER", "a-value")], None).await;
    a.vault().set_global_secret(set("SHARED", "global-a")).await.unwrap();
    assert_eq!(
        a.vault().check_keyring().await.unwrap().stale(&ring(Some(KEY_A), &[])),
        1
    );

    // Key B alone: the rows sealed under A name A's key id, and the server must not start.
    let b_only = ring(Some(KEY_B), &[]);
    let refused = services(&db, b_only.clone(), hooks.clone())
        .vault()
        .check_keyring()
        .await
        .unwrap_err();
    let a_id = ring(Some(KEY_A), &[]).primary_id().unwrap().to_owned();
    assert!(
        matches!(&refused, KeyringRefused::UnknownKey { key_id, .. } if *key_id == a_id),
        "{refused}"
    );
    let line = refused.to_string();
    assert!(!line.contains('\n') && line.contains("SECRETS_PREVIOUS_KEYS"), "{line}");

    // B with A as a previous key: starts, and rotate-key moves every row to B in batches.
    let rotating = ring(Some(KEY_B), &[KEY_A]);
    let b = services(&db, rotating.clone(), hooks.clone());
    assert_eq!(b.vault().check_keyring().await.unwrap().stale(&rotating), 3);
    assert_eq!(b.vault().rotate_key_remaining().await.unwrap(), 3);
    let mut total = 0;
    loop {
        let n = b.vault().rotate_key_batch(1).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 2, "one row per table per batch");
        total += n;
    }
    assert_eq!(total, 3);
    assert_eq!(
        b.vault().rotate_key_batch(100).await.unwrap(),
        0,
        "a second run is a no-op"
    );
    assert!(
        rows(&db)
            .await
            .iter()
            .all(|r| r.key_id.as_deref() == b_only.primary_id())
    );
    // Now B alone starts, and every value reads as it was written.
    let b_alone = services(&db, b_only, hooks);
    b_alone.vault().check_keyring().await.unwrap();
    assert_eq!(
        values(b_alone.vault().secret_values(early).await.unwrap())["EARLY"],
        "plain-value"
    );
    let later_values = values(b_alone.vault().secret_values(later).await.unwrap());
    assert_eq!(
        (later_values["LATER"].as_str(), later_values["SHARED"].as_str()),
        ("a-value", "global-a")
    );
    // Without any key, sealed rows refuse to open rather than pass as plaintext.
    let err = plain.vault().secret_values(later).await.unwrap_err();
    assert!(
        err.chain().contains("SECRETS_ENCRYPTION_KEY is not set"),
        "{}",
        err.chain()
    );
}

#[tokio::test]
async fn org_import_checks_required_env_and_stores_the_org_env_as_secrets() {
    let db = TestDb::new().await;
    let s = services(&db, ring(Some(KEY_A), &[]), Arc::new(Restarts::default()));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("team");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("org.yaml"),
        "name: team\nrequired_env: [ORG_KEY]\nworkspaces:\n  - name: lead\n    required_env: [{any_of: [OPENAI_API_KEY, ANTHROPIC_API_KEY]}]\n    children:\n      - name: helper\n",
    )
    .unwrap();
    std::fs::write(dir.join(".env"), format!("ORG_KEY={CANARY}\n# a comment\n")).unwrap();
    let import = |force: bool| molecule_api::org::ImportRequest {
        dir: Some("team".into()),
        force,
        ..Default::default()
    };

    // ORG_KEY comes from the .env; neither provider key exists: 412 naming it, nothing made.
    let refused = s.import_org(import(false), Some(root.path())).await.unwrap_err();
    let ServiceError::PreconditionFailed { message, details } = &refused else {
        panic!("{refused:?}")
    };
    assert_eq!(message, "missing required environment variables");
    assert_eq!(
        details["missing_env"],
        serde_json::json!(["one of OPENAI_API_KEY | ANTHROPIC_API_KEY"])
    );
    assert_eq!(details["template"], "team");
    assert!(s.tree().list_workspaces().await.unwrap().is_empty());

    // A global secret meets it; every created node gets the .env as workspace secrets.
    s.vault()
        .set_global_secret(set("ANTHROPIC_API_KEY", "sk-ant"))
        .await
        .unwrap();
    let imported = s.import_org(import(false), Some(root.path())).await.unwrap();
    assert_eq!(imported.created, 2);
    for node in &imported.workspaces {
        let v = values(s.vault().secret_values(node.id.unwrap()).await.unwrap());
        assert_eq!(v["ORG_KEY"], CANARY, "{}", node.name);
    }
    assert!(rows(&db).await.iter().all(|r| r.encryption_version == 2));

    // force imports anyway; a .env line that does not parse names the file, never the value.
    s.vault().delete_global_secret("ANTHROPIC_API_KEY").await.unwrap();
    assert!(s.import_org(import(true), Some(root.path())).await.is_ok());
    std::fs::write(dir.join(".env"), format!("ORG_KEY {CANARY}\n")).unwrap();
    let bad = s.import_org(import(true), Some(root.path())).await.unwrap_err();
    let text = bad.to_string();
    assert!(text.contains(".env") && !text.contains(CANARY), "{text}");
}

/// Hooks whose backend reports one set of workspaces running and another not.
#[derive(Default)]
struct Running {
    running: Mutex<Vec<Uuid>>,
    stopped: Mutex<Vec<Uuid>>,
}

#[async_trait::async_trait]
impl WorkloadHooks for Running {
    fn has_provisioner(&self) -> bool {
        true
    }
    async fn is_running(&self, id: Uuid) -> Option<bool> {
        if self.running.lock().unwrap().contains(&id) {
            Some(true)
        } else if self.stopped.lock().unwrap().contains(&id) {
            Some(false)
        } else {
            None
        }
    }
}

#[tokio::test]
async fn the_orphan_sweep_revokes_idle_tokens_of_gone_workloads_and_never_external_ones() {
    let db = TestDb::new().await;
    let hooks = Arc::new(Running::default());
    let s = Services::new(db.pool().clone(), Default::default())
        .unwrap()
        .with_hooks(hooks.clone());
    let mk = |name: &'static str, external: bool| {
        let s = s.clone();
        async move {
            let c = s
                .create_workspace(CreateWorkspace {
                    name: name.into(),
                    external: Some(external),
                    ..Default::default()
                })
                .await
                .unwrap();
            let token = s.tree().mint_token(c.id).await.unwrap().auth_token;
            if !external {
                let reg = serde_json::from_value(
                    serde_json::json!({ "id": c.id, "url": "http://127.0.0.1:9", "agent_card": {} }),
                )
                .unwrap();
                s.messaging().register(reg).await.unwrap();
            }
            (c.id, token)
        }
    };
    let (gone, gone_token) = mk("gone", false).await;
    let (alive, alive_token) = mk("alive", false).await;
    let (unknown, unknown_token) = mk("unknown", false).await;
    let (outside, outside_token) = mk("outside", true).await;
    let (fresh, fresh_token) = mk("fresh", false).await;
    hooks.stopped.lock().unwrap().extend([gone, outside, fresh]);
    hooks.running.lock().unwrap().push(alive);
    // Everything but `fresh` was last used ten minutes ago.
    let mut c = db.pool().get().await.unwrap();
    diesel::sql_query(
        "UPDATE workspace_auth_tokens SET created_at = now() - interval '10 minutes', last_used_at = NULL
         WHERE workspace_id <> $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(fresh)
    .execute(&mut c)
    .await
    .unwrap();
    drop(c);

    let swept = s.tree().sweep_orphan_tokens().await.unwrap();
    assert_eq!((swept.removed, swept.idle), (0, 1), "{swept:?}");
    assert!(
        s.tree().authorize_workspace(&gone_token, gone).await.is_err(),
        "no workload: revoked"
    );
    for (token, id, why) in [
        (&alive_token, alive, "its workload runs"),
        (&unknown_token, unknown, "the backend cannot tell"),
        (&outside_token, outside, "external"),
        (&fresh_token, fresh, "used recently"),
    ] {
        assert!(s.tree().authorize_workspace(token, id).await.is_ok(), "kept: {why}");
    }
    // A second sweep finds nothing more to do.
    assert_eq!(s.tree().sweep_orphan_tokens().await.unwrap(), Default::default());
}

#[tokio::test]
async fn the_inbound_secret_is_minted_once_sealed_and_reserved() {
    let db = TestDb::new().await;
    let s = services(&db, ring(Some(KEY_A), &[]), Arc::new(Restarts::default()));
    let id = create(&s, "agent", &[], None).await;
    let reg =
        serde_json::from_value(serde_json::json!({ "id": id, "url": "http://127.0.0.1:9", "agent_card": {} })).unwrap();
    let first = s.messaging().register(reg).await.unwrap().platform_inbound_secret;
    assert!(first.len() >= 43, "{first}");
    let hb = serde_json::from_value(serde_json::json!({ "workspace_id": id })).unwrap();
    assert_eq!(
        s.messaging().heartbeat(hb).await.unwrap().platform_inbound_secret,
        first
    );
    // Another replica (no cache) reads the same sealed value.
    let other = services(&db, ring(Some(KEY_A), &[]), Arc::new(Restarts::default()));
    assert_eq!(
        other.vault().inbound_secret(id).await.unwrap().unwrap().expose_secret(),
        first.as_str()
    );
    assert!(rows(&db).await.iter().all(|r| !contains(&r.encrypted_value, &first)));
    // The agent reads it with its values; operators never see it listed or change it.
    assert_eq!(
        values(s.vault().secret_values(id).await.unwrap())["MOLECULE_PLATFORM_INBOUND_SECRET"],
        first
    );
    assert!(s.vault().list_secrets(id).await.unwrap().is_empty());
    for e in [
        s.vault()
            .set_secret(id, set("MOLECULE_PLATFORM_INBOUND_SECRET", "mine"))
            .await
            .unwrap_err(),
        s.vault()
            .delete_secret(id, "MOLECULE_PLATFORM_INBOUND_SECRET")
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(e, ServiceError::Invalid { field: "key", .. }), "{e:?}");
    }
}

/// PATCH's model goes through the vault on the patch's transaction as the tree checked it
/// (trimmed), into the column and the runtime's secret alike.
#[tokio::test]
async fn a_patched_model_is_stored_as_checked_in_the_row_and_the_secret() {
    let db = TestDb::new().await;
    let s = services(&db, ring(None, &[]), Arc::new(Restarts::default()));
    let id = create(&s, "repatched", &[], None).await;
    s.patch_workspace(
        id,
        molecule_api::workspaces::PatchWorkspace {
            model: Some("  openai/gpt-4o  ".into()),
            ..Default::default()
        },
        molecule_tree::workspaces::Actor::Workspace,
    )
    .await
    .unwrap();
    assert_eq!(
        s.tree().get_workspace(id).await.unwrap().model.as_deref(),
        Some("openai/gpt-4o")
    );
    let v = values(s.vault().secret_values(id).await.unwrap());
    assert_eq!(v.get("MODEL_PROVIDER").map(String::as_str), Some("openai/gpt-4o"));
    assert_eq!(
        v.get("LLM_PROVIDER").map(String::as_str),
        molecule_domain::provider_for_model("openai/gpt-4o")
    );
}
