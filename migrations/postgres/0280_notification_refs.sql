-- A notification about a chat message (a mention) names the chat and the
-- message, so clients open it without matching text.
ALTER TABLE notifications ADD COLUMN chat_id BIGINT;
ALTER TABLE notifications ADD COLUMN message_id BIGINT;
