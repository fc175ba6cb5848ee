-- Edits, retractions, reactions and replies (owner: archive, xmppcore/mam).
-- Replies (XEP-0461): the archive id of the message a message answers.
ALTER TABLE messages ADD COLUMN reply_to BIGINT;

-- Reactions (XEP-0444): per message and user the set of reactions they
-- keep on it; a row per reaction. created_at orders the summary.
CREATE TABLE reactions (
    message_id  BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    reaction    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, reaction)
);
