#!/usr/bin/python3
"""XEP-0198 resumption with slixmpp against a running Vestnik (run by
resume_test.go).

Usage: resume.py HOST PORT DOMAIN PASSWORD
bob logs in with stream management (resumable), prints "READY" once it
is enabled, "GOT <body> <stanza-id>" for every chat message, "CUT" when
the connection drops (then connects again, which resumes the session)
and "RESUMED" when the server resumed it. Runs until killed.
"""
import asyncio
import logging
import ssl
import sys

import slixmpp

HOST, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
logging.basicConfig(level=logging.CRITICAL)


def say(*words):
    print(*words, flush=True)


class Bob(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(f"bob@{DOMAIN}/phone", PASSWORD, sasl_mech="SCRAM-SHA-256")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0198")
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("sm_enabled", lambda _: say("READY"))
        self.add_event_handler("session_resumed", lambda _: say("RESUMED"))
        self.add_event_handler("disconnected", self.on_cut)
        self.add_event_handler("message", self.on_message)

    def on_start(self, _):
        self.send_presence()

    def on_cut(self, _):
        say("CUT")
        self.loop.call_later(0.3, lambda: self.connect((HOST, PORT)))

    def on_message(self, msg):
        if msg["type"] == "chat" and msg["body"]:
            sid = msg.xml.find("{urn:xmpp:sid:0}stanza-id")
            say("GOT", msg["body"], sid.get("id") if sid is not None else "-")


bob = Bob()
bob.connect((HOST, PORT))
bob.loop.run_forever()
