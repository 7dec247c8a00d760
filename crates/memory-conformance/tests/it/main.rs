//! Integration tests, one binary: the conformance kit against real plugins.

mod kit;
