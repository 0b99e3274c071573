//! Building the per-event HNSW indexes. An event that outgrows
//! `exact_max_faces` is listed by [`FaceStore::events_needing_index`] and
//! gets its own index on its own partition, built CONCURRENTLY (searches
//! and writes go on; the event is searched exactly until the index is
//! `ready`). An advisory lock keeps replicas from building the same index
//! twice. lib.rs runs the builds in the background; strategy.rs switches
//! the event to HNSW once the index is ready.

use diesel::prelude::*;
use diesel::sql_types::{Int8, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use facepass_core::Result;
use uuid::Uuid;

use super::registry::partition_name;
use super::{db_error, Count, FaceStore};

impl FaceStore {
    /// Builds the HNSW index of an event's partition (CONCURRENTLY: writes
    /// and searches go on meanwhile) and marks the event `ready`. Returns
    /// false when another builder holds the event.
    pub async fn build_ann_index(&self, event_id: Uuid) -> Result<bool> {
        let mut conn = self.conn().await?;
        let part = partition_name(event_id);
        let index = format!("{part}_hnsw");
        let locked = diesel::sql_query(
            "SELECT count(*) AS n FROM (SELECT 1 WHERE pg_try_advisory_lock(hashtextextended($1::text, 7332))) t",
        )
        .bind::<SqlUuid, _>(event_id)
        .get_result::<Count>(&mut conn)
        .await
        .map_err(db_error)?
        .n == 1;
        if !locked {
            return Ok(false);
        }
        let result: Result<()> = async {
            diesel::sql_query(
                "UPDATE faces.events SET ann_index = 'building' WHERE event_id = $1 AND ann_index <> 'ready'",
            )
            .bind::<SqlUuid, _>(event_id)
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
            // A build that died leaves an INVALID index behind.
            diesel::sql_query(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS faces.{index}"
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
            diesel::sql_query(format!(
                "SET maintenance_work_mem = '{}'",
                self.tuning.build_memory.replace('\'', "")
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
            // An HNSW index needs a fixed dimension; the column has none
            // (events of different packs differ), so the index is on the
            // cast to the event's (hnsw.rs orders by the same expression).
            let dimension = diesel::sql_query(
                "SELECT dimension::bigint AS n FROM faces.events WHERE event_id = $1",
            )
            .bind::<SqlUuid, _>(event_id)
            .get_result::<Count>(&mut conn)
            .await
            .map_err(db_error)?
            .n;
            if dimension <= 0 {
                return Err(facepass_core::Error::internal(format!(
                    "event {event_id} has faces but no recorded dimension"
                )));
            }
            diesel::sql_query(format!(
                "CREATE INDEX CONCURRENTLY {index} ON faces.{part} \
                 USING hnsw ((embedding_half::halfvec({dimension})) halfvec_cosine_ops) \
                 WITH (m = {}, ef_construction = {})",
                self.tuning.hnsw_m, self.tuning.hnsw_ef_construction
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
            diesel::sql_query("UPDATE faces.events SET ann_index = 'ready' WHERE event_id = $1")
                .bind::<SqlUuid, _>(event_id)
                .execute(&mut conn)
                .await
                .map_err(db_error)?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ =
                diesel::sql_query("UPDATE faces.events SET ann_index = 'none' WHERE event_id = $1")
                    .bind::<SqlUuid, _>(event_id)
                    .execute(&mut conn)
                    .await;
        }
        // The connection goes back to the pool: leave no session setting.
        let _ = diesel::sql_query("RESET maintenance_work_mem")
            .execute(&mut conn)
            .await;
        let _ = diesel::sql_query("SELECT pg_advisory_unlock(hashtextextended($1::text, 7332))")
            .bind::<SqlUuid, _>(event_id)
            .execute(&mut conn)
            .await;
        result.map(|_| true)
    }

    /// Events large enough for an HNSW index that do not have one yet.
    pub async fn events_needing_index(&self) -> Result<Vec<Uuid>> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            event_id: Uuid,
        }
        let mut conn = self.conn().await?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT event_id FROM faces.events WHERE face_count > $1 AND ann_index <> 'ready' \
             ORDER BY face_count DESC",
        )
        .bind::<Int8, _>(self.tuning.exact_max_faces)
        .load(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| r.event_id).collect())
    }
}
