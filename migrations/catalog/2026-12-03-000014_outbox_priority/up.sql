-- The AMQP priority a photo.uploaded message is published with: live
-- uploads (2) are indexed before a bulk import's waiting photos (0)
-- (docs/ARCHITECTURE.md, "Live before bulk"). Rows written before this
-- column are bulk, as their messages would have been.
ALTER TABLE catalog.outbox ADD COLUMN priority smallint NOT NULL DEFAULT 0
    CHECK (priority BETWEEN 0 AND 9);
