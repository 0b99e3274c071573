-- Recreates the v1 table from the partitions (quality and the photo
-- records, which v1 did not have, are lost).
CREATE TABLE faces.faces (
    id          bigserial PRIMARY KEY,
    studio_id   uuid NOT NULL,
    event_id    uuid NOT NULL,
    photo_id    uuid NOT NULL,
    face_index  integer NOT NULL,
    model       text NOT NULL,
    embedding   vector(512) NOT NULL,
    bbox        real[] NOT NULL,
    landmarks   real[] NOT NULL,
    det_score   real NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (photo_id, model, face_index)
);
CREATE INDEX faces_event_model ON faces.faces (event_id, model);
CREATE INDEX faces_photo ON faces.faces (photo_id);
INSERT INTO faces.faces (studio_id, event_id, photo_id, face_index, model, embedding, bbox, landmarks, det_score, created_at)
SELECT studio_id, event_id, photo_id, face_index, model, embedding, bbox, landmarks, det_score, created_at
FROM faces.event_faces;
DROP TABLE faces.event_faces;
DROP TABLE faces.photos;
DROP TABLE faces.events;
