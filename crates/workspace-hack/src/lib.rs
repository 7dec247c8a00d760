//! `molecule-workspace-hack`: feature unification for the workspace (managed by `cargo hakari`).
//!
//! Owns: nothing but its `Cargo.toml`. Every member depends on it, and it depends on each
//! third-party package that members use with different features, with the union of those
//! features. A crate checked or tested alone (`cargo test -p molecule-ledger`) then resolves
//! the same features as the whole workspace and reuses its build, instead of rebuilding
//! half the dependency tree under a feature set of its own.
//!
//! Must not know: anything. It holds no code, and no member may name it in code (lint-arch
//! `workspace-hack-named`); regenerate it with `cargo hakari generate` after changing a
//! dependency's features.
