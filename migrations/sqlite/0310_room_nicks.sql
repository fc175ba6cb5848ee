-- Reserved room nicknames (XEP-0045 §7.10 registration, or the owner's
-- muc#admin item with a nick): a member's nick in the chat's room, '' =
-- none; unique per chat. And whether joiners see the presence of absent
-- members with a reserved nick (muc#roomconfig_presencebroadcast "none").
ALTER TABLE chat_members ADD COLUMN nick TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX chat_members_nick ON chat_members(chat_id, nick) WHERE nick <> '';
ALTER TABLE chats ADD COLUMN show_offline INTEGER NOT NULL DEFAULT 0;
-- Who may see occupants' real JIDs (muc#roomconfig_whois): anyone, or
-- moderators (the owner) only.
ALTER TABLE chats ADD COLUMN whois TEXT NOT NULL DEFAULT 'anyone';
-- A moderated room (muc#roomconfig_moderatedroom): who enters without
-- being a member is a visitor until given voice or membership.
ALTER TABLE chats ADD COLUMN moderated INTEGER NOT NULL DEFAULT 0;
