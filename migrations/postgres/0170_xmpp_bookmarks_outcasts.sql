-- Bookmarks as XMPP clients published them (XEP-0402 <conference/>, or a
-- XEP-0048 one converted), per user and room address: nick, password,
-- autojoin='false' and <extensions/> are served back unchanged.
-- Membership stays the truth for this server's rooms.
CREATE TABLE xmpp_bookmarks (
    user_id    BIGINT NOT NULL,
    room       TEXT NOT NULL,
    conference TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, room)
);

-- Users banned from a chat (MUC affiliation outcast): not members, may
-- not join or be added back until the ban is lifted.
CREATE TABLE chat_outcasts (
    chat_id    BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    actor_id   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);
