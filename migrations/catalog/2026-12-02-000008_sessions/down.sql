DROP TABLE catalog.sessions;
