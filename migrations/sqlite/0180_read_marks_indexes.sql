-- Read state (xmppcore/mam/read.go): "seen by" reads a chat's marks at
-- or past a message; the conversation list reads how far colleagues have
-- read their conversations with a user.
CREATE INDEX read_marks_chat ON read_marks(chat_id, last_id);
CREATE INDEX read_marks_peer ON read_marks(peer_id, chat_id);
