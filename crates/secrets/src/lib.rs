//! Encrypted secrets and redaction. A skeleton: the secrets issue fills it in.
//!
//! Owns (planned): the workspace and global secrets tables, AES-256-GCM sealing with a key id
//! and the workspace id as associated data, key rotation, `secrecy` types so a value cannot be
//! logged by accident, and the redactor that memory writes and logs share. Must not know:
//! HTTP, backends, or which workload a secret ends up in (the dispatcher passes sealed values
//! through).
