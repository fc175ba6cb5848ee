-- Publish-subscribe (XEP-0060) nodes: PEP nodes on users' bare JIDs
-- (service = the bare JID) and nodes of the pubsub.<domain> service
-- (service = that domain). config is the node configuration as JSON.
CREATE TABLE pubsub_nodes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service     TEXT NOT NULL,
    node        TEXT NOT NULL,
    config      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (service, node)
);

-- Items: seq orders publications within a node (oldest first).
CREATE TABLE pubsub_items (
    node_id     BIGINT NOT NULL REFERENCES pubsub_nodes(id),
    item_id     TEXT NOT NULL,
    publisher   TEXT NOT NULL,
    payload     TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (node_id, item_id)
);
CREATE INDEX pubsub_items_seq ON pubsub_items (node_id, seq);

CREATE TABLE pubsub_subscriptions (
    node_id     BIGINT NOT NULL REFERENCES pubsub_nodes(id),
    jid         TEXT NOT NULL,
    subid       TEXT NOT NULL,
    PRIMARY KEY (node_id, jid)
);

CREATE TABLE pubsub_affiliations (
    node_id     BIGINT NOT NULL REFERENCES pubsub_nodes(id),
    jid         TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    PRIMARY KEY (node_id, jid)
);
