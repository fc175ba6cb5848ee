-- Archive: full-text index and MAM preferences (owner: archive).
-- messages_fts holds, per message id (rowid), the stemmed terms of its body
-- plus meta terms (0u<user>, 0c<chat>); the store keeps it in sync on
-- append, edit, retract and retention.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    terms,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);

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
