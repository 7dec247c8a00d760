// Shared by the build scripts of every crate that embeds a migration set (`include!`d, so a
// build script needs no extra dependency).
//
// `embed_migrations!` compiles the SQL files into the crate, but cargo does not know about
// them: without the rerun lines, editing a migration would not rebuild the binary that embeds
// it. The fingerprint (FNV-1a over every file's path and bytes) lets the test kit tell an
// edited migration set from the one its template was built with.

fn migration_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            migration_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Prints the rerun lines for `dir` and sets `env_var` to the set's fingerprint.
#[allow(clippy::print_stdout)] // build scripts talk to cargo on stdout
fn emit_migrations_fingerprint(dir: &str, env_var: &str) {
    let dir = std::path::Path::new(dir);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut all = Vec::new();
    migration_files(dir, &mut all);
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
    println!("cargo:rustc-env={env_var}={h:016x}");
}
