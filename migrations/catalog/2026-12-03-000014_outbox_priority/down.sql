ALTER TABLE catalog.outbox DROP COLUMN priority;
