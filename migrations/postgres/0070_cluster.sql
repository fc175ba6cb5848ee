-- Cluster mode (several vestnik nodes on one PostgreSQL): live nodes with a
-- heartbeat, the sessions each node holds, and a spool for stanzas too large
-- for a NOTIFY payload. Times are unix microseconds of the database clock.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE cluster_sessions (
    user_id    BIGINT NOT NULL,
    resource   TEXT NOT NULL,
    node_id    TEXT NOT NULL,
    priority   INTEGER NOT NULL DEFAULT 0,
    available  BOOLEAN NOT NULL DEFAULT FALSE,
    presence   TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, resource)
);
CREATE INDEX cluster_sessions_node ON cluster_sessions (node_id);

CREATE TABLE cluster_spool (
    id         BIGSERIAL PRIMARY KEY,
    node_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    payload    TEXT NOT NULL
);
CREATE INDEX cluster_spool_node ON cluster_spool (node_id, id);
