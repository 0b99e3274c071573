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
/// How far back each look reads again. A photo's `updated_at` is taken when
/// its update starts, and it becomes visible when that commits: one that
/// commits after a later-stamped one would fall behind the cursor and never
/// be told. Rows already told are skipped by (id, updated_at).
const LOOK_BACK: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// Pages of outcomes read in one look at most (the rest wait for the next).
const MAX_PAGES_PER_POLL: usize = 20;

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
    /// When the watch began: nothing earlier is told.
    started: chrono::DateTime<chrono::Utc>,
    /// Outcomes told within `LOOK_BACK` of the cursor.
    told: std::collections::HashMap<Uuid, chrono::DateTime<chrono::Utc>>,
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
    let started = crate::catalog::now();
    let state = State {
        gateway,
        studio,
        event_id,
        cursor: Cursor {
            created_at: started,
            id: Uuid::nil(),
        },
        started,
        told: Default::default(),
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
        // Each read is one snapshot of outcomes and counts, so the counts
        // never run ahead of the outcomes told; a full page is followed by
        // the next before the counts are told.
        let mut from = Cursor {
            created_at: (self.cursor.created_at - LOOK_BACK).max(self.started),
            id: Uuid::nil(),
        };
        let mut counts = None;
        for _ in 0..MAX_PAGES_PER_POLL {
            let (outcomes, now) = self
                .gateway
                .catalog
                .outcomes_and_counts(self.event_id, from, OUTCOMES_PER_POLL)
                .await?;
            let full = outcomes.len() as i64 == OUTCOMES_PER_POLL;
            if let Some(last) = outcomes.last() {
                from = Cursor {
                    created_at: last.updated_at,
                    id: last.id,
                };
            }
            for photo in outcomes {
                if self.told.get(&photo.id) == Some(&photo.updated_at) {
                    continue;
                }
                if (photo.updated_at, photo.id) > (self.cursor.created_at, self.cursor.id) {
                    self.cursor = Cursor {
                        created_at: photo.updated_at,
                        id: photo.id,
                    };
                }
                self.told.insert(photo.id, photo.updated_at);
                self.queue.push_back(Update::Photo(Box::new(photo)));
            }
            if !full {
                counts = Some(now);
                break;
            }
        }
        let horizon = self.cursor.created_at - LOOK_BACK;
        self.told.retain(|_, at| *at >= horizon);
        let Some(counts) = counts else {
            // More outcomes than this look reads: the rest, then the counts.
            return Ok(());
        };
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
