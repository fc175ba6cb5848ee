-- XEP-0357 push registrations: an account's app server (a JID, normally a
-- component) and node, with the publish-options form the client gave
-- (serialized <x/>, '' for none).
CREATE TABLE push_registrations (
    user_id    BIGINT NOT NULL REFERENCES users(id),
    jid        TEXT NOT NULL,
    node       TEXT NOT NULL,
    options    TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, jid, node)
);
