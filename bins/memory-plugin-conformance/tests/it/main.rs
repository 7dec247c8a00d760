//! Integration tests, one binary: the CLI as a shell runs it.

mod cli;
