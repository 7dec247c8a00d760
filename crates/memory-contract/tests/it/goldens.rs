//! Golden vectors: the exact wire shape of every type, checked three ways.
//! 1. What the types serialise to equals `testdata/<name>.json` (`UPDATE_GOLDENS=1` rewrites).
//! 2. Each golden reads back into its type and serialises to the same JSON (round trip).
//! 3. Each golden is valid against its schema in the OpenAPI document itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test code
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::path::PathBuf;

use molecule_memory_contract::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::macros::datetime;
use uuid::uuid;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The OpenAPI 3.0 document as a JSON Schema 2020-12 resource: `nullable: true` becomes a
/// `"null"` alternative of `type`.
fn schema_root() -> Value {
    fn convert(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.remove("nullable") == Some(Value::Bool(true))
                    && let Some(Value::String(t)) = map.get("type").cloned()
                {
                    map.insert("type".into(), json!([t, "null"]));
                }
                map.values_mut().for_each(convert);
            }
            Value::Array(items) => items.iter_mut().for_each(convert),
            _ => {}
        }
    }
    let mut doc: Value = serde_yaml_ng::from_str(OPENAPI_YAML).unwrap();
    convert(&mut doc);
    doc
}

fn schema_errors(root: &Value, schema: &str, instance: &Value) -> Vec<String> {
    let mut s = root.clone();
    s.as_object_mut()
        .unwrap()
        .insert("$ref".into(), json!(format!("#/components/schemas/{schema}")));
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&s)
        .unwrap();
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

struct Golden {
    name: &'static str,
    schema: &'static str,
    json: Value,
    round_trip: fn(&Value) -> Value,
}

fn golden<T: Serialize + DeserializeOwned>(name: &'static str, schema: &'static str, value: &T) -> Golden {
    fn rt<T: Serialize + DeserializeOwned>(v: &Value) -> Value {
        let typed: T = serde_json::from_value(v.clone()).unwrap();
        serde_json::to_value(&typed).unwrap()
    }
    Golden {
        name,
        schema,
        json: serde_json::to_value(value).unwrap(),
        round_trip: rt::<T>,
    }
}

fn all() -> Vec<Golden> {
    let at = datetime!(2026-11-21 09:30:00 UTC);
    let id = uuid!("0b8e8a52-1f3c-4f55-9f7e-3f1b2c4d5e6f");
    let meta: JsonObject = serde_json::from_value(json!({"owner": "ops", "tier": 2})).unwrap();
    vec![
        golden(
            "health_ok",
            "HealthResponse",
            &HealthResponse {
                status: HealthStatus::Ok,
                version: CONTRACT_VERSION.into(),
                capabilities: vec![
                    MemoryCapability::Fts,
                    MemoryCapability::Embedding,
                    MemoryCapability::Ttl,
                    MemoryCapability::Pin,
                    MemoryCapability::Propagation,
                ],
            },
        ),
        golden(
            "namespace",
            "Namespace",
            &Namespace {
                name: "team:acme".into(),
                kind: NamespaceKind::Team,
                expires_at: None,
                metadata: Some(meta.clone()),
                created_at: at,
            },
        ),
        golden(
            "namespace_upsert_minimal",
            "NamespaceUpsert",
            &NamespaceUpsert {
                kind: NamespaceKind::Workspace,
                expires_at: None,
                metadata: None,
            },
        ),
        golden(
            "namespace_patch_clear_ttl",
            "NamespacePatch",
            &NamespacePatch {
                expires_at: Some(None),
                metadata: None,
            },
        ),
        golden(
            "namespace_patch_metadata",
            "NamespacePatch",
            &NamespacePatch {
                expires_at: None,
                metadata: Some(Some(meta.clone())),
            },
        ),
        golden(
            "memory_write_minimal",
            "MemoryWrite",
            &MemoryWrite::fact("the build uses cargo nextest"),
        ),
        golden(
            "memory_write_full",
            "MemoryWrite",
            &MemoryWrite {
                id: Some(id),
                content: "weekly summary".into(),
                kind: MemoryKind::Summary,
                source: MemorySource::Runtime,
                expires_at: Some(at),
                propagation: Some(meta.clone()),
                pin: true,
                embedding: Some(vec![0.25, -0.5, 1.0]),
            },
        ),
        golden(
            "memory_write_response",
            "MemoryWriteResponse",
            &MemoryWriteResponse {
                id,
                namespace: "workspace:0b8e".into(),
            },
        ),
        golden(
            "search_request_minimal",
            "SearchRequest",
            &SearchRequest {
                namespaces: vec!["workspace:0b8e".into()],
                ..SearchRequest::default()
            },
        ),
        golden(
            "search_request_full",
            "SearchRequest",
            &SearchRequest {
                namespaces: vec!["workspace:0b8e".into(), "team:acme".into()],
                query: Some("deploy".into()),
                kinds: Some(vec![MemoryKind::Fact, MemoryKind::Checkpoint]),
                limit: Some(5),
                embedding: Some(vec![0.5, 0.5]),
                ..SearchRequest::default()
            },
        ),
        golden(
            "search_response",
            "SearchResponse",
            &SearchResponse {
                memories: vec![Memory {
                    id,
                    namespace: "team:acme".into(),
                    content: "deploys go through CI".into(),
                    kind: MemoryKind::Fact,
                    source: MemorySource::Agent,
                    expires_at: None,
                    propagation: None,
                    pin: false,
                    created_at: at,
                    score: Some(0.5),
                }],
                ..SearchResponse::default()
            },
        ),
        golden("search_response_empty", "SearchResponse", &SearchResponse::default()),
        golden(
            "forget_request",
            "ForgetRequest",
            &ForgetRequest {
                requested_by_namespace: "workspace:0b8e".into(),
            },
        ),
        golden(
            "error",
            "Error",
            &ErrorBody::new(ErrorCode::NotFound, "namespace team:acme does not exist"),
        ),
    ]
}

#[test]
fn goldens_match_round_trip_and_satisfy_the_document() {
    let update = std::env::var("UPDATE_GOLDENS").is_ok_and(|v| v == "1");
    let root = schema_root();
    let mut problems = Vec::new();
    for g in all() {
        let path = dir().join(format!("{}.json", g.name));
        let text = serde_json::to_string_pretty(&sorted(&g.json)).unwrap() + "\n";
        if update {
            std::fs::write(&path, &text).unwrap();
        }
        match std::fs::read_to_string(&path) {
            Ok(stored) if stored == text => {}
            Ok(stored) => problems.push(format!(
                "{}: the type now serialises differently (UPDATE_GOLDENS=1 to accept):\n  stored: {}\n  now:    {}",
                path.display(),
                stored.trim(),
                text.trim()
            )),
            Err(e) => problems.push(format!("{}: {e} (UPDATE_GOLDENS=1 writes it)", path.display())),
        }
        let back = (g.round_trip)(&g.json);
        if back != g.json {
            problems.push(format!("{}: round trip changed {} into {back}", g.name, g.json));
        }
        for e in schema_errors(&root, g.schema, &g.json) {
            problems.push(format!("{} is not a valid {}: {e}", g.name, g.schema));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn nullable_fields_are_written_as_null_and_optional_ones_omitted() {
    let minimal = serde_json::to_value(MemoryWrite::fact("x")).unwrap();
    for nullable in ["id", "expires_at", "propagation", "embedding"] {
        assert_eq!(minimal[nullable], Value::Null, "{nullable}");
        assert!(
            minimal.as_object().unwrap().contains_key(nullable),
            "{nullable} present"
        );
    }
    let search = serde_json::to_value(SearchRequest {
        namespaces: vec!["team:a".into()],
        ..SearchRequest::default()
    })
    .unwrap();
    for optional in ["query", "kinds", "limit", "ids", "page_token"] {
        assert!(
            !search.as_object().unwrap().contains_key(optional),
            "{optional} omitted"
        );
    }
    // A patch keeps absent and null apart.
    let patch: NamespacePatch = serde_json::from_str(r#"{"expires_at": null}"#).unwrap();
    assert_eq!(patch.expires_at, Some(None));
    assert_eq!(patch.metadata, None);
    assert_eq!(serde_json::to_string(&patch).unwrap(), r#"{"expires_at":null}"#);
}

#[test]
fn lenient_where_other_plugins_differ() {
    // A Go plugin's nil slice arrives as null.
    let r: SearchResponse = serde_json::from_str(r#"{"memories": null}"#).unwrap();
    assert!(r.memories.is_empty());
    // Capabilities this crate does not know yet are dropped.
    let h: HealthResponse =
        serde_json::from_str(r#"{"status":"ok","version":"1.1.0","capabilities":["fts","graph"]}"#).unwrap();
    assert_eq!(h.capabilities, vec![MemoryCapability::Fts]);
    // But the enums of the contract are strict.
    assert!(serde_json::from_str::<MemoryWrite>(r#"{"content":"x","kind":"note","source":"agent"}"#).is_err());
    assert!(serde_json::from_str::<NamespaceUpsert>(r#"{"kind":"tenant"}"#).is_err());
}

#[test]
fn the_schema_check_can_fail() {
    let root = schema_root();
    let bad = json!({"id": "not-a-uuid", "namespace": "x", "content": "c", "kind": "fact", "source": "agent", "created_at": "yesterday"});
    let errors = schema_errors(&root, "Memory", &bad);
    assert!(errors.len() >= 2, "{errors:?}");
    assert!(!schema_errors(&root, "Error", &json!({"code": "teapot", "message": "x"})).is_empty());
}

/// Our document says what the original contract says, in our words: the same paths,
/// operations, parameters, schemas and response codes (ours may document extra 4xx codes, and
/// properties marked `x-molecule-extension`, which plugins may ignore).
/// Skipped when the reference document is not beside the repository.
#[test]
fn the_document_matches_the_reference_contract() {
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/memory-plugin-v1.yaml");
    let Ok(text) = std::fs::read_to_string(&reference) else {
        eprintln!(
            "\n!!!! SKIPPING the reference comparison: {} is not here !!!!\n",
            reference.display()
        );
        return;
    };
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for k in ["description", "summary", "example", "servers"] {
                    map.remove(k);
                }
                if let Some(Value::Object(props)) = map.get_mut("properties") {
                    props.retain(|_, p| p.get("x-molecule-extension").is_none());
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut theirs: Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut ours: Value = serde_yaml_ng::from_str(OPENAPI_YAML).unwrap();
    strip(&mut theirs);
    strip(&mut ours);
    assert_eq!(ours["components"]["schemas"], theirs["components"]["schemas"]);
    assert_eq!(ours["components"]["parameters"], theirs["components"]["parameters"]);
    assert_eq!(ours["components"]["responses"], theirs["components"]["responses"]);
    assert_eq!(ours["info"], theirs["info"]);
    let paths = theirs["paths"].as_object().unwrap();
    assert_eq!(
        ours["paths"].as_object().unwrap().keys().collect::<Vec<_>>(),
        paths.keys().collect::<Vec<_>>()
    );
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let mine = &ours["paths"][path][method];
            if method == "parameters" {
                assert_eq!(mine, op, "{path} parameters");
                continue;
            }
            assert_eq!(mine["operationId"], op["operationId"], "{method} {path}");
            assert_eq!(mine["requestBody"], op["requestBody"], "{method} {path} body");
            for (code, response) in op["responses"].as_object().unwrap() {
                assert_eq!(&mine["responses"][code], response, "{method} {path} {code}");
            }
        }
    }
}

/// `v` with every object's keys sorted: the stored form does not depend on whether some crate
/// in the build turned on serde_json's `preserve_order`.
fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}
