#!/usr/bin/python3
"""A Jabber client in a group chat for the end-to-end test: logs in with
slixmpp, joins the room (XEP-0045) and prints every groupchat message it
gets (body and XEP-0066 URL) as JSON lines on stdout until stdin closes."""
import asyncio, json, logging, ssl, sys

import slixmpp

jid, password, room, nick, host, port = sys.argv[1:7]


class Member(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("groupchat_message", self.on_message)
        self.add_event_handler("failed_auth", lambda _: self.report({"event": "failed_auth"}, True))

    def report(self, obj, done=False):
        print(json.dumps(obj, ensure_ascii=False), flush=True)
        if done:
            self.disconnect()

    async def start(self, _):
        self.send_presence()
        await self["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
        self.report({"event": "joined"})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        self.disconnect()

    def on_message(self, msg):
        if msg["body"]:
            self.report({"event": "message", "from": str(msg["from"]), "body": msg["body"], "oob": msg["oob"]["url"]})


logging.basicConfig(level=logging.ERROR)
xmpp = Member()
xmpp.register_plugin("xep_0030")
xmpp.register_plugin("xep_0045")
xmpp.register_plugin("xep_0066")
xmpp.connect((host, int(port)), force_starttls=True)
xmpp.process(forever=False)
