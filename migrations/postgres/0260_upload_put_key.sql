-- XEP-0363 slots: the PUT needs "Authorization: Bearer <put_key>" besides the
-- URL, which becomes the file's shared download link; '' (slots granted
-- before this migration): the URL alone.
ALTER TABLE uploads ADD COLUMN put_key TEXT NOT NULL DEFAULT '';
