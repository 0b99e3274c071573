-- Face store v3: each event keeps its model pack's embeddings at their own
-- dimension (512 for buffalo_l, 128 or 192 for many free recognisers).
--
--  * `embedding` and `embedding_half` lose their fixed 512: one partition
--    holds one event, and one event one model pack (faces.events.model), so
--    every row of a partition has the same dimension, which
--    faces.events.dimension records (0 until the event's first face).
--  * An HNSW index needs a fixed dimension: each partition's index is on
--    the expression `embedding_half::halfvec(D)` with its event's D, and
--    searches order by the same expression (services/search/src/store).
--  * Searches and writes check a vector's dimension against the event's
--    before any SQL compares them, so mixing packs is a clear error.
-- Dropping `embedding_half` drops the partitions' HNSW indexes with it: they
-- are rebuilt on the new expression (ann_index back to 'none').
ALTER TABLE faces.events ADD COLUMN dimension integer NOT NULL DEFAULT 0
    CHECK (dimension >= 0);
UPDATE faces.events SET dimension = 512 WHERE model <> '' OR face_count > 0;
UPDATE faces.events SET ann_index = 'none';

ALTER TABLE faces.event_faces DROP COLUMN embedding_half;
ALTER TABLE faces.event_faces ALTER COLUMN embedding TYPE vector;
ALTER TABLE faces.event_faces
    ADD COLUMN embedding_half halfvec GENERATED ALWAYS AS (embedding::halfvec) STORED;
ALTER TABLE faces.event_faces ALTER COLUMN embedding_half SET STORAGE MAIN;
