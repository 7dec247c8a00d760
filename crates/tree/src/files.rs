//! Workload files as use-cases: the Files API (list, read, write, delete under a root) and
//! chat uploads and downloads, all checked here (roots, relative paths, the platform's
//! reserved `/configs/.molecule`, sizes) and carried out by the dispatcher through the
//! workload's backend; and a terminal into the workload (which backend gives one is the
//! dispatcher's business).
//!
//! Must not know: how a backend reaches the files.

use base64::Engine as _;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use molecule_api::files::{FileChanged, FileContent, FileEntry};
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::Vocabulary as _;
use molecule_domain::{
    FileAnswer, FileFailure, FileOp, FileRoot, MAX_FILE_BYTES, Runtime, WorkspaceStatus, check_relative, is_reserved,
};
use uuid::Uuid;

use crate::{Result, ServiceError, Tree};

/// The deepest listing.
pub const MAX_DEPTH: u8 = 5;

/// A workspace's row as file operations need it.
pub struct FileHost {
    pub runtime: Runtime,
    pub delivery_mode: Option<String>,
    pub url: Option<String>,
}

pub fn failure(e: FileFailure) -> ServiceError {
    match e {
        FileFailure::NotFound(m) => ServiceError::NotFound(m),
        FileFailure::Invalid(m) => ServiceError::invalid("path", m.strip_prefix("path: ").unwrap_or(&m).to_owned()),
        FileFailure::TooLarge(m) => ServiceError::TooLarge(m),
        FileFailure::Unsupported(m) => ServiceError::NotImplemented(m),
        FileFailure::NotReady(m) => ServiceError::NotReady(m),
        FileFailure::NoBackend(m) => ServiceError::conflict(m, serde_json::json!({})),
        e @ FileFailure::Failed(_) => ServiceError::internal("reaching the workload's files", e),
    }
}

fn root(raw: Option<&str>) -> Result<FileRoot> {
    FileRoot::parse(raw).map_err(|m| ServiceError::invalid("root", m))
}

/// A checked relative path that is not the platform's reserved directory.
fn path(root: FileRoot, raw: &str, allow_root: bool) -> Result<String> {
    let rel = check_relative(raw).map_err(failure)?;
    if rel.is_empty() && !allow_root {
        return Err(ServiceError::invalid("path", "must name a file under the root"));
    }
    if is_reserved(root, rel) {
        return Err(ServiceError::invalid(
            "path",
            "/configs/.molecule holds the platform's delivery files (the workload's secrets) and is not served",
        ));
    }
    Ok(rel.to_owned())
}

impl Tree {
    /// The live, non-external workspace `id` (404 when missing or removed; 400 for an
    /// external agent, whose files are on its own host).
    pub async fn file_host(&self, id: Uuid) -> Result<FileHost> {
        let mut conn = self.pool.get().await?;
        let row: Option<(DbWorkspaceStatus, String, Option<String>, Option<String>)> = w::table
            .find(id)
            .select((w::status, w::runtime, w::delivery_mode, w::url))
            .first(&mut conn)
            .await
            .optional()?;
        let Some((status, runtime, delivery_mode, url)) = row else {
            return Err(ServiceError::NotFound(format!("workspace {id} not found")));
        };
        if status.0 == WorkspaceStatus::Removed {
            return Err(ServiceError::NotFound(format!("workspace {id} is removed")));
        }
        let runtime = Runtime::resolve(Some(&runtime));
        Ok(FileHost {
            runtime,
            delivery_mode,
            url,
        })
    }

    async fn file_op(&self, id: Uuid, op: FileOp) -> Result<FileAnswer> {
        let host = self.file_host(id).await?;
        if host.runtime == Runtime::External {
            return Err(ServiceError::invalid(
                "id",
                "an external agent's files are on its own host; the platform cannot reach them",
            ));
        }
        self.hooks.files(id, op).await.map_err(failure)
    }

    /// `GET /workspaces/:id/terminal`: a shell in the live workspace's running workload (404
    /// when it is missing or removed; 501 for an external agent, which runs on its own host).
    pub async fn open_terminal(
        &self,
        id: Uuid,
    ) -> Result<std::result::Result<crate::hooks::Terminal, molecule_domain::TerminalFailure>> {
        let host = self.file_host(id).await?;
        if host.runtime == Runtime::External {
            return Ok(Err(molecule_domain::TerminalFailure::Unsupported(
                "an external agent runs on its own host; the platform has no way into it".into(),
            )));
        }
        Ok(self.hooks.terminal(id).await)
    }

    /// `GET /workspaces/:id/files?root&path&depth`: entries down to `depth` (1..=5) levels.
    pub async fn list_files(
        &self,
        id: Uuid,
        root_raw: Option<&str>,
        path_raw: Option<&str>,
        depth: Option<u8>,
    ) -> Result<Vec<FileEntry>> {
        let root = root(root_raw)?;
        let depth = depth.unwrap_or(1);
        if !(1..=MAX_DEPTH).contains(&depth) {
            return Err(ServiceError::invalid(
                "depth",
                format!("must be 1..={MAX_DEPTH}, got {depth}"),
            ));
        }
        let path = path(root, path_raw.unwrap_or(""), true)?;
        match self.file_op(id, FileOp::List { root, path, depth }).await? {
            FileAnswer::Listed(entries) => Ok(entries
                .into_iter()
                .filter(|e| !is_reserved(root, &e.path))
                .map(Into::into)
                .collect()),
            other => Err(ServiceError::internal("listing files", unexpected(other))),
        }
    }

    /// `GET /workspaces/:id/files/*path`.
    pub async fn read_file(&self, id: Uuid, root_raw: Option<&str>, path_raw: &str) -> Result<FileContent> {
        let root = root(root_raw)?;
        let path = path(root, path_raw, false)?;
        let bytes = match self
            .file_op(
                id,
                FileOp::Read {
                    root,
                    path: path.clone(),
                },
            )
            .await?
        {
            FileAnswer::Read(b) => b,
            other => return Err(ServiceError::internal("reading a file", unexpected(other))),
        };
        let size = bytes.len();
        Ok(match String::from_utf8(bytes) {
            Ok(content) => FileContent {
                path,
                content,
                size,
                encoding: None,
            },
            Err(e) => FileContent {
                path,
                content: base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                size,
                encoding: Some("base64".into()),
            },
        })
    }

    /// The bytes of `path` (for downloads).
    pub async fn read_file_bytes(&self, id: Uuid, root: FileRoot, path_raw: &str) -> Result<Vec<u8>> {
        let path = path(root, path_raw, false)?;
        match self.file_op(id, FileOp::Read { root, path }).await? {
            FileAnswer::Read(b) => Ok(b),
            other => Err(ServiceError::internal("reading a file", unexpected(other))),
        }
    }

    /// `PUT /workspaces/:id/files/*path` (`encoding: "base64"` for binary content).
    pub async fn write_file(
        &self,
        id: Uuid,
        root_raw: Option<&str>,
        path_raw: &str,
        content: String,
        encoding: Option<&str>,
    ) -> Result<FileChanged> {
        let root = root(root_raw)?;
        let bytes = match encoding {
            None | Some("utf-8" | "utf8") => content.into_bytes(),
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(content.as_bytes())
                .map_err(|e| ServiceError::invalid("content", format!("is not base64: {e}")))?,
            Some(other) => {
                return Err(ServiceError::invalid(
                    "encoding",
                    format!("must be base64 or absent, got {other:?}"),
                ));
            }
        };
        self.write_bytes(id, root, path_raw, bytes).await
    }

    pub async fn write_bytes(&self, id: Uuid, root: FileRoot, path_raw: &str, bytes: Vec<u8>) -> Result<FileChanged> {
        let path = path(root, path_raw, false)?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(ServiceError::TooLarge(format!(
                "content: {} bytes; a file may be at most {MAX_FILE_BYTES}",
                bytes.len()
            )));
        }
        self.file_op(
            id,
            FileOp::Write {
                root,
                path: path.clone(),
                bytes,
            },
        )
        .await?;
        Ok(FileChanged {
            status: "saved".into(),
            path,
            root: root.as_str().into(),
        })
    }

    /// `PUT /workspaces/:id/files`: several text files; every path is checked before any is
    /// written.
    pub async fn write_files(
        &self,
        id: Uuid,
        root_raw: Option<&str>,
        files: std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<FileChanged>> {
        let root = root(root_raw)?;
        if files.is_empty() {
            return Err(ServiceError::invalid("files", "give at least one file"));
        }
        for (p, c) in &files {
            path(root, p, false).map_err(|e| match e {
                ServiceError::Invalid { message, .. } => ServiceError::invalid("files", format!("{p:?}: {message}")),
                other => other,
            })?;
            if c.len() > MAX_FILE_BYTES {
                return Err(ServiceError::TooLarge(format!(
                    "files: {p:?} is over {MAX_FILE_BYTES} bytes"
                )));
            }
        }
        let mut out = Vec::with_capacity(files.len());
        for (p, c) in files {
            out.push(self.write_bytes(id, root, &p, c.into_bytes()).await?);
        }
        Ok(out)
    }

    /// `DELETE /workspaces/:id/files/*path` (a directory goes with its contents).
    pub async fn delete_file(&self, id: Uuid, root_raw: Option<&str>, path_raw: &str) -> Result<FileChanged> {
        let root = root(root_raw)?;
        let path = path(root, path_raw, false)?;
        self.file_op(
            id,
            FileOp::Delete {
                root,
                path: path.clone(),
            },
        )
        .await?;
        Ok(FileChanged {
            status: "deleted".into(),
            path,
            root: root.as_str().into(),
        })
    }
}

fn unexpected(a: FileAnswer) -> std::io::Error {
    std::io::Error::other(format!("the backend answered {a:?}"))
}

/// Where chat uploads are stored, under `/workspace`.
pub const CHAT_UPLOADS_DIR: &str = ".molecule/chat-uploads";
/// One uploaded file may be at most this large (the Files API's own limit)…
pub const CHAT_MAX_FILE_BYTES: usize = MAX_FILE_BYTES;
/// …and one upload at most this large in all.
pub const CHAT_MAX_TOTAL_BYTES: usize = 50 * 1024 * 1024;

impl Tree {
    /// Whether workspace `id` can take a chat upload now (the seed's rules): a workspace with
    /// no callback URL in poll (or unset) delivery mode never can (422); a push-mode one
    /// whose agent has not registered its URL yet can later (503).
    pub async fn check_chat_upload(&self, id: Uuid) -> Result<()> {
        let host = self.file_host(id).await?;
        let no_url = host.url.as_deref().is_none_or(|u| u.trim().is_empty());
        if no_url {
            if host.delivery_mode.as_deref() != Some(molecule_domain::DeliveryMode::Push.as_str()) {
                return Err(ServiceError::Unprocessable {
                    code: "NO_CALLBACK_URL",
                    message: "workspace has no callback URL - upload requires push-mode + a public URL".into(),
                    details: serde_json::json!({
                        "detail": "this workspace's delivery mode is poll (or unset) and it has no URL; register it in push mode with a URL to take uploads",
                        "delivery_mode": host.delivery_mode,
                    }),
                });
            }
            return Err(ServiceError::NotReady("workspace url not registered yet".into()));
        }
        Ok(())
    }

    /// Stores one chat upload under `/workspace/.molecule/chat-uploads/<32 hex>-<name>`
    /// (the name sanitised) through the workload's backend.
    pub async fn store_chat_upload(
        &self,
        id: Uuid,
        name: &str,
        mime_type: &str,
        bytes: Vec<u8>,
    ) -> Result<molecule_api::files::UploadedFile> {
        let name = molecule_domain::sanitize_file_name(name);
        let rel = format!("{CHAT_UPLOADS_DIR}/{}-{name}", Uuid::new_v4().simple());
        let size = bytes.len();
        self.write_bytes(id, FileRoot::Workspace, &rel, bytes).await?;
        Ok(molecule_api::files::UploadedFile {
            uri: format!("workspace:{}/{rel}", FileRoot::Workspace.as_str()),
            name,
            mime_type: mime_type.to_owned(),
            size,
        })
    }

    /// `GET /workspaces/:id/chat/download?path=`: an absolute path under one of the roots.
    pub async fn chat_download(&self, id: Uuid, path: &str) -> Result<(String, Vec<u8>)> {
        let Some((root, rel)) = FileRoot::split_absolute(path) else {
            return Err(ServiceError::invalid(
                "path",
                "must be an absolute path under /configs, /workspace, /home or /plugins",
            ));
        };
        let name = rel.rsplit('/').next().unwrap_or_default();
        let name = molecule_domain::sanitize_file_name(name);
        let bytes = self.read_file_bytes(id, root, rel).await?;
        Ok((name, bytes))
    }
}
