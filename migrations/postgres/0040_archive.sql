-- Archive: full-text index and MAM preferences (owner: archive).
-- fts holds the stemmed terms of the body plus meta terms (0u<user>,
-- 0c<chat>) as a tsvector built by the store (no parser, no dictionary:
-- the terms are already stemmed), indexed with GIN.
ALTER TABLE messages ADD COLUMN fts tsvector;
CREATE INDEX messages_fts ON messages USING GIN (fts);

-- XEP-0313 preferences: default always/never/roster, and per-JID rules.
CREATE TABLE mam_prefs (
    user_id       BIGINT PRIMARY KEY,
    default_mode  TEXT NOT NULL DEFAULT 'always'
);
CREATE TABLE mam_prefs_jids (
    user_id  BIGINT NOT NULL,
    jid      TEXT NOT NULL,
    mode     TEXT NOT NULL,
    PRIMARY KEY (user_id, jid)
);
