#!/usr/bin/python3
"""A real Jabber client for the end-to-end test: logs in with slixmpp over
STARTTLS + SCRAM, sends one message to a web user, waits for the answer
and prints what it got as JSON lines on stdout."""
import asyncio, json, logging, ssl, sys

import slixmpp

jid, password, peer, text, host, port = sys.argv[1:7]


class Peer(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", lambda _: self.report({"event": "failed_auth"}, True))

    def report(self, obj, done=False):
        print(json.dumps(obj, ensure_ascii=False), flush=True)
        if done:
            self.disconnect()

    async def start(self, _):
        self.send_presence()
        await self.get_roster()
        self.report({"event": "ready", "mech": self.features and "sasl"})
        # Wait until the test tells us to send (a line on stdin).
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        self.send_message(mto=peer, mbody=text, mtype="chat")
        self.report({"event": "sent"})

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            self.report({"event": "message", "from": str(msg["from"].bare), "body": msg["body"]}, True)


logging.basicConfig(level=logging.ERROR)
xmpp = Peer()
xmpp.register_plugin("xep_0030")
xmpp.connect((host, int(port)), force_starttls=True)
xmpp.process(forever=False)
