-- The cluster routes over NATS (each node embeds a NATS server): the session
-- registry and the spool that LISTEN/NOTIFY needed are gone. A node records
-- the address other nodes reach its NATS routes at; the route credential
-- every node shares is made by the first node and kept here.
DROP TABLE cluster_spool;
DROP TABLE cluster_sessions;
ALTER TABLE nodes ADD COLUMN route TEXT NOT NULL DEFAULT '';

CREATE TABLE cluster_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret TEXT NOT NULL
);
