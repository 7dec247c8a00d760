//! Field validation shared by the use-cases. Every error names the field.

use std::net::IpAddr;

use crate::error::{Result, ServiceError};

const NAME_FORBIDDEN: &[char] = &['{', '}', '[', ']', '|', '>', '*', '&', '!'];

/// A workspace name ([`WorkspaceName`]'s rules), the error naming `field`.
pub fn workspace_name(field: &'static str, value: &str) -> Result<molecule_domain::WorkspaceName> {
    molecule_domain::WorkspaceName::parse(value).map_err(|e| ServiceError::invalid(field, e.to_string()))
}

/// Trimmed, non-empty, at most `max` characters, no control characters; `strict` also
/// forbids the original's template metacharacters (`{}[]|>*&!`).
pub fn text(field: &'static str, value: &str, max: usize, strict: bool) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    let len = v.chars().count();
    if len > max {
        return Err(ServiceError::invalid(
            field,
            format!("is {len} characters; at most {max} are allowed"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            "must not contain control characters (newlines, tabs, …)",
        ));
    }
    if strict && let Some(c) = v.chars().find(|c| NAME_FORBIDDEN.contains(c)) {
        return Err(ServiceError::invalid(
            field,
            format!("must not contain {c:?} (forbidden: {{}}[]|>*&!)"),
        ));
    }
    Ok(v.to_owned())
}

pub fn optional_text(field: &'static str, value: Option<&str>, max: usize, strict: bool) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => text(field, v, max, strict).map(Some),
    }
}

/// Agent URLs: http(s) with a host. Literal addresses in link-local/metadata, documentation,
/// CGNAT, multicast or unspecified ranges are refused everywhere; loopback too in SaaS mode.
/// Host names are not resolved here (no DNS on the request path).
pub fn agent_url(field: &'static str, raw: &str, saas: bool) -> Result<String> {
    let raw = raw.trim();
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
        .ok_or_else(|| ServiceError::invalid(field, "must be an http:// or https:// URL"))?;
    if raw.len() > 2048 || raw.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ServiceError::invalid(
            field,
            "must be at most 2048 characters with no spaces or control characters",
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err(ServiceError::invalid(field, "has no host"));
    }
    if let Ok(ip) = host.parse::<IpAddr>()
        && blocked(ip, saas)
    {
        return Err(ServiceError::invalid(
            field,
            format!("address {ip} is not allowed for an agent URL"),
        ));
    }
    Ok(raw.to_owned())
}

fn blocked(ip: IpAddr, saas: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (o[0] == 192 && o[1] == 0 && o[2] == 2)
                || (o[0] == 198 && o[1] == 51 && o[2] == 100)
                || (o[0] == 203 && o[1] == 0 && o[2] == 113)
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (saas && v4.is_loopback())
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                || (saas && v6.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_control_and_meta_characters() {
        assert!(text("name", "ok name", 255, true).is_ok());
        assert!(text("name", "bad\nname", 255, true).is_err());
        assert!(text("name", "a{b}", 255, true).is_err());
        assert!(text("name", "   ", 255, true).is_err());
        assert!(text("name", &"x".repeat(256), 255, true).is_err());
    }

    #[test]
    fn urls_block_metadata_and_documentation_ranges() {
        assert!(agent_url("url", "http://127.0.0.1:8000", false).is_ok());
        assert!(agent_url("url", "http://127.0.0.1:8000", true).is_err());
        assert!(agent_url("url", "http://169.254.169.254/latest", false).is_err());
        assert!(agent_url("url", "http://[fe80::1]:80/", false).is_err());
        assert!(agent_url("url", "http://192.0.2.5/", false).is_err());
        assert!(agent_url("url", "ftp://host/", false).is_err());
        assert!(agent_url("url", "http:///path", false).is_err());
        assert!(agent_url("url", "https://agent.example.com/a2a", false).is_ok());
    }
}
