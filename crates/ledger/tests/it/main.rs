//! `molecule-ledger`'s integration tests, linked as one binary (one link instead of one per file;
//! nextest names them `it <module>::<test>`).

mod embed;
mod ledger;
mod property;
mod race;
