DROP INDEX catalog.events_retention;
ALTER TABLE catalog.events DROP COLUMN retain_until;
DROP TABLE catalog.audit_log;
DROP TABLE catalog.consents;
