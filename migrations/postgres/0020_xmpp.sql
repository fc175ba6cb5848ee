-- XMPP server state: last activity (XEP-0012) and blocklists (XEP-0191).
CREATE TABLE xmpp_last_seen (
    user_id  BIGINT PRIMARY KEY,
    seen_at  BIGINT NOT NULL,
    status   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE xmpp_blocklist (
    user_id  BIGINT NOT NULL,
    jid      TEXT NOT NULL,
    PRIMARY KEY (user_id, jid)
);
