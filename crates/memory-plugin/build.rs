//! Rebuild when a plugin migration changes, and fingerprint the set for the test kit.

include!("../db/build-support/migrations_fingerprint.rs");

fn main() {
    emit_migrations_fingerprint("migrations", "MEMORY_PLUGIN_MIGRATIONS_FINGERPRINT");
}
