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
}
