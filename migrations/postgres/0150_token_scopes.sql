-- REST tokens: scopes (comma-separated; tokens made before scopes existed
-- keep every right), an optional user the token may act as only, the last
-- use (recorded at most once a minute) and revocation (the row stays for
-- the list).
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_tokens ADD COLUMN as_user BIGINT REFERENCES users(id);
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
