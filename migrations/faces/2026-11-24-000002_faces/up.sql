-- The search service's face store. Only the search service touches it.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS faces;

CREATE TABLE faces.faces (
    id          bigserial PRIMARY KEY,
    studio_id   uuid NOT NULL,
    event_id    uuid NOT NULL,
    photo_id    uuid NOT NULL,
    face_index  integer NOT NULL,
    -- model pack that made the embedding; searches never mix packs
    model       text NOT NULL,
    embedding   vector(512) NOT NULL,
    bbox        real[] NOT NULL,
    landmarks   real[] NOT NULL,
    det_score   real NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (photo_id, model, face_index)
);
-- Searches are always inside one event: the planner narrows to the event's
-- rows and scans them exactly (see docs/ARCHITECTURE.md; issue #4 adds ANN
-- indexes for very large events).
CREATE INDEX faces_event_model ON faces.faces (event_id, model);
CREATE INDEX faces_photo ON faces.faces (photo_id);
