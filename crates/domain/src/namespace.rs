//! Memory namespace names (`workspace:<id>`, `team:<id>`, `org:<id>`, custom), validated.
//!
//! Must not know: the workspace tree (the resolver computes who may read what).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A memory namespace name such as `workspace:<id>`, `team:<root>` or `org:<root>`:
/// `^[a-z]+:[A-Za-z0-9_:.\-]+$`, at most 256 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NamespaceName(String);

/// Why a namespace name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespace name is {len} characters; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("namespace name {0:?} must match {pattern}", pattern = NamespaceName::PATTERN)]
    BadShape(String),
}

static SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    // The pattern is a literal checked by the unit tests below, so compilation cannot fail.
    #[allow(clippy::expect_used)]
    Regex::new(NamespaceName::PATTERN).expect("namespace pattern compiles")
});

impl NamespaceName {
    pub const PATTERN: &'static str = r"^[a-z]+:[A-Za-z0-9_:.\-]+$";
    pub const MAX_LEN: usize = 256;

    pub fn new(s: impl Into<String>) -> Result<Self, NamespaceError> {
        let s = s.into();
        let len = s.chars().count();
        if len > Self::MAX_LEN {
            return Err(NamespaceError::TooLong {
                len,
                max: Self::MAX_LEN,
            });
        }
        if !SHAPE.is_match(&s) {
            return Err(NamespaceError::BadShape(s));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `:` (`workspace`, `team`, `org`, ...).
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(k, _)| k)
    }
}

impl<'de> Deserialize<'de> for NamespaceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for NamespaceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_platform_shapes() {
        for ok in ["workspace:0b6f", "team:acme", "org:a.b-c_d:e", "custom:X1"] {
            assert!(NamespaceName::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(NamespaceName::new("team:acme").unwrap().kind(), "team");
    }

    #[test]
    fn rejects_bad_shapes_and_length() {
        for bad in [
            "",
            "team",
            "Team:x",
            "team:",
            "team:a b",
            "team:a/b",
            ":x",
            "team:acme%",
        ] {
            assert!(
                matches!(NamespaceName::new(bad), Err(NamespaceError::BadShape(_))),
                "{bad}"
            );
        }
        let long = format!("org:{}", "a".repeat(253));
        assert!(matches!(NamespaceName::new(long), Err(NamespaceError::TooLong { .. })));
        assert!(NamespaceName::new(format!("org:{}", "a".repeat(252))).is_ok());
    }
}
