//! `cargo xtask lint-arch` against fixture workspaces that each break a rule, and against this
//! repository, which must pass.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Command;

fn lint(manifest: &Path) -> (bool, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("lint-arch")
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status.success(), lines)
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join("Cargo.toml")
}

#[test]
fn backend_calls_outside_the_dispatcher_are_found_in_every_disguise() {
    let (ok, lines) = lint(&fixture("dispatcher-bypass"));
    assert!(!ok, "lint-arch must fail: {lines:#?}");
    let at = |line: usize| format!("crates/rogue/src/lib.rs:{line} dispatcher-only-backend-calls: ");
    // direct method call, `use … as` alias (UFCS), trait object, `<T as Alias>::`, generic,
    // struct field through a chain, inside a macro.
    for line in [7, 11, 15, 19, 23, 32, 37] {
        assert!(
            lines.iter().any(|l| l.starts_with(&at(line))),
            "missing line {line}: {lines:#?}"
        );
    }
    // Failing a workspace behind the dispatcher's back.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("crates/rogue/src/lib.rs:54 provisioning-failure-only-in-dispatcher: ")),
        "{lines:#?}"
    );
    assert_eq!(
        lines.len(),
        8,
        "the dispatcher itself and read-only calls are allowed: {lines:#?}"
    );
}

#[test]
fn libraries_reaching_for_http_or_binaries_are_found() {
    let (ok, lines) = lint(&fixture("actix-in-library"));
    assert!(!ok);
    for expected in [
        "crates/widget/Cargo.toml:8 http-framework-only-in-http-crates: ",
        "crates/web-consumer/Cargo.toml:8 library-depends-on-http: ",
        "crates/web-consumer/Cargo.toml:9 library-depends-on-binary: ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "missing {expected}: {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 3, "molecule-http itself may use actix-web: {lines:#?}");
}

#[test]
fn this_repository_passes() {
    let (ok, lines) = lint(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"));
    assert!(ok, "{lines:#?}");
    // The owner rules ran: ARCHITECTURE.md's Table owners was read.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" owned tables checked") && !l.contains(" 0 owned tables")),
        "{lines:#?}"
    );
}

#[test]
fn tables_named_outside_their_owner_and_a_stale_architecture_map_are_found() {
    let (ok, lines) = lint(&fixture("table-owner"));
    assert!(!ok, "lint-arch must fail: {lines:#?}");
    let expected = [
        // A `use` of the schema module through an alias, `diesel::delete(<table>::table…)`,
        // and a SQL string inside `format!`.
        "crates/rogue/src/lib.rs:5 table-owner: names table `workspace_secrets`",
        "crates/rogue/src/lib.rs:8 table-owner: names table `workspace_secrets`",
        "crates/rogue/src/lib.rs:12 table-owner: names table `workspace_secrets`",
        "ARCHITECTURE.md:8 owner-table-schema: Table owners names `ghost_table`",
        "ARCHITECTURE.md:3 owner-table-schema: the schema creates `orphan_table`",
        "ARCHITECTURE.md:10 code-map: workspace member `undocumented` has no row",
        "ARCHITECTURE.md:16 code-map: `rogue` has 2 rows",
        "crates/undocumented/src/lib.rs:1 crate-doc: ",
    ];
    for e in expected {
        assert!(lines.iter().any(|l| l.starts_with(e)), "missing {e}: {lines:#?}");
    }
    // The owner itself, a CTE name, and a test module are not violations.
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
}

#[test]
fn a_library_crate_holding_over_fifteen_percent_of_the_lines_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"crates/big\", \"crates/small\", \"crates/tool\"]\n",
    )
    .unwrap();
    // A library with 2400 lines, another with 600, a binary with 3000: the big library holds
    // 40% (over 15%); the binary is not held to the rule.
    for (name, lines, file) in [
        ("big", 2400, "lib.rs"),
        ("small", 600, "lib.rs"),
        ("tool", 3000, "main.rs"),
    ] {
        let c = root.join("crates").join(name);
        std::fs::create_dir_all(c.join("src")).unwrap();
        std::fs::write(
            c.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n"),
        )
        .unwrap();
        let mut body = String::from("//! Must not know: anything.\n");
        for i in 1..lines {
            body.push_str(&format!("pub fn f{i}() {{}}\n"));
        }
        if file == "main.rs" {
            body.push_str("fn main() {}\n");
        }
        std::fs::write(c.join("src").join(file), body).unwrap();
    }
    let (ok, lines) = lint(&root.join("Cargo.toml"));
    assert!(!ok, "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("crates/big/Cargo.toml:1 crate-share: big holds 2400 of 6001 non-test lines (40.0%"),
        "{lines:#?}"
    );
}

#[test]
fn modules_that_use_each_other_are_found_and_test_only_uses_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"crates/tangled\"]\n",
    )
    .unwrap();
    let c = root.join("crates/tangled");
    std::fs::create_dir_all(c.join("src/routes")).unwrap();
    std::fs::write(
        c.join("Cargo.toml"),
        "[package]\nname = \"tangled\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n",
    )
    .unwrap();
    let files = [
        // The root composes: its uses of the modules do not count.
        (
            "lib.rs",
            "//! Must not know: anything.\nmod events;\nmod routes;\nmod state;\nmod tokens;\npub use crate::tokens::T;\n",
        ),
        // events → tokens in code, tokens → events in a `use` group: a cycle.
        (
            "events.rs",
            "//! Events.\npub fn record() {\n    crate::tokens::note();\n}\n",
        ),
        (
            "tokens.rs",
            "//! Tokens.\nuse crate::{events, state::S};\npub struct T;\npub fn note() {}\npub fn issue() { events::record(); let _ = S; }\n",
        ),
        // routes/ is one module: routes → state only; state → routes in a test module only.
        ("routes/mod.rs", "//! Routes.\nmod a;\n"),
        ("routes/a.rs", "//! A route.\nuse crate::state::S;\npub fn h(_: S) {}\n"),
        (
            "state.rs",
            "//! State.\npub struct S;\n#[cfg(test)]\nmod tests {\n    use crate::routes;\n}\n",
        ),
    ];
    for (path, text) in files {
        std::fs::write(c.join("src").join(path), text).unwrap();
    }
    let (ok, lines) = lint(&root.join("Cargo.toml"));
    assert!(!ok, "{lines:#?}");
    assert_eq!(lines.len(), 1, "one cycle, reported once: {lines:#?}");
    assert!(
        lines[0].starts_with(
            "crates/tangled/src/events.rs:3 module-cycle: modules events, tokens of `tangled` use each other: \
             events → tokens (events.rs:3), tokens → events (tokens.rs:2)"
        ),
        "{lines:#?}"
    );
}
