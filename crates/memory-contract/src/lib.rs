//! `molecule-memory-contract`: the Memory Plugin v1 contract between workspace-server and a
//! memory plugin.
//!
//! Owns: the wire types of every schema in `openapi/memory-plugin-v1.yaml` (same field names,
//! enums, limits and nullability), `validate()` on each of them (both ends call it), the golden
//! vectors under `testdata/`, the OpenAPI document itself, and behind the `client` feature the
//! HTTP client (timeout, circuit breaker, capability negotiation, typed plugin errors).
//!
//! Must not know: workspace-server internals (the workspace tree, ACLs, redaction, audit) or any
//! plugin's storage. Serialisation rule: a field the schema marks `nullable` is always written
//! (`null` when it has no value); an optional field that is not nullable is omitted when absent.

mod types;
mod validate;

#[cfg(feature = "client")]
pub mod client;

pub use molecule_domain::{MemoryCapability, MemoryKind, MemorySource, NamespaceKind, NamespaceName};
pub use types::{
    ErrorBody, ErrorCode, ForgetRequest, HealthResponse, HealthStatus, Memory, MemoryWrite, MemoryWriteResponse,
    Namespace, NamespacePatch, NamespaceUpsert, Object as JsonObject, SearchRequest, SearchResponse,
};
pub use validate::{DEFAULT_SEARCH_LIMIT, Invalid, MAX_EMBEDDING_DIMS, MAX_SEARCH_LIMIT, validate_namespace_name};

/// The contract version this crate speaks (`info.version` of the document).
pub const CONTRACT_VERSION: &str = "1.0.0";

/// The OpenAPI document of the contract, as shipped to plugin authors.
pub const OPENAPI_YAML: &str = include_str!("../openapi/memory-plugin-v1.yaml");
