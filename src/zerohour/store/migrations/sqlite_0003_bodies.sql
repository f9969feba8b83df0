-- Message bodies of up to `store.bodies.INLINE_MAX` bytes (store/bodies.py `SqliteBodies`):
-- inserted by the same statement group as the message row, so body and row become durable with
-- one WAL fsync shared by the whole group commit. Larger bodies stay files in the spool folder.
CREATE TABLE bodies (
    queue_id TEXT PRIMARY KEY,
    data     BLOB NOT NULL
);
