-- RFC 6121 presence subscriptions beyond the generated roster: inbound
-- requests waiting for the user's answer (the whole <presence
-- type='subscribe'/> as received, XEP-0379 tokens included), keyed like
-- roster_items ("#<employee id>" or a bare JID).
CREATE TABLE roster_pending (
    user_id     BIGINT NOT NULL REFERENCES users(id),
    jid         TEXT NOT NULL,
    stanza      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, jid)
);

-- The roster version (XEP-0237) of each user: a counter raised by every
-- change of the user's own items and requests, and when the generated part
-- (digest gen_hash) is seen to differ.
CREATE TABLE roster_versions (
    user_id   BIGINT NOT NULL PRIMARY KEY REFERENCES users(id),
    version   BIGINT NOT NULL,
    gen_hash  TEXT NOT NULL DEFAULT ''
);
