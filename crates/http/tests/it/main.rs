//! `molecule-http`'s integration tests, linked as one binary (one link instead of one per file;
//! nextest names them `it <module>::<test>`).

mod auth_matrix;
mod browser;
mod console;
mod delegations;
mod failures;
mod hierarchy;
mod limits;
mod metrics;
mod operator;
mod proxy;
mod schedules;
