-- Chats: a lowercased copy of the title for case-insensitive search,
-- written by the store with Go's strings.ToLower (the same on both dialects).
ALTER TABLE chats ADD COLUMN title_lower TEXT NOT NULL DEFAULT '';
UPDATE chats SET title_lower = lower(title);
CREATE INDEX chats_title_lower ON chats(title_lower);
CREATE INDEX chat_periods_user ON chat_periods(user_id, chat_id);
