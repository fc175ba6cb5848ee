-- The web client's sessions and one-time login links (bridge). Only a
-- SHA-256 of each secret is stored; the cookie or link carries the secret.
CREATE TABLE web_sessions (
    hash        TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);

CREATE TABLE login_tokens (
    hash        TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    expires_at  BIGINT NOT NULL
);

-- How far each user has read each conversation: peer_id for a personal
-- conversation, chat_id for a chat (the other one is 0).
CREATE TABLE read_marks (
    user_id  BIGINT NOT NULL,
    peer_id  BIGINT NOT NULL DEFAULT 0,
    chat_id  BIGINT NOT NULL DEFAULT 0,
    last_id  BIGINT NOT NULL,
    PRIMARY KEY (user_id, peer_id, chat_id)
);
