-- The trace an upload started, carried from its outbox row into the
-- photo.uploaded message (docs/operations.md, "Traces").
ALTER TABLE catalog.outbox ADD COLUMN trace_context text;
