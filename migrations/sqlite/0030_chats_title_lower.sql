-- Chats: a lowercased copy of the title for case-insensitive search.
-- SQLite's lower() folds ASCII only, so the store writes this column with
-- Go's strings.ToLower (Cyrillic included); the backfill below covers rows
-- written before this migration.
ALTER TABLE chats ADD COLUMN title_lower TEXT NOT NULL DEFAULT '';
UPDATE chats SET title_lower = lower(title);
CREATE INDEX chats_title_lower ON chats(title_lower);
CREATE INDEX chat_periods_user ON chat_periods(user_id, chat_id);
