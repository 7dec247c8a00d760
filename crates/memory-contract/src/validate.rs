//! `validate()` for every wire object. The client calls it before sending and the plugin on
//! receipt, so both ends refuse the same inputs with the same words.

use molecule_domain::NamespaceName;
use serde_json::Value;

use crate::types::{
    ErrorBody, ErrorCode, ForgetRequest, MemoryWrite, NamespacePatch, NamespaceUpsert, Object, SearchRequest,
};

/// Results per search when the request gives no limit (or 0).
pub const DEFAULT_SEARCH_LIMIT: u32 = 20;
/// The largest limit a search may ask for.
pub const MAX_SEARCH_LIMIT: u32 = 100;
/// The longest embedding accepted.
pub const MAX_EMBEDDING_DIMS: usize = 4096;

/// A wire object that breaks the contract: which field, and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<Invalid> for ErrorBody {
    fn from(e: Invalid) -> Self {
        ErrorBody::new(ErrorCode::BadRequest, e.to_string()).with_details(serde_json::json!({ "field": e.field }))
    }
}

/// A namespace name: 1..=256 characters matching `^[a-z]+:[A-Za-z0-9_:.\-]+$`.
pub fn validate_namespace_name(field: &str, name: &str) -> Result<NamespaceName, Invalid> {
    NamespaceName::new(name).map_err(|e| Invalid::new(field, e.to_string()))
}

/// Postgres cannot store NUL in text or jsonb; refuse it at the edge rather than fail later.
fn no_nul(field: &str, s: &str) -> Result<(), Invalid> {
    if s.contains('\0') {
        return Err(Invalid::new(field, "must not contain NUL characters"));
    }
    Ok(())
}

fn json_without_nul(field: &str, v: &Value) -> Result<(), Invalid> {
    match v {
        Value::String(s) => no_nul(field, s),
        Value::Array(items) => items.iter().try_for_each(|i| json_without_nul(field, i)),
        Value::Object(map) => object_without_nul(field, map),
        _ => Ok(()),
    }
}

fn object_without_nul(field: &str, map: &Object) -> Result<(), Invalid> {
    for (k, v) in map {
        no_nul(field, k)?;
        json_without_nul(field, v)?;
    }
    Ok(())
}

fn embedding(field: &str, e: Option<&Vec<f32>>) -> Result<(), Invalid> {
    let Some(e) = e else { return Ok(()) };
    if e.is_empty() || e.len() > MAX_EMBEDDING_DIMS {
        return Err(Invalid::new(
            field,
            format!(
                "must hold 1..={MAX_EMBEDDING_DIMS} numbers (or be null); got {}",
                e.len()
            ),
        ));
    }
    if let Some(i) = e.iter().position(|x| !x.is_finite()) {
        return Err(Invalid::new(
            format!("{field}[{i}]"),
            "must be a finite number within the 32-bit float range",
        ));
    }
    Ok(())
}

impl NamespaceUpsert {
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(m) = &self.metadata {
            object_without_nul("metadata", m)?;
        }
        Ok(())
    }
}

impl NamespacePatch {
    /// A patch must change something.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.expires_at.is_none() && self.metadata.is_none() {
            return Err(Invalid::new(
                "body",
                "an empty patch changes nothing: give expires_at and/or metadata (null clears)",
            ));
        }
        if let Some(Some(m)) = &self.metadata {
            object_without_nul("metadata", m)?;
        }
        Ok(())
    }
}

impl MemoryWrite {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.content.trim().is_empty() {
            return Err(Invalid::new("content", "must not be empty or only whitespace"));
        }
        no_nul("content", &self.content)?;
        if let Some(p) = &self.propagation {
            object_without_nul("propagation", p)?;
        }
        embedding("embedding", self.embedding.as_ref())
    }
}

impl SearchRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.namespaces.is_empty() {
            return Err(Invalid::new(
                "namespaces",
                "must name at least one namespace (the caller's readable set, already intersected)",
            ));
        }
        for (i, n) in self.namespaces.iter().enumerate() {
            validate_namespace_name(&format!("namespaces[{i}]"), n)?;
        }
        if let Some(limit) = self.limit
            && limit > MAX_SEARCH_LIMIT
        {
            return Err(Invalid::new(
                "limit",
                format!(
                    "must be within 1..={MAX_SEARCH_LIMIT} (0 or absent means {DEFAULT_SEARCH_LIMIT}); got {limit}"
                ),
            ));
        }
        if let Some(q) = &self.query {
            no_nul("query", q)?;
        }
        let listing = self.embedding.is_none() && self.query.as_deref().is_none_or(|q| q.trim().is_empty());
        if !listing && self.ids.is_some() {
            return Err(Invalid::new(
                "ids",
                "filters a listing only: leave query and embedding out",
            ));
        }
        if !listing && self.page_token.is_some() {
            return Err(Invalid::new(
                "page_token",
                "pages a listing only: leave query and embedding out",
            ));
        }
        if let Some(t) = &self.page_token {
            no_nul("page_token", t)?;
        }
        if let Some(ids) = &self.ids
            && ids.len() > MAX_SEARCH_LIMIT as usize
        {
            return Err(Invalid::new(
                "ids",
                format!("at most {MAX_SEARCH_LIMIT} ids (got {})", ids.len()),
            ));
        }
        embedding("embedding", self.embedding.as_ref())
    }
}

impl ForgetRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_namespace_name("requested_by_namespace", &self.requested_by_namespace).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryWrite;

    #[test]
    fn the_rules_both_ends_share() {
        let search = |namespaces: &[&str], limit| SearchRequest {
            namespaces: namespaces.iter().map(|s| (*s).to_owned()).collect(),
            limit,
            ..SearchRequest::default()
        };
        assert_eq!(search(&[], None).validate().unwrap_err().field, "namespaces");
        assert_eq!(
            search(&["team:a", "Bad"], None).validate().unwrap_err().field,
            "namespaces[1]"
        );
        assert_eq!(search(&["team:a"], Some(101)).validate().unwrap_err().field, "limit");
        assert!(search(&["team:a"], Some(0)).validate().is_ok());
        assert!(search(&["team:a"], Some(100)).validate().is_ok());
        assert_eq!(search(&["team:a"], Some(0)).effective_limit(), DEFAULT_SEARCH_LIMIT);

        assert_eq!(NamespacePatch::default().validate().unwrap_err().field, "body");
        let clear_ttl = NamespacePatch {
            expires_at: Some(None),
            metadata: None,
        };
        assert!(clear_ttl.validate().is_ok());

        for blank in ["", "   ", "\n\t"] {
            assert_eq!(MemoryWrite::fact(blank).validate().unwrap_err().field, "content");
        }
        assert_eq!(MemoryWrite::fact("a\0b").validate().unwrap_err().field, "content");
        let mut inf = MemoryWrite::fact("x");
        inf.embedding = Some(vec![0.1, f32::INFINITY]);
        assert_eq!(inf.validate().unwrap_err().field, "embedding[1]");
        let mut nul_meta = MemoryWrite::fact("x");
        nul_meta.propagation = Some(serde_json::from_str(r#"{"a":["\u0000"]}"#).unwrap());
        assert_eq!(nul_meta.validate().unwrap_err().field, "propagation");

        assert!(
            ForgetRequest {
                requested_by_namespace: "workspace:1".into()
            }
            .validate()
            .is_ok()
        );
        assert!(
            ForgetRequest {
                requested_by_namespace: "nope".into()
            }
            .validate()
            .is_err()
        );
    }
}
