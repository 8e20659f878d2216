//! Change notification for the config directory.

use notify::{RecursiveMode, Watcher as _};
use std::path::Path;
use tokio::sync::mpsc;

/// Keeps the OS watch alive; dropping it stops notifications.
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
}

/// Sends `()` on `tx` whenever something under `dir` changes. Bursts are coalesced: the channel
/// holds at most one pending notification, and the receiver rescans the whole directory, so
/// renames, deletes and editor save-by-rename all end up applied.
pub fn watch(dir: &Path, tx: mpsc::Sender<()>) -> notify::Result<Watcher> {
    let mut inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(e) => !matches!(e.kind, notify::EventKind::Access(_)),
            Err(_) => true,
        };
        if relevant {
            // Full means a rescan is already pending.
            let _ = tx.try_send(());
        }
    })?;
    inner.watch(dir, RecursiveMode::Recursive)?;
    Ok(Watcher { _inner: inner })
}
