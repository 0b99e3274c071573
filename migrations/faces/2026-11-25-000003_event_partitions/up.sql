-- Face store v2: one list partition per event; full-precision embeddings
-- with a half-precision copy that searches scan.
--
-- Why (measurements in docs/face-store.md):
--  * vector(512) is 2 KiB, which pushes it out to TOAST: an exact scan that
--    reads it is ~10x slower than one over halfvec(512), which is 1 KiB and
--    stays inline in the heap row. So searches scan `embedding_half` (a
--    generated column) with a threshold loosened by the largest error
--    half precision can make (HALF_MARGIN in services/search/src/store.rs)
--    and re-score the few candidates on the float32 `embedding`: results
--    equal a float32 brute-force search, at halfvec speed.
--  * A guest's search is always inside one event. With the event's faces in
--    their own partition, an exact search is a sequential scan of exactly
--    those rows (no index, no filter, no scattered heap pages), deleting an
--    event drops a table, and a large event gets an HNSW index of its own,
--    so no filtering ever happens after an approximate index scan.
--  * Partitions are created with CREATE TABLE + ATTACH PARTITION, which
--    takes only SHARE UPDATE EXCLUSIVE on the parent, and removed with
--    DETACH PARTITION CONCURRENTLY, so searches of other events never wait.
CREATE TABLE faces.events (
    event_id        uuid PRIMARY KEY,
    studio_id       uuid NOT NULL,
    -- model pack (name@version) of every face in the event
    model           text NOT NULL,
    -- the event's partition of faces.event_faces
    partition_name  text NOT NULL UNIQUE,
    -- maintained by every write, read to choose the search strategy
    face_count      bigint NOT NULL DEFAULT 0,
    -- 'none' | 'building' | 'ready': the event's HNSW index
    ann_index       text NOT NULL DEFAULT 'none'
                    CHECK (ann_index IN ('none', 'building', 'ready')),
    -- bumped by every write: the search service's in-memory copies of an
    -- event are used only at the version they were loaded at
    version         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_studio ON faces.events (studio_id);

-- Photos the store has heard of, for event statistics.
CREATE TABLE faces.photos (
    event_id    uuid NOT NULL REFERENCES faces.events (event_id) ON DELETE CASCADE,
    photo_id    uuid NOT NULL,
    studio_id   uuid NOT NULL,
    state       text NOT NULL CHECK (state IN ('indexed', 'failed')),
    face_count  integer NOT NULL DEFAULT 0,
    error       text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, photo_id)
);
CREATE INDEX photos_photo ON faces.photos (photo_id);

CREATE TABLE faces.event_faces (
    event_id    uuid NOT NULL,
    photo_id    uuid NOT NULL,
    face_index  integer NOT NULL,
    studio_id   uuid NOT NULL,
    model       text NOT NULL,
    -- L2-normalised, as the embedder returned it (TOASTed: read only to
    -- re-score candidates)
    embedding   vector(512) NOT NULL,
    -- what scans and HNSW indexes read (inline in the heap row)
    embedding_half halfvec(512) GENERATED ALWAYS AS (embedding::halfvec(512)) STORED,
    bbox        real[] NOT NULL,
    landmarks   real[] NOT NULL,
    det_score   real NOT NULL,
    quality     real NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, photo_id, face_index)
) PARTITION BY LIST (event_id);
ALTER TABLE faces.event_faces ALTER COLUMN embedding_half SET STORAGE MAIN;

-- Carry over the faces stored by v1 (one partition per event).
DO $$
DECLARE
    ev record;
    part text;
BEGIN
    FOR ev IN SELECT event_id, min(studio_id::text)::uuid AS studio_id, min(model) AS model, count(*) AS n
              FROM faces.faces GROUP BY event_id LOOP
        part := 'ev_' || replace(ev.event_id::text, '-', '');
        EXECUTE format('CREATE TABLE faces.%I (LIKE faces.event_faces INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE)', part);
        EXECUTE format('ALTER TABLE faces.event_faces ATTACH PARTITION faces.%I FOR VALUES IN (%L)', part, ev.event_id);
        INSERT INTO faces.events (event_id, studio_id, model, partition_name, face_count)
        VALUES (ev.event_id, ev.studio_id, ev.model, part, ev.n);
        INSERT INTO faces.photos (event_id, photo_id, studio_id, state, face_count)
        SELECT event_id, photo_id, min(studio_id::text)::uuid, 'indexed', count(*)
        FROM faces.faces WHERE event_id = ev.event_id GROUP BY event_id, photo_id;
    END LOOP;
    INSERT INTO faces.event_faces (event_id, photo_id, face_index, studio_id, model, embedding,
                                   bbox, landmarks, det_score, created_at)
    SELECT event_id, photo_id, face_index, studio_id, model, embedding,
           bbox, landmarks, det_score, created_at
    FROM faces.faces;
END $$;

DROP TABLE faces.faces;
