//! Nothing left behind (issue 15, point 2). Every `sweep_poll_ms` each
//! gateway:
//!
//! - finishes event deletions begun more than `orphan_grace_ms` ago and
//!   not finished (the gateway that began one stopped, or a dependency
//!   failed halfway): faces, every object under the event's prefix, rows,
//!   the audit entry;
//! - removes the objects of uploads whose photo row never committed: an
//!   upload journals its key (`catalog.pending_objects`) before writing, and
//!   the transaction that commits the photo removes the journal row, so a
//!   row older than the grace period names an object nobody refers to. In a
//!   local folder the staged parts of a cut upload (`<key>#<n>`, invisible
//!   to listings) go too; on S3, incomplete multipart uploads are the
//!   bucket's lifecycle rule's job (docs/operations.md).
//!
//! Several gateways may sweep at once: every step is idempotent.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use facepass_core::Result;
use facepass_server::storage::Location;
use facepass_server::Shutdown;

use crate::domain::Gateway;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub deletions_finished: usize,
    pub orphans_removed: usize,
}

pub async fn run(gateway: Arc<Gateway>, shutdown: Shutdown) {
    let poll = Duration::from_millis(gateway.config.sweep_poll_ms);
    // Share tokens: the first successful pass, and one an hour after it,
    // seals every token again with the current key (a rotated
    // share_link_key: links that gateways still on the old key wrote during
    // the rollout are caught too); the passes between seal only the ones an
    // older gateway wrote in the clear during an upgrade.
    let mut last_full: Option<std::time::Instant> = None;
    loop {
        let full = last_full.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600));
        match gateway.catalog.reseal_share_tokens(full).await {
            Ok(changed) => {
                if full {
                    last_full = Some(std::time::Instant::now());
                }
                if changed > 0 {
                    tracing::info!(
                        changed,
                        "share tokens sealed with the current share_link_key"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(code = %e.code, error = %e.message, "sealing share tokens failed; retrying")
            }
        }
        match sweep(&gateway).await {
            Ok(Swept {
                deletions_finished: 0,
                orphans_removed: 0,
            }) => {}
            Ok(swept) => tracing::info!(
                deletions_finished = swept.deletions_finished,
                orphans_removed = swept.orphans_removed,
                "sweeper: left-overs removed"
            ),
            Err(e) => {
                tracing::warn!(code = %e.code, error = %e.message, "sweep failed; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// One pass.
pub async fn sweep(gateway: &Gateway) -> Result<Swept> {
    let grace = chrono::Duration::milliseconds(gateway.config.orphan_grace_ms as i64);
    let before = Utc::now() - grace;
    let mut swept = Swept::default();
    for (event, actor) in gateway.catalog.unfinished_deletions(before, 20).await? {
        tracing::info!(event_id = %event.id, %actor, "finishing an interrupted event deletion");
        gateway.finish_event_deletion(&event, &actor).await?;
        swept.deletions_finished += 1;
    }
    let local_root = match Location::parse(&gateway.config.storage_root) {
        Ok(Location::Local(root)) => Some(PathBuf::from(root)),
        _ => None,
    };
    for key in gateway.catalog.stale_objects(before, 200).await? {
        if !gateway.catalog.object_in_use(&key).await? {
            gateway.delete_object(&key).await?;
            if let Some(root) = &local_root {
                remove_staged_parts(root, &key);
            }
            tracing::info!(%key, "orphaned upload removed");
            swept.orphans_removed += 1;
        }
        gateway.catalog.forget_object(&key).await?;
    }
    Ok(swept)
}

/// Removes `<key>#<digits>` under `root`: the parts a local multipart
/// upload stages before it renames them into place (object_store's
/// LocalFileSystem), left behind when the process dies mid-upload.
fn remove_staged_parts(root: &Path, key: &str) {
    let path = root.join(key);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if is_staged_part(file, name) {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a staged part");
            }
        }
    }
}

/// `file` is `<name>#<digits>`.
fn is_staged_part(file: &str, name: &str) -> bool {
    file.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_staged_parts_of_that_key_are_matched() {
        assert!(is_staged_part("abc#1", "abc"));
        assert!(is_staged_part("abc#12", "abc"));
        assert!(!is_staged_part("abc", "abc"));
        assert!(!is_staged_part("abc#", "abc"));
        assert!(!is_staged_part("abc#x1", "abc"));
        assert!(!is_staged_part("abcd#1", "abc"));
        assert!(!is_staged_part("ab#1", "abc"));
    }

    #[test]
    fn staged_parts_are_removed_and_nothing_else() {
        let root = std::env::temp_dir().join(format!("facepass-sweep-{}", std::process::id()));
        let dir = root.join("studios/s/events/e/photos");
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["p1#1", "p1#2", "p1", "p2#1", "p10#1"] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        remove_staged_parts(&root, "studios/s/events/e/photos/p1");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["p1", "p10#1", "p2#1"]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
