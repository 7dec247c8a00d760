//! Typed sections of the server's configuration: what each component receives, parsed once
//! here (durations, enums, counts) instead of as text in the ledger, the dispatcher and the
//! binary. The lenient knobs keep the original's rule: an invalid value falls back to its
//! default with a warning that names the variable.
//!
//! Must not know: the components' own config types (the binary maps these onto them).

use std::time::Duration;

use crate::{ConfigError, ServerConfig};

/// `MOLECULE_PROVISION_CONCURRENCY` when unset or invalid.
pub const DEFAULT_PROVISION_CONCURRENCY: usize = 3;
/// `DELEGATION_SWEEPER_INTERVAL_S` when unset or invalid.
pub const DEFAULT_DELEGATION_SWEEPER_INTERVAL_S: u64 = 300;
/// `DELEGATION_STUCK_THRESHOLD_S` when unset or invalid.
pub const DEFAULT_DELEGATION_STUCK_THRESHOLD_S: u64 = 600;

/// `MOLECULE_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    Docker,
    /// Local processes (development only; never chosen automatically).
    Local,
    Ec2,
    /// No provisioner: workspaces fail with "no provisioner configured".
    None,
}

impl BackendChoice {
    pub(crate) fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.trim() {
            "docker" => Ok(Self::Docker),
            "local" => Ok(Self::Local),
            "ec2" => Ok(Self::Ec2),
            "none" => Ok(Self::None),
            other => Err(ConfigError::Invalid(format!(
                "MOLECULE_BACKEND must be docker, local, ec2 or none, got {other:?}"
            ))),
        }
    }
}

/// The delegation ledger's sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelegationSweeper {
    pub interval: Duration,
    pub stuck_threshold: Duration,
}

/// A positive whole number of seconds, or the default with a warning naming `variable`.
fn lenient_secs(variable: &str, raw: Option<&str>, default: u64) -> Duration {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Duration::from_secs(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > 0 => Duration::from_secs(n.unsigned_abs()),
            _ => {
                tracing::warn!(variable, value = s, default, "invalid value; using the default");
                Duration::from_secs(default)
            }
        },
    }
}

/// `None` is unlimited (`0`); an invalid value is the default with a warning.
fn lenient_concurrency(raw: Option<&str>) -> Option<usize> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Some(DEFAULT_PROVISION_CONCURRENCY);
    };
    match raw.parse::<i64>() {
        Ok(0) => None,
        Ok(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => {
            tracing::warn!(
                variable = "MOLECULE_PROVISION_CONCURRENCY",
                value = raw,
                default = DEFAULT_PROVISION_CONCURRENCY,
                "not a non-negative integer; using the default"
            );
            Some(DEFAULT_PROVISION_CONCURRENCY)
        }
    }
}

impl ServerConfig {
    /// `MOLECULE_BACKEND`; `None` when unset (Docker if the engine answers, else none).
    pub fn backend(&self) -> Result<Option<BackendChoice>, ConfigError> {
        self.molecule_backend.as_deref().map(BackendChoice::parse).transpose()
    }

    /// `MOLECULE_PROVISION_CONCURRENCY`: provisions at once; `None` is unlimited.
    pub fn provision_concurrency(&self) -> Option<usize> {
        lenient_concurrency(self.molecule_provision_concurrency.as_deref())
    }

    /// `DELEGATION_SWEEPER_INTERVAL_S` and `DELEGATION_STUCK_THRESHOLD_S`.
    pub fn delegation_sweeper(&self) -> DelegationSweeper {
        DelegationSweeper {
            interval: lenient_secs(
                "DELEGATION_SWEEPER_INTERVAL_S",
                self.delegation_sweeper_interval_s.as_deref(),
                DEFAULT_DELEGATION_SWEEPER_INTERVAL_S,
            ),
            stuck_threshold: lenient_secs(
                "DELEGATION_STUCK_THRESHOLD_S",
                self.delegation_stuck_threshold_s.as_deref(),
                DEFAULT_DELEGATION_STUCK_THRESHOLD_S,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_sweeper_knobs_fall_back_to_the_defaults() {
        let secs = |raw| lenient_secs("X", raw, 300).as_secs();
        assert_eq!((secs(Some("abc")), secs(Some("-5")), secs(Some("0"))), (300, 300, 300));
        assert_eq!((secs(Some(" 60 ")), secs(None), secs(Some("  "))), (60, 300, 300));
    }

    #[test]
    fn concurrency_follows_the_original_rules() {
        assert_eq!(lenient_concurrency(None), Some(3));
        assert_eq!(lenient_concurrency(Some("  ")), Some(3));
        assert_eq!(lenient_concurrency(Some("0")), None);
        assert_eq!(lenient_concurrency(Some(" 10 ")), Some(10));
        assert_eq!(lenient_concurrency(Some("-2")), Some(3));
        assert_eq!(lenient_concurrency(Some("lots")), Some(3));
    }

    #[test]
    fn backends_are_named_or_refused_with_the_variable() {
        assert_eq!(BackendChoice::parse("ec2").ok(), Some(BackendChoice::Ec2));
        let err = BackendChoice::parse("dokcer").unwrap_err().to_string();
        assert!(err.contains("MOLECULE_BACKEND") && err.contains("dokcer"), "{err}");
    }
}
