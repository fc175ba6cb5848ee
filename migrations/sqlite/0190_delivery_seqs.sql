-- Delivery sequences (issue 13). Every personal message gets its
-- recipient's next sequence number (messages.to_seq) in the transaction
-- that archives it; deliveries.top_seq is the recipient's counter. The
-- delivery mark becomes the last contiguous sequence the user's clients
-- confirmed (mark_seq) with the archive id of that message (last_id, as
-- before: offline delivery reads the archive above it).
ALTER TABLE messages ADD COLUMN to_seq BIGINT;
ALTER TABLE deliveries ADD COLUMN mark_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN top_seq BIGINT NOT NULL DEFAULT 0;

UPDATE messages SET to_seq = x.n
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY to_id ORDER BY id) AS n
      FROM messages WHERE kind = 'chat' AND to_id IS NOT NULL) AS x
WHERE messages.id = x.id;

INSERT INTO deliveries (user_id, last_id)
SELECT DISTINCT to_id, 0 FROM messages
WHERE kind = 'chat' AND to_id IS NOT NULL
  AND to_id NOT IN (SELECT user_id FROM deliveries);

UPDATE deliveries SET
    top_seq = COALESCE((SELECT MAX(m.to_seq) FROM messages m
                        WHERE m.to_id = deliveries.user_id AND m.kind = 'chat'), 0),
    mark_seq = COALESCE((SELECT MAX(m.to_seq) FROM messages m
                         WHERE m.to_id = deliveries.user_id AND m.kind = 'chat'
                           AND m.id <= deliveries.last_id), 0);
