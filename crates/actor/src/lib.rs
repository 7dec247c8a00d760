//! `molecule-actor`: who is acting, for the audit trail every persisted event carries.
//!
//! Owns: the task-local actor of the work in progress. A request runs in a [`scope`] that its
//! authentication fills in once it knows the caller ([`identify`]: `admin`, `console:<who>`,
//! `org-token:<id>`, `workspace:<id>`); a background loop's tick runs in a scope named after
//! the loop (`loop:<name>`). Whoever records an event reads [`current`]. Work spawned onto
//! another task carries the actor only when handed over with [`on_behalf`]; otherwise it is
//! the platform's own.
//!
//! Must not know: tokens, HTTP, the events table.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

tokio::task_local! {
    static CURRENT: Arc<Mutex<Option<String>>>;
}

/// Runs `fut` with `initial` as the actor until something inside it says who acts.
pub async fn scope<F: Future>(initial: Option<String>, fut: F) -> F::Output {
    CURRENT.scope(Arc::new(Mutex::new(initial)), fut).await
}

/// Names the actor of the current scope (the first name given wins: a request's caller does
/// not change halfway). Outside a scope it does nothing.
pub fn identify(who: impl Into<String>) {
    let _ = CURRENT.try_with(|slot| {
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(who.into());
        }
    });
}

/// `fut` as the current actor's work, for a task spawned on its behalf (a provision a request
/// started): the actor is read now, when the work is handed over.
pub fn on_behalf<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    scope(current(), fut)
}

/// The actor of the current scope, if one is known.
pub fn current() -> Option<String> {
    CURRENT
        .try_with(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).clone())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_is_named_once_and_nothing_leaks_out_of_it() {
        assert_eq!(current(), None);
        identify("nobody");
        assert_eq!(current(), None, "outside a scope nothing is kept");
        scope(None, async {
            assert_eq!(current(), None);
            identify("admin");
            identify("workspace:x");
            assert_eq!(current().as_deref(), Some("admin"), "the first name wins");
        })
        .await;
        scope(Some("loop:sweep".into()), async {
            assert_eq!(current().as_deref(), Some("loop:sweep"));
        })
        .await;
        assert_eq!(current(), None);
        let handed = scope(None, async {
            identify("admin");
            let task = tokio::spawn(on_behalf(async { current() }));
            identify("someone else");
            task.await
        })
        .await;
        assert_eq!(handed.unwrap().as_deref(), Some("admin"), "handed over to a task");
    }
}
