-- Widget sessions (/widget.js on a portal page of another origin): a web
-- session whose credential the widget keeps in the portal origin's storage
-- and presents in the WebSocket handshake. origin is the portal origin it
-- was issued to and the only one it works from; '' is a cookie session.
ALTER TABLE web_sessions ADD COLUMN origin TEXT NOT NULL DEFAULT '';
