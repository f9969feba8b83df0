-- zerohour PostgreSQL schema, version 1: the same tables as SQLite's version 1.
-- Times are UNIX seconds (double precision) so both backends return identical floats.
CREATE TABLE messages (
    queue_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL DEFAULT 'mail',
    sender      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    state       TEXT NOT NULL,
    peer        TEXT NOT NULL DEFAULT '',
    helo        TEXT NOT NULL DEFAULT '',
    verdict     TEXT NOT NULL DEFAULT '',
    findings    TEXT NOT NULL DEFAULT '[]',
    db_version  TEXT NOT NULL DEFAULT '',
    summary     TEXT,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX messages_state ON messages(state, received_at);
CREATE INDEX messages_received ON messages(received_at);

CREATE TABLE recipients (
    queue_id   TEXT NOT NULL REFERENCES messages(queue_id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    address    TEXT NOT NULL,
    status     TEXT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (queue_id, idx)
);

CREATE TABLE events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_id TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL,
    state    TEXT NOT NULL,
    reason   TEXT NOT NULL,
    actor    TEXT NOT NULL
);
CREATE INDEX events_queue_id ON events(queue_id, id);

CREATE TABLE hold_tags (
    queue_id    TEXT NOT NULL REFERENCES messages(queue_id) ON DELETE CASCADE,
    outbreak_id TEXT NOT NULL,
    PRIMARY KEY (queue_id, outbreak_id)
);
CREATE INDEX hold_tags_outbreak ON hold_tags(outbreak_id);

CREATE TABLE delivery_queue (
    queue_id     TEXT PRIMARY KEY REFERENCES messages(queue_id) ON DELETE CASCADE,
    due          DOUBLE PRECISION NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    lease_owner  TEXT NOT NULL DEFAULT '',
    lease_expiry DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX delivery_queue_due ON delivery_queue(due);

CREATE TABLE outbreaks (
    outbreak_id TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    declared_at DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    ended_at    DOUBLE PRECISION,
    end_reason  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE provider_seq (
    provider TEXT PRIMARY KEY,
    seq      BIGINT NOT NULL
);

CREATE TABLE notice_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider  TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    transport TEXT NOT NULL,
    result    TEXT NOT NULL,
    at        DOUBLE PRECISION NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- message bodies for a cluster (store/bodies.py): written in the same transaction as the row
CREATE TABLE bodies (
    queue_id TEXT PRIMARY KEY,
    data     BYTEA NOT NULL
);
ALTER TABLE bodies ALTER COLUMN data SET STORAGE EXTERNAL;
