-- The full-text index is written behind the archive (xmppcore/mam/ftsindex.go):
-- indexed_through is the last message id whose terms are in messages_fts
-- (or that has none). Every message present now is indexed already.
CREATE TABLE fts_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through  BIGINT NOT NULL
);
INSERT INTO fts_state (id, indexed_through) VALUES (1, COALESCE((SELECT MAX(id) FROM messages), 0));
