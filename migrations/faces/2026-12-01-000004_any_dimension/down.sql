-- Back to 512 dimensions only: fails (and changes nothing) if an event holds
-- embeddings of another dimension. HNSW indexes are rebuilt on the column.
ALTER TABLE faces.event_faces DROP COLUMN embedding_half;
ALTER TABLE faces.event_faces ALTER COLUMN embedding TYPE vector(512);
ALTER TABLE faces.event_faces
    ADD COLUMN embedding_half halfvec(512) GENERATED ALWAYS AS (embedding::halfvec(512)) STORED;
ALTER TABLE faces.event_faces ALTER COLUMN embedding_half SET STORAGE MAIN;
UPDATE faces.events SET ann_index = 'none';
ALTER TABLE faces.events DROP COLUMN dimension;
