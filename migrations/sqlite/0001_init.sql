-- Foundation schema: org structure, accounts, events, messages, chats.
-- Times are unix microseconds (BIGINT) on both dialects.

CREATE TABLE departments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ext_id     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    parent_id  BIGINT REFERENCES departments(id),
    head_id    BIGINT,
    active     BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ext_id      TEXT NOT NULL UNIQUE,
    login       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL DEFAULT '',
    title       TEXT NOT NULL DEFAULT '',
    manager_id  BIGINT,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX users_manager ON users(manager_id);

CREATE TABLE user_departments (
    user_id        BIGINT NOT NULL REFERENCES users(id),
    department_id  BIGINT NOT NULL REFERENCES departments(id),
    pos            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, department_id)
);
CREATE INDEX user_departments_dept ON user_departments(department_id, user_id);

CREATE TABLE credentials (
    user_id        BIGINT PRIMARY KEY REFERENCES users(id),
    salt           BLOB NOT NULL,
    iterations     INTEGER NOT NULL,
    sha1_stored    BLOB NOT NULL,
    sha1_server    BLOB NOT NULL,
    sha256_stored  BLOB NOT NULL,
    sha256_server  BLOB NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Change events written by HR sync, passwd and other writers; running
-- servers poll them (id > last seen) to push rosters and close sessions.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    user_id     BIGINT NOT NULL,
    contact_id  BIGINT,
    created_at  BIGINT NOT NULL
);

-- A user's own roster edits (RFC 6121) and overrides of generated items.
CREATE TABLE roster_items (
    user_id       BIGINT NOT NULL REFERENCES users(id),
    jid           TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    groups        TEXT NOT NULL DEFAULT '',
    subscription  TEXT NOT NULL DEFAULT 'none',
    ask           BOOLEAN NOT NULL DEFAULT FALSE,
    approved      BOOLEAN NOT NULL DEFAULT FALSE,
    hidden        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, jid)
);

-- Pairs who have exchanged a personal message (both directions stored).
CREATE TABLE personal_contacts (
    user_id     BIGINT NOT NULL,
    contact_id  BIGINT NOT NULL,
    PRIMARY KEY (user_id, contact_id)
);

CREATE TABLE chats (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    room         TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    color        TEXT NOT NULL,
    type         TEXT NOT NULL,
    owner_id     BIGINT NOT NULL,
    avatar       BLOB,
    avatar_type  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE chat_members (
    chat_id    BIGINT NOT NULL REFERENCES chats(id),
    user_id    BIGINT NOT NULL REFERENCES users(id),
    role       TEXT NOT NULL DEFAULT 'member',
    joined_at  BIGINT NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members(user_id, chat_id);

-- Membership windows: a member sees chat messages with
-- from_id <= id AND (to_id IS NULL OR id <= to_id).
CREATE TABLE chat_periods (
    chat_id  BIGINT NOT NULL,
    user_id  BIGINT NOT NULL,
    from_id  BIGINT NOT NULL,
    to_id    BIGINT,
    PRIMARY KEY (chat_id, user_id, from_id)
);

-- The archive: one monotonic id per server, also the MAM archive id.
CREATE TABLE messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at     BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    from_id        BIGINT,
    to_id          BIGINT,
    chat_id        BIGINT,
    pair_lo        BIGINT,
    pair_hi        BIGINT,
    from_resource  TEXT NOT NULL DEFAULT '',
    origin_id      TEXT NOT NULL DEFAULT '',
    body           TEXT NOT NULL DEFAULT '',
    payload        TEXT NOT NULL DEFAULT '',
    edited_at      BIGINT,
    deleted        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX messages_pair ON messages(pair_lo, pair_hi, id);
CREATE INDEX messages_from ON messages(from_id, id);
CREATE INDEX messages_to ON messages(to_id, id);
CREATE INDEX messages_chat ON messages(chat_id, id);
CREATE INDEX messages_created ON messages(created_at);

-- Offline delivery: the highest personal message id handed to the user.
CREATE TABLE deliveries (
    user_id  BIGINT PRIMARY KEY,
    last_id  BIGINT NOT NULL
);

CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    text        TEXT NOT NULL,
    link        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    read_at     BIGINT
);
CREATE INDEX notifications_user ON notifications(user_id, id);
