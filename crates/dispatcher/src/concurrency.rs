//! `MOLECULE_PROVISION_CONCURRENCY`: unset → 3; `0` → unlimited; `N` → N; negative or garbage
//! → 3 with a warning; whitespace is trimmed.

/// The cap when nothing (valid) is configured.
pub const DEFAULT_CONCURRENCY: usize = 3;

/// The resolved cap (`None` = unlimited) and, for invalid input, the warning to log.
pub fn parse_concurrency(raw: Option<&str>) -> (Option<usize>, Option<String>) {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return (Some(DEFAULT_CONCURRENCY), None);
    };
    match raw.parse::<i64>() {
        Ok(0) => (None, None),
        Ok(n) if n > 0 => (Some(usize::try_from(n).unwrap_or(usize::MAX)), None),
        _ => (
            Some(DEFAULT_CONCURRENCY),
            Some(format!(
                "MOLECULE_PROVISION_CONCURRENCY={raw:?} is not a non-negative integer; using {DEFAULT_CONCURRENCY}"
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_rules() {
        assert_eq!(parse_concurrency(None), (Some(3), None));
        assert_eq!(parse_concurrency(Some("  ")), (Some(3), None));
        assert_eq!(parse_concurrency(Some("0")), (None, None));
        assert_eq!(parse_concurrency(Some(" 10 ")), (Some(10), None));
        assert!(parse_concurrency(Some("-2")).1.is_some());
        assert_eq!(parse_concurrency(Some("-2")).0, Some(3));
        assert_eq!(parse_concurrency(Some("lots")).0, Some(3));
    }
}
