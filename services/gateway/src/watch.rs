//! Watching an event's indexing: a stream of progress snapshots and of each
//! photo's outcome as it happens, for gRPC `WatchEvent` and the REST
//! Server-Sent Events route. Each watcher polls the catalog (every
//! `WATCH_POLL`, cheap indexed queries), so it sees every gateway
//! replica's outcomes, not only those this process applied.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use facepass_core::{Error, ErrorCode, Result};
use futures::Stream;
use uuid::Uuid;

use crate::catalog::{Cursor, EventCounts, PhotoRow};
use crate::domain::Gateway;

/// How often a watcher looks for news.
pub const WATCH_POLL: Duration = Duration::from_millis(500);
/// Outcomes read per look.
const OUTCOMES_PER_POLL: i64 = 200;

/// One thing a watcher is told.
#[derive(Debug, Clone)]
pub enum Update {
    /// The event's counts; `completed` once nothing is pending.
    Progress {
        counts: EventCounts,
        completed: bool,
    },
    /// A photo was indexed or failed.
    Photo(Box<PhotoRow>),
}

struct State {
    gateway: Arc<Gateway>,
    studio: Uuid,
    event_id: Uuid,
    cursor: Cursor,
    last: Option<EventCounts>,
    queue: VecDeque<Update>,
    first: bool,
    done: bool,
}

/// The updates of one event from now on: a progress snapshot first, then
/// each outcome and the progress after it, until the caller stops reading.
/// Ends with NOT_FOUND if the event is deleted meanwhile.
pub fn watch(
    gateway: Arc<Gateway>,
    studio: Uuid,
    event_id: Uuid,
) -> impl Stream<Item = Result<Update>> + Send + 'static {
    let state = State {
        gateway,
        studio,
        event_id,
        cursor: Cursor {
            created_at: crate::catalog::now(),
            id: Uuid::nil(),
        },
        last: None,
        queue: VecDeque::new(),
        first: true,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(update) = s.queue.pop_front() {
                return Some((Ok(update), s));
            }
            if s.done {
                return None;
            }
            if !s.first {
                tokio::time::sleep(WATCH_POLL).await;
            }
            s.first = false;
            if let Err(e) = s.poll().await {
                s.done = true;
                return Some((Err(e), s));
            }
        }
    })
}

impl State {
    async fn poll(&mut self) -> Result<()> {
        // Scoped to the studio: a deleted (or foreign) event ends the watch.
        self.gateway
            .catalog
            .get_event(self.studio, self.event_id)
            .await
            .map_err(|e| match e.code {
                ErrorCode::NotFound => Error::not_found(format!(
                    "event {} not found (deleted while watched?)",
                    self.event_id
                )),
                _ => e,
            })?;
        let outcomes = self
            .gateway
            .catalog
            .photo_outcomes(self.event_id, self.cursor, OUTCOMES_PER_POLL)
            .await?;
        if let Some(last) = outcomes.last() {
            self.cursor = Cursor {
                created_at: last.updated_at,
                id: last.id,
            };
        }
        self.queue
            .extend(outcomes.into_iter().map(|p| Update::Photo(Box::new(p))));
        let counts = self
            .gateway
            .catalog
            .event_counts(&[self.event_id])
            .await?
            .get(&self.event_id)
            .copied()
            .unwrap_or_default();
        if self.last != Some(counts) {
            self.last = Some(counts);
            self.queue.push_back(Update::Progress {
                counts,
                completed: counts.pending == 0,
            });
        }
        Ok(())
    }
}
