-- Issue 11: user photos and a remembered status.
-- The HR import's optional photo URL ("" = none).
ALTER TABLE users ADD COLUMN photo_url TEXT NOT NULL DEFAULT '';

-- Users' photos as the server serves them (xmppcore/upload, photo.go):
-- source 'own' (uploaded by the user) or 'hr' (fetched from
-- users.photo_url; url names the URL it came from). image is a JPEG made
-- by the server; NULL records a failed fetch (tried again after a while).
CREATE TABLE user_photos (
    user_id    BIGINT NOT NULL,
    source     TEXT NOT NULL,
    url        TEXT NOT NULL DEFAULT '',
    image      BLOB,
    hash       TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, source)
);

-- The presence a user chose in the web client (online, away or dnd, and a
-- status text), given again to each new bridge session.
CREATE TABLE user_status (
    user_id    BIGINT PRIMARY KEY,
    show       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);
