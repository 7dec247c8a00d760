//! Files API bodies: a listing's entries, a file's content, writes, and chat uploads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One entry of `GET /workspaces/:id/files`: a path relative to the root.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub dir: bool,
}

impl From<molecule_domain::FileEntry> for FileEntry {
    fn from(e: molecule_domain::FileEntry) -> Self {
        Self {
            path: e.path,
            size: e.size,
            dir: e.dir,
        }
    }
}

/// `GET /workspaces/:id/files/*path`: UTF-8 content as is; anything else base64 with
/// `encoding: "base64"`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileContent {
    pub path: String,
    pub content: String,
    pub size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

/// `PUT /workspaces/:id/files/*path` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFile {
    pub content: String,
    /// `base64` when `content` is base64 (binary files); absent for UTF-8 text.
    pub encoding: Option<String>,
}

/// `PUT /workspaces/:id/files` body: several text files at once (relative path → content).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFiles {
    pub files: BTreeMap<String, String>,
}

/// What a write or delete answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileChanged {
    /// `saved` or `deleted`.
    pub status: String,
    pub path: String,
    pub root: String,
}

/// One stored chat upload.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadedFile {
    /// `workspace:<absolute path>`.
    pub uri: String,
    pub name: String,
    #[serde(rename = "mimeType")]
    pub mime_type: String,
    pub size: usize,
}

/// `POST /workspaces/:id/chat/uploads` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Uploaded {
    pub files: Vec<UploadedFile>,
}
