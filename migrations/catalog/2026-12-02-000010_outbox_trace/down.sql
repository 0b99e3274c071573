ALTER TABLE catalog.outbox DROP COLUMN trace_context;
