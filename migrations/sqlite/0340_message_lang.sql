-- A message's language (xml:lang): the stanza's, else the sending stream's
-- default (RFC 6120 §4.7.4); NULL when no language is known (REST, web
-- client). Given back on the message in MAM, offline delivery and history.
ALTER TABLE messages ADD COLUMN lang TEXT;
