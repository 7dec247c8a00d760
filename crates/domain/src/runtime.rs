//! The agent runtime vocabulary and its lenient resolution.
//!
//! Must not know: images or templates.

use crate::vocab::{Vocabulary, vocabulary};

vocabulary! {
    /// The agent runtime a workspace runs.
    pub enum Runtime ("runtime") {
        ClaudeCode => "claude-code",
        Hermes => "hermes",
        Openclaw => "openclaw",
        Codex => "codex",
        /// An off-host agent that registers itself; nothing is provisioned for it.
        External => "external",
    }
}

impl Runtime {
    /// What an empty or unknown runtime becomes.
    pub const DEFAULT: Self = Self::ClaudeCode;

    /// Lenient parse for request bodies and templates: empty or unknown input becomes
    /// [`Runtime::DEFAULT`], with a log line naming what was replaced.
    pub fn resolve(input: Option<&str>) -> Self {
        let raw = input.map(str::trim).unwrap_or("");
        if raw.is_empty() {
            tracing::info!(runtime = Self::DEFAULT.as_str(), "no runtime given; using the default");
            return Self::DEFAULT;
        }
        match Self::parse(raw) {
            Ok(rt) => rt,
            Err(err) => {
                tracing::warn!(requested = raw, runtime = Self::DEFAULT.as_str(), %err, "unknown runtime; using the default");
                Self::DEFAULT
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_unknown_becomes_claude_code() {
        assert_eq!(Runtime::resolve(None), Runtime::ClaudeCode);
        assert_eq!(Runtime::resolve(Some("  ")), Runtime::ClaudeCode);
        assert_eq!(Runtime::resolve(Some("langgraph")), Runtime::ClaudeCode);
        assert_eq!(Runtime::resolve(Some("hermes")), Runtime::Hermes);
        assert_eq!(Runtime::resolve(Some("external")), Runtime::External);
    }
}
