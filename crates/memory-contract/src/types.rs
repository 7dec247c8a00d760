//! Wire types, one per schema of the v1 document.

use molecule_domain::{MemoryCapability, MemoryKind, MemorySource, NamespaceKind, Vocabulary};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// A JSON object (`additionalProperties: true`).
pub type Object = Map<String, Value>;

/// `HealthResponse.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

/// `GET /v1/health` (200).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub status: HealthStatus,
    pub version: String,
    /// Unknown capability names from newer plugins are dropped, not an error.
    #[serde(deserialize_with = "known_capabilities")]
    pub capabilities: Vec<MemoryCapability>,
}

fn known_capabilities<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MemoryCapability>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    Ok(names.iter().filter_map(|n| MemoryCapability::parse(n).ok()).collect())
}

/// `Namespace`: a namespace as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    pub name: String,
    pub kind: NamespaceKind,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub metadata: Option<Object>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `PUT /v1/namespaces/{name}` body: creates or fully replaces kind, TTL and metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceUpsert {
    pub kind: NamespaceKind,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub metadata: Option<Object>,
}

/// `PATCH /v1/namespaces/{name}` body. Each field is three-state: absent (`None`, unchanged),
/// `null` (`Some(None)`, cleared) or a value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespacePatch {
    #[serde(
        default,
        deserialize_with = "present_time",
        serialize_with = "ser_patch_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<Option<OffsetDateTime>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Option<Object>>,
}

/// A field that is present in the JSON (even as `null`) becomes `Some(..)`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn present_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
    time::serde::rfc3339::option::deserialize(d).map(Some)
}

fn ser_patch_time<S: serde::Serializer>(v: &Option<Option<OffsetDateTime>>, s: S) -> Result<S::Ok, S::Error> {
    time::serde::rfc3339::option::serialize(&v.flatten(), s)
}

/// `POST /v1/namespaces/{name}/memories` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryWrite {
    /// Idempotency key: a write with an id is an upsert on it; without one the plugin mints one.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// Already secret-redacted by workspace-server.
    pub content: String,
    pub kind: MemoryKind,
    pub source: MemorySource,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Opaque; stored and returned verbatim.
    #[serde(default)]
    pub propagation: Option<Object>,
    #[serde(default)]
    pub pin: bool,
    #[serde(default)]
    pub embedding: Option<Vec<f32>>,
}

impl MemoryWrite {
    /// A fact written by an agent, with everything else at its default.
    pub fn fact(content: impl Into<String>) -> Self {
        Self {
            id: None,
            content: content.into(),
            kind: MemoryKind::Fact,
            source: MemorySource::Agent,
            expires_at: None,
            propagation: None,
            pin: false,
            embedding: None,
        }
    }
}

/// `POST /v1/namespaces/{name}/memories` answer (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryWriteResponse {
    pub id: Uuid,
    pub namespace: String,
}

/// `Memory`: one search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: Uuid,
    pub namespace: String,
    pub content: String,
    pub kind: MemoryKind,
    pub source: MemorySource,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub propagation: Option<Object>,
    #[serde(default)]
    pub pin: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Relevance (full-text rank or cosine similarity); `null` for listings and substring hits.
    #[serde(default)]
    pub score: Option<f64>,
}

/// `POST /v1/search` body. `namespaces` is authoritative: workspace-server has already
/// intersected it with what the caller may read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<MemoryKind>>,
    /// 1..=100; absent (or 0) means 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default)]
    pub embedding: Option<Vec<f32>>,
    /// Extension (Molecule, optional for plugins): only these memories. Listing only (no
    /// `query`, no `embedding`); used to read memories by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<uuid::Uuid>>,
    /// Extension (Molecule, optional for plugins): continue a listing after the page that
    /// answered this `next_page_token`. Listing only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
}

impl SearchRequest {
    /// The limit to apply: the requested one, or the default for absent/0.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            None | Some(0) => crate::DEFAULT_SEARCH_LIMIT,
            Some(n) => n,
        }
    }
}

/// `POST /v1/search` answer. Plugins that send `"memories": null` for no hits are read as empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    #[serde(deserialize_with = "null_as_empty")]
    pub memories: Vec<Memory>,
    /// Extension (Molecule): set on a full page of a listing when more may follow; pass it as
    /// `page_token` for the next page. A plugin without paging never sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `DELETE /v1/memories/{id}` body: the namespace the caller may write, which must hold the
/// memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetRequest {
    pub requested_by_namespace: String,
}

/// `Error.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    NotFound,
    Forbidden,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// The code a plugin's bare HTTP status stands for (used when its body is not an `Error`).
    pub fn for_status(status: u16) -> Self {
        match status {
            404 => Self::NotFound,
            403 => Self::Forbidden,
            503 => Self::Unavailable,
            s if s >= 500 => Self::Internal,
            _ => Self::BadRequest,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Error`: every non-2xx answer's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("memory-plugin: {code}: {message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default)]
    pub details: Option<Object>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        if let Value::Object(map) = details {
            self.details = Some(map);
        }
        self
    }
}
