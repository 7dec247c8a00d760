//! Workspace templates and the files they seed. A skeleton: the templates issue fills it in.
//!
//! Owns (planned): the template registry under `CONFIGS_DIR`, config seeding, org templates
//! with `!include`, and load errors that name the file. Must not know: HTTP, or how files
//! reach a workload (that is a `Backend` operation behind the dispatcher).
