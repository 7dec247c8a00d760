//! molecule-memory's integration tests, one binary: the scopes over a real tree.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod scopes;
