DROP TABLE faces.suppressions;
