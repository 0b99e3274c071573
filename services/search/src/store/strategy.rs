//! The policy that picks how a search runs, in one place, and the search
//! entry point that applies it:
//!
//! 1. **Memory**: when copies are enabled and the event has at least
//!    `cache_min_faces` faces, and this process holds a copy of the event at
//!    the version of its registry row, the copy is scanned (memory.rs). A
//!    missing or stale copy is loaded in the background; this search goes on
//!    in PostgreSQL.
//! 2. **HNSW**: events above `exact_max_faces` whose own index is `ready`
//!    are scanned through it (hnsw.rs).
//! 3. **Exact**: everything else, by one pass over the event's partition
//!    (exact.rs).

use facepass_core::Result;

use super::registry::checked_partition;
use super::{exact, memory, Candidate, EventInfo, FaceStore};

/// How an event is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Every face of the event's partition is compared.
    #[default]
    Exact,
    /// The event's own HNSW index, scanned iteratively.
    Hnsw,
    /// Exact, over this process's float32 copy of the event (cache.rs).
    Memory,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Exact => "exact",
            Strategy::Hnsw => "hnsw",
            Strategy::Memory => "memory",
        }
    }
}

impl FaceStore {
    /// How `event` is searched in PostgreSQL: through its HNSW index once
    /// it is large enough and the index is ready, exactly otherwise.
    fn strategy(&self, event: &EventInfo) -> Strategy {
        if event.face_count > self.tuning.exact_max_faces && event.ann_index == "ready" {
            Strategy::Hnsw
        } else {
            Strategy::Exact
        }
    }

    /// How a search of `event` would run now, as statistics report it.
    pub(super) fn strategy_now(&self, event: &EventInfo) -> Strategy {
        if self.cache.get(event.event_id, event.version).is_some() {
            Strategy::Memory
        } else {
            self.strategy(event)
        }
    }

    /// Every face of `event` at least `min_similarity` similar to at least
    /// one query; similarities are reported per query. Queries must be
    /// L2-normalised, so cosine distance is `1 - dot`.
    pub async fn candidates(
        &self,
        event: &EventInfo,
        queries: &[Vec<f32>],
        min_similarity: f32,
    ) -> Result<(Strategy, Vec<Candidate>)> {
        for (i, q) in queries.iter().enumerate() {
            event.check_dimension(&format!("query {i}"), q.len())?;
        }
        if self.cache.enabled() && event.face_count >= self.cache.min_faces {
            if let Some(copy) = self.cache.get(event.event_id, event.version) {
                let found = memory::candidates(copy, queries, min_similarity).await?;
                return Ok((Strategy::Memory, found));
            }
            // This search takes the SQL path; later ones the copy.
            self.copy_in_background(event.event_id);
        }
        let strategy = self.strategy(event);
        let part = checked_partition(&event.partition_name)?;
        let mut conn = self.conn().await?;
        let max_distance = 1.0 - min_similarity as f64;
        let candidates = match strategy {
            // (`strategy()` picks between the two SQL paths only.)
            Strategy::Exact | Strategy::Memory => {
                exact::candidates(&mut conn, part, queries, min_similarity, max_distance).await?
            }
            Strategy::Hnsw => {
                self.hnsw_candidates(&mut conn, part, event.dimension, queries, max_distance)
                    .await?
            }
        };
        Ok((strategy, candidates))
    }
}
