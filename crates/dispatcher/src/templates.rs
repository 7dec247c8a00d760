//! A minimal template loader: `<CONFIGS_DIR>/<name>/config.yaml`, of which only
//! `runtime_config.provision_timeout_seconds` is read here.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct Config {
    #[serde(default)]
    runtime_config: RuntimeConfig,
}

#[derive(Debug, Default, Deserialize)]
struct RuntimeConfig {
    provision_timeout_seconds: Option<u64>,
}

/// The templates directory (`CONFIGS_DIR`).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub dir: Option<PathBuf>,
}

impl Templates {
    /// `runtime_config.provision_timeout_seconds` of template `name`, with the file it came from.
    /// A missing or unreadable template is `None` (logged when malformed).
    pub fn provision_timeout(&self, name: &str) -> Option<(u64, PathBuf)> {
        let dir = self.dir.as_ref()?;
        if name.contains('/') || name.contains("..") {
            return None;
        }
        let path = dir.join(name).join("config.yaml");
        let text = std::fs::read_to_string(&path).ok()?;
        match serde_yaml_ng::from_str::<Config>(&text) {
            Ok(c) => c
                .runtime_config
                .provision_timeout_seconds
                .filter(|s| *s > 0)
                .map(|s| (s, path)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "template config.yaml is not valid YAML; ignoring it");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timeout_and_ignores_broken_files() {
        let dir = std::env::temp_dir().join(format!("tpl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("slow")).unwrap();
        std::fs::create_dir_all(dir.join("broken")).unwrap();
        std::fs::write(
            dir.join("slow/config.yaml"),
            "name: slow\nruntime_config:\n  provision_timeout_seconds: 1200\n",
        )
        .unwrap();
        std::fs::write(dir.join("broken/config.yaml"), "runtime_config: [unclosed\n").unwrap();
        let t = Templates { dir: Some(dir.clone()) };
        assert_eq!(t.provision_timeout("slow").map(|(s, _)| s), Some(1200));
        assert_eq!(t.provision_timeout("broken"), None);
        assert_eq!(t.provision_timeout("missing"), None);
        assert_eq!(t.provision_timeout("../etc"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
