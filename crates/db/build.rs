//! Rebuild when a migration changes, and fingerprint the set for the test kit's templates.

include!("build-support/migrations_fingerprint.rs");

fn main() {
    emit_migrations_fingerprint("../../migrations", "MOLECULE_MIGRATIONS_FINGERPRINT");
}
