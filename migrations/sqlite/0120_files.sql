-- The file store (package xmppcore/upload): every stored file, whatever the
-- door it came through (XEP-0363 slot, REST, the web client). token is the
-- capability secret of its public URL /upload/{token}/{name}.
CREATE TABLE files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token        TEXT NOT NULL UNIQUE,
    user_id      BIGINT NOT NULL,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    thumb        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL
);
CREATE INDEX files_user ON files(user_id);

-- Which archived messages carry which files: whoever may read one of those
-- messages (the archive's access rule) may download the file.
CREATE TABLE message_files (
    message_id BIGINT NOT NULL,
    file_id    BIGINT NOT NULL,
    PRIMARY KEY (message_id, file_id)
);
CREATE INDEX message_files_file ON message_files(file_id, message_id);

-- Files uploaded through XEP-0363 slots before the file store keep their URLs.
INSERT INTO files (token, user_id, name, size, content_type, sha256, thumb, created_at)
SELECT token, user_id, filename, size, content_type, '', FALSE, uploaded_at FROM uploads WHERE uploaded_at IS NOT NULL;
