-- The installed signature bundle, shared by every node: one row per file of the bundle version
-- named by meta `db.bundle_version` (set in the same transaction, which NOTIFYs 'meta').
CREATE TABLE bundle_files (
    version BIGINT NOT NULL,
    name    TEXT NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (version, name)
);
