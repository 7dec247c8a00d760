//! Fixtures for the tests of this crate and the crates above it (feature `testing`, enabled
//! only by their dev-dependencies; never part of a release build).
//!
//! Owns: "a workspace with a token", made through the real use-case so the fixture cannot
//! drift from what `POST /workspaces` does. Must not know: HTTP or backends. Generic helpers
//! (deadline polling, bearer headers, stable JSON for snapshots) live in `molecule-testkit`,
//! which must not depend on the crates it tests.

use molecule_api::workspaces::CreateWorkspace;
use uuid::Uuid;

use crate::Services;

/// A workspace created through [`Services::create_workspace`], with a token of its own.
#[derive(Debug, Clone)]
pub struct TestWorkspace {
    pub id: Uuid,
    /// The plaintext bearer token (shown once at creation).
    pub token: String,
}

/// Creates a root workspace named `name` and returns it with its token.
///
/// # Panics
/// When the creation fails: a fixture that cannot be built fails the test that asked for it.
pub async fn workspace_with_token(services: &Services, name: &str) -> TestWorkspace {
    workspace_under(services, name, None).await
}

/// Like [`workspace_with_token`], as a child of `parent` when given.
///
/// # Panics
/// When the creation fails.
#[allow(clippy::expect_used)] // test fixture: failing loudly is the point
pub async fn workspace_under(services: &Services, name: &str, parent: Option<Uuid>) -> TestWorkspace {
    let created = services
        .create_workspace(CreateWorkspace {
            name: name.into(),
            parent_id: parent,
            ..Default::default()
        })
        .await
        .expect("creating a test workspace");
    // A provisioned workspace's create answer carries no token: mint the fixture's own.
    let token = match created.auth_token {
        Some(t) => t,
        None => {
            services
                .tree()
                .mint_token(created.id)
                .await
                .expect("minting a test workspace's token")
                .auth_token
        }
    };
    TestWorkspace { id: created.id, token }
}
