//! A workload's files: the roots the Files API serves, a listing's entries, the path rules
//! every backend applies, and why an operation on them fails.
//!
//! Must not know: how a backend reaches the files (archive API, filesystem, SSH).

use serde::Serialize;

/// The largest file the Files API reads or writes in one call (as large as a chat upload may
/// be, so every upload can be downloaded again).
pub const MAX_FILE_BYTES: usize = 25 * 1024 * 1024;
/// A listing stops after this many entries.
pub const MAX_LIST_ENTRIES: usize = 5000;
/// The platform's own files inside `/configs` (the delivered secrets): never listed, read,
/// written or deleted through the Files API.
pub const RESERVED_CONFIGS_DIR: &str = ".molecule";

/// A root of a workload's files (`?root=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileRoot {
    /// `/configs` (the default): the template's files and `config.yaml`.
    Configs,
    /// `/workspace`: the agent's working tree.
    Workspace,
    /// `/home`: inside the running workload only.
    Home,
    /// `/plugins`: `/configs/plugins` on Docker.
    Plugins,
}

impl FileRoot {
    pub const ALL: [FileRoot; 4] = [Self::Configs, Self::Workspace, Self::Home, Self::Plugins];

    /// `/configs`, `/workspace`, `/home` or `/plugins` (a missing value is `/configs`).
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.map(|s| s.trim_end_matches('/')) {
            None | Some("" | "/configs") => Ok(Self::Configs),
            Some("/workspace") => Ok(Self::Workspace),
            Some("/home") => Ok(Self::Home),
            Some("/plugins") => Ok(Self::Plugins),
            Some(other) => Err(format!(
                "must be one of /configs, /workspace, /home, /plugins; got {other:?}"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configs => "/configs",
            Self::Workspace => "/workspace",
            Self::Home => "/home",
            Self::Plugins => "/plugins",
        }
    }

    /// The root that holds an absolute path (`/workspace/a/b` → `(Workspace, "a/b")`).
    pub fn split_absolute(path: &str) -> Option<(Self, &str)> {
        Self::ALL.into_iter().find_map(|r| {
            let rest = path.strip_prefix(r.as_str())?;
            if rest.is_empty() {
                Some((r, ""))
            } else {
                rest.strip_prefix('/').map(|rel| (r, rel))
            }
        })
    }
}

/// One entry of a listing: a path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub dir: bool,
}

/// Why a file operation failed. The text says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileFailure {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 400: the path is not acceptable (it leaves its root, it is a symlink, a directory
    /// where a file is expected).
    #[error("{0}")]
    Invalid(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 501: this backend cannot reach the files; the text says why.
    #[error("{0}")]
    Unsupported(String),
    /// 409: nothing can reach workload files here (no provisioner is configured).
    #[error("{0}")]
    NoBackend(String),
    /// 503: the workload is not in a state to answer (not running for `/home`).
    #[error("{0}")]
    NotReady(String),
    /// The backend failed.
    #[error("{0}")]
    Failed(String),
}

/// A file operation on a workload, as the dispatcher routes it to the workload's backend.
/// Paths are checked and relative to `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    List {
        root: FileRoot,
        path: String,
        depth: u8,
    },
    Read {
        root: FileRoot,
        path: String,
    },
    Write {
        root: FileRoot,
        path: String,
        bytes: Vec<u8>,
    },
    Delete {
        root: FileRoot,
        path: String,
    },
}

/// What a file operation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAnswer {
    Listed(Vec<FileEntry>),
    Read(Vec<u8>),
    Done,
}

/// Checks a path relative to a root: no leading `/`, no `..`, `.` or empty segment, no NUL or
/// backslash. `""` is the root itself. Returns it without a trailing `/`.
pub fn check_relative(path: &str) -> Result<&str, FileFailure> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() {
            Ok("")
        } else {
            Err(FileFailure::Invalid(
                "path: must be relative to its root (no leading '/')".into(),
            ))
        };
    }
    if trimmed.starts_with('/') {
        return Err(FileFailure::Invalid(
            "path: must be relative to its root (no leading '/')".into(),
        ));
    }
    if trimmed.contains('\0') || trimmed.contains('\\') {
        return Err(FileFailure::Invalid("path: must not contain NUL or '\\'".into()));
    }
    for seg in trimmed.split('/') {
        match seg {
            "" => {
                return Err(FileFailure::Invalid(
                    "path: must not contain an empty segment ('//')".into(),
                ));
            }
            "." | ".." => {
                return Err(FileFailure::Invalid(format!(
                    "path: must not contain a {seg:?} segment: paths stay inside their root"
                )));
            }
            _ => {}
        }
    }
    Ok(trimmed)
}

/// Whether `rel` (checked) in `root` is the platform's reserved directory or inside it.
pub fn is_reserved(root: FileRoot, rel: &str) -> bool {
    let under = |dir: &str| rel == dir || rel.starts_with(&format!("{dir}/"));
    match root {
        FileRoot::Configs => under(RESERVED_CONFIGS_DIR),
        FileRoot::Plugins => false,
        FileRoot::Workspace | FileRoot::Home => false,
    }
}

/// Makes a file name safe to store: characters outside `[A-Za-z0-9._-]` become `_`, at most
/// 100 characters, never empty, `.` or `..`.
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') {
        out = format!("file{out}").replace('.', "_");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_their_root() {
        for bad in ["/etc/passwd", "a/../b", "..", "./a", "a//b", "a\\b", "a\0b", "/"] {
            assert!(matches!(check_relative(bad), Err(FileFailure::Invalid(_))), "{bad:?}");
        }
        assert_eq!(check_relative(""), Ok(""));
        assert_eq!(check_relative("a/b.txt/"), Ok("a/b.txt"));
        assert_eq!(check_relative("..a/b..").unwrap(), "..a/b..");
        assert!(is_reserved(FileRoot::Configs, ".molecule/secrets.json"));
        assert!(is_reserved(FileRoot::Configs, ".molecule"));
        assert!(!is_reserved(FileRoot::Configs, ".molecules"));
        assert!(!is_reserved(FileRoot::Workspace, ".molecule/chat-uploads/x"));
    }

    #[test]
    fn roots_and_names() {
        assert_eq!(FileRoot::parse(None), Ok(FileRoot::Configs));
        assert_eq!(FileRoot::parse(Some("/plugins/")), Ok(FileRoot::Plugins));
        assert!(FileRoot::parse(Some("/etc")).is_err());
        assert!(FileRoot::parse(Some("/agent-home")).is_err());
        assert_eq!(
            FileRoot::split_absolute("/workspace/a/b"),
            Some((FileRoot::Workspace, "a/b"))
        );
        assert_eq!(FileRoot::split_absolute("/workspacex/a"), None);
        assert_eq!(FileRoot::split_absolute("/etc/passwd"), None);
        assert_eq!(sanitize_file_name("../../etc/pass wd?.txt"), "pass_wd_.txt");
        assert_eq!(sanitize_file_name(".."), "file__");
        assert_eq!(sanitize_file_name(""), "file");
        assert_eq!(sanitize_file_name(&"é".repeat(300)).len(), 100);
    }
}
