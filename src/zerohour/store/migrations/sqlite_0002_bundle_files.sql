-- The installed signature bundle, shared by every process (and, in PostgreSQL, every node) on
-- this store: one row per file of the bundle version named by meta `db.bundle_version`.
CREATE TABLE bundle_files (
    version INTEGER NOT NULL,
    name    TEXT NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (version, name)
);
