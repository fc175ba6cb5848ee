-- Outgoing events (owner: hooks, xmppcore/webhook): receivers, their
-- durable delivery queue, bots, and notifications with actions.

-- A receiver: events is a space-separated list of event kinds; chat_id
-- narrows it to one chat; bot_id makes it a bot's (only chats the bot is
-- in and messages to it); format is json (signed JSON) or bitrix (form
-- fields as Bitrix24 posts its events).
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL,
    chat_id     BIGINT,
    bot_id      BIGINT REFERENCES users(id),
    format      TEXT NOT NULL DEFAULT 'json',
    created_at  BIGINT NOT NULL
);

-- The delivery queue: a row per event and receiver, deleted once the
-- receiver took it. chain orders deliveries (a chat, a pair of users):
-- only the oldest row of a chain is tried. next_at is when the row may be
-- tried next (a claim moves it past the attempt's timeout).
CREATE TABLE webhook_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  BIGINT NOT NULL,
    chain       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhook_queue_chain ON webhook_queue(webhook_id, chain, id);

-- Bots: accounts made by an integration (imbot.register, POST /bots);
-- HR imports leave them alone. commands: space-separated registered
-- commands (Bitrix24's imbot.command.register).
CREATE TABLE bots (
    user_id     BIGINT PRIMARY KEY REFERENCES users(id),
    code        TEXT NOT NULL UNIQUE,
    commands    TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

-- Notifications with a tag (a new one with the same tag replaces the
-- old), a sender, buttons (JSON [{"title","value"}]) and the answer.
ALTER TABLE notifications ADD COLUMN tag TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN sender_id BIGINT;
ALTER TABLE notifications ADD COLUMN buttons TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN answer TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN answered_at BIGINT;
CREATE INDEX notifications_tag ON notifications(user_id, tag);
