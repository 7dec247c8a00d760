//! `workspace-server`'s integration tests, linked as one binary (one link instead of one per file;
//! nextest names them `it <module>::<test>`).

mod a2a_sdk;
mod approvals;
mod boot;
mod channels;
mod common;
mod console_browser;
mod docker_e2e;
mod docker_registry;
mod docker_workload;
mod ec2_dispatch;
mod instructions;
mod kv_memory;
mod mcp;
mod memory_ops;
mod messaging;
mod replicas;
mod schedules;
mod templates;
mod terminal;
mod workspace_config;
