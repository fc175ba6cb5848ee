-- A room's password (XEP-0045 muc#roomconfig_roomsecret): who is not yet
-- a member of the chat must give it to join; '' = no password.
ALTER TABLE chats ADD COLUMN password TEXT NOT NULL DEFAULT '';
