//! Integration tests, one binary: the schema on a real Postgres.

mod migrations;
