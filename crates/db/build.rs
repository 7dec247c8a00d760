//! `embed_migrations!` compiles the SQL files into the crate, but cargo does not know about
//! them: without the rerun line, editing a migration would not rebuild the binary that embeds
//! it. The fingerprint (FNV-1a over every file's path and bytes) lets the test kit tell an
//! edited migration set from the one its template was built with.

#![allow(clippy::print_stdout)] // build scripts talk to cargo on stdout

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let dir = Path::new("../../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut all = Vec::new();
    files(dir, &mut all);
    all.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for path in &all {
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(path).unwrap_or_default();
        for b in path.to_string_lossy().bytes().chain(bytes) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=MOLECULE_MIGRATIONS_FINGERPRINT={h:016x}");
}
