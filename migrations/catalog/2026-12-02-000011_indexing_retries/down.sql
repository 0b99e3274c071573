UPDATE catalog.photos SET status = 'pending' WHERE status = 'retrying';
ALTER TABLE catalog.photos
    DROP COLUMN last_error_code,
    DROP COLUMN last_error_reason,
    DROP COLUMN attempts,
    DROP COLUMN next_attempt_at,
    DROP COLUMN retry_until,
    DROP COLUMN redrives;
ALTER TABLE catalog.photos DROP CONSTRAINT photos_status_check;
ALTER TABLE catalog.photos ADD CONSTRAINT photos_status_check
    CHECK (status IN ('pending', 'indexed', 'failed'));
