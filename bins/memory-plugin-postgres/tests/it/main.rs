//! Integration tests, one binary: the binary booted as an operator runs it.

mod boot;
