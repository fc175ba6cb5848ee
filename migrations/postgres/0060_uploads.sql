-- HTTP file upload (XEP-0363) slots.
CREATE TABLE uploads (
    token         TEXT PRIMARY KEY,
    user_id       BIGINT NOT NULL,
    filename      TEXT NOT NULL,
    size          BIGINT NOT NULL,
    content_type  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    uploaded_at   BIGINT
);
CREATE INDEX uploads_created ON uploads(created_at);
