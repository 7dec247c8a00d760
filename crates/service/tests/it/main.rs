//! `molecule-service`'s integration tests, linked as one binary (one link instead of one per file;
//! nextest names them `it <module>::<test>`).

mod hibernation;
mod memory;
mod registry;
mod secrets;
mod tokens;
mod tree;
