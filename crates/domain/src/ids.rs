//! Typed ids, so a workspace id cannot be passed where a delegation id is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be a UUID, got {value:?}")]
pub struct IdParseError {
    pub kind: &'static str,
    pub value: String,
}

/// The id of a workspace (a row of `workspaces`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkspaceId(pub Uuid);

impl WorkspaceId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for WorkspaceId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for WorkspaceId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self).map_err(|_| IdParseError {
            kind: "workspace id",
            value: s.to_owned(),
        })
    }
}

impl From<Uuid> for WorkspaceId {
    fn from(u: Uuid) -> Self {
        Self(u)
    }
}

/// The caller-chosen id of a delegation. It is free text on the wire (the original used UUID
/// strings), bounded and non-empty here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DelegationId(String);

impl DelegationId {
    pub const MAX_LEN: usize = 200;

    pub fn new(s: impl Into<String>) -> Result<Self, IdParseError> {
        let s = s.into();
        if s.trim().is_empty() || s.len() > Self::MAX_LEN || s.chars().any(char::is_control) {
            return Err(IdParseError {
                kind: "delegation id",
                value: s,
            });
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DelegationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for DelegationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_id_parses_uuid_only() {
        let id = WorkspaceId::new();
        assert_eq!(id.to_string().parse::<WorkspaceId>().unwrap(), id);
        assert!("ws-1".parse::<WorkspaceId>().is_err());
    }

    #[test]
    fn delegation_id_rejects_blank_and_control_chars() {
        assert!(DelegationId::new("").is_err());
        assert!(DelegationId::new("a\nb").is_err());
        assert!(DelegationId::new("x".repeat(201)).is_err());
        assert!(serde_json::from_str::<DelegationId>("\" \"").is_err());
        assert_eq!(DelegationId::new("d-1").unwrap().as_str(), "d-1");
    }
}
