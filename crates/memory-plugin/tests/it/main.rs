//! Integration tests, one binary: the plugin over real Postgres and HTTP.

mod plugin;
