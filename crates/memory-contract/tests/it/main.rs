//! `molecule-memory-contract`'s integration tests, linked as one binary (one link instead of one per file;
//! nextest names them `it <module>::<test>`).

// The client tests need the `client` feature (on in the workspace build).
#[cfg(feature = "client")]
mod client;
mod goldens;
