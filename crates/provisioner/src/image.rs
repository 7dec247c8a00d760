//! Image references: `[registry[:port]/]repository[:tag][@sha256:…]`, the moving-tag rule, and
//! image selection.

use std::collections::BTreeMap;

/// Tags that move: they are re-pulled on every provision.
pub const MOVING_TAGS: &[&str] = &["latest", "staging", "main", "dev", "edge", "nightly", "rolling"];

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` when the first path component names a registry.
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() || s.chars().any(char::is_whitespace) {
            return None;
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d))
                if d.starts_with("sha256:") && d.len() == 71 && d[7..].chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                (r, Some(d.to_owned()))
            }
            Some(_) => return None,
            None => (s, None),
        };
        // The tag is after the last ':' of the last path component (a registry port is not).
        let (path, tag) = match rest.rsplit_once('/') {
            Some((head, last)) => match last.split_once(':') {
                Some((name, tag)) => (format!("{head}/{name}"), Some(tag.to_owned())),
                None => (rest.to_owned(), None),
            },
            None => match rest.split_once(':') {
                Some((name, tag)) => (name.to_owned(), Some(tag.to_owned())),
                None => (rest.to_owned(), None),
            },
        };
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (Some(first.to_owned()), rest.to_owned())
            }
            _ => (None, path),
        };
        if repository.is_empty() || tag.as_deref() == Some("") {
            return None;
        }
        Some(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Pinned by digest, or a fixed tag: no pull needed when present locally.
    pub fn is_moving(&self) -> bool {
        self.digest.is_none() && self.tag.as_deref().is_none_or(|t| MOVING_TAGS.contains(&t))
    }

    /// Repository with its registry, without tag or digest.
    pub fn base(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The same image pinned to `digest`.
    pub fn pinned(&self, digest: &str) -> Self {
        Self {
            tag: None,
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The image for `runtime`: a pinned digest on the runtime's base image, else the runtime's
/// mapped image, else `default`.
pub fn select_image(pin: Option<&str>, runtime: &str, map: &BTreeMap<String, String>, default: &ImageRef) -> ImageRef {
    let mapped = map
        .get(runtime)
        .and_then(|s| ImageRef::parse(s))
        .unwrap_or_else(|| default.clone());
    match pin {
        Some(digest) => mapped.pinned(digest),
        None => mapped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_registries_ports_tags_and_digests() {
        let r = ImageRef::parse("localhost:5000/team/agent:nightly").unwrap();
        assert_eq!(
            (r.registry.as_deref(), r.repository.as_str(), r.tag.as_deref()),
            (Some("localhost:5000"), "team/agent", Some("nightly"))
        );
        assert!(r.is_moving());
        let r = ImageRef::parse("registry.example.com:443/agent").unwrap();
        assert_eq!(
            (r.registry.as_deref(), r.tag.as_deref()),
            (Some("registry.example.com:443"), None)
        );
        assert!(r.is_moving(), "untagged is moving");
        let r = ImageRef::parse(&format!("agent:v1.2@{D}")).unwrap();
        assert!(!r.is_moving());
        assert_eq!(r.to_string(), format!("agent:v1.2@{D}"));
        assert!(!ImageRef::parse("agent:v1.2").unwrap().is_moving());
        assert!(ImageRef::parse("agent:latest").unwrap().is_moving());
        assert_eq!(ImageRef::parse("team/agent").unwrap().registry, None);
        for bad in ["", "a b", "agent@sha256:zz", "agent:"] {
            assert!(ImageRef::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn pin_beats_map_beats_default() {
        let default = ImageRef::parse("molecule-agent:latest").unwrap();
        let map = BTreeMap::from([("hermes".to_owned(), "localhost:5000/hermes:staging".to_owned())]);
        assert_eq!(select_image(None, "codex", &map, &default), default);
        assert_eq!(
            select_image(None, "hermes", &map, &default).to_string(),
            "localhost:5000/hermes:staging"
        );
        assert_eq!(
            select_image(Some(D), "hermes", &map, &default).to_string(),
            format!("localhost:5000/hermes@{D}")
        );
    }
}
