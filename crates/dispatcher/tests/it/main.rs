//! `molecule-dispatcher`'s integration tests, linked as one binary (one link instead of one per file;
//! nextest names them `it <module>::<test>`).

mod dispatcher;
mod reconcile;
