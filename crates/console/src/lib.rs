//! `molecule-console`: the operator console workspace-server serves at `/console`.
//!
//! Owns: [`session`], sign-in sessions (the `console_sessions` table; the signed cookie, its
//! CSRF token, expiry and revocation), and [`pages`], the server-rendered HTML (maud, escaped
//! by default) with its stylesheet and script built into the binary (`assets/`), written for a
//! strict Content-Security-Policy: no inline script or style; and [`canvas`], what the
//! original canvas app reads and writes (the shared viewport).
//!
//! Must not know: HTTP frameworks (the routes, cookies' headers and the CSP live in
//! `molecule-http`), how a workspace is provisioned or messaged.

pub mod canvas;
pub mod pages;
pub mod session;

pub use session::{Issued, Session, Sessions};
