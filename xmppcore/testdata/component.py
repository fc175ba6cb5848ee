#!/usr/bin/python3
"""XEP-0114 with slixmpp's ComponentXMPP (run by component_test.go).

Usage: component.py HOST C2S_PORT COMPONENT_PORT DOMAIN PASSWORD COMPONENT SECRET
The component connects and shakes hands; alice finds it in the server's
disco#items, sends it a message, and it answers from echo@COMPONENT; it
asks alice's client for its version (an IQ to a full JID) and gets the
answer. Prints "OK" and exits 0, or the failure and 1.
"""
import asyncio
import logging
import ssl
import sys

import slixmpp
from slixmpp.componentxmpp import ComponentXMPP

HOST, C2S, CPORT, DOMAIN, PASSWORD, COMP, SECRET = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
logging.basicConfig(level=logging.CRITICAL)


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


class Bot(ComponentXMPP):
    def __init__(self):
        super().__init__(COMP, SECRET, HOST, CPORT)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0092")
        self.ready = asyncio.Event()
        self.got = asyncio.Queue()
        self.add_event_handler("session_start", lambda _: self.ready.set())
        self.add_event_handler("message", self.on_message)

    def on_message(self, msg):
        self.got.put_nowait(msg)
        if msg["type"] in ("chat", "normal"):
            self.send_message(mto=msg["from"], mfrom=f"echo@{COMP}", mbody="echo: " + msg["body"], mtype="chat")


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0092")
        self.ready = asyncio.Event()
        self.got = asyncio.Queue()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", lambda m: self.got.put_nowait(m))

    async def on_start(self, _):
        self.send_presence()
        self.ready.set()


async def main():
    bot = Bot()
    bot.connect()
    try:
        await asyncio.wait_for(bot.ready.wait(), 15)
    except asyncio.TimeoutError:
        fail("component handshake: timeout")
    alice = Client("alice")
    alice.connect((HOST, C2S))
    try:
        await asyncio.wait_for(alice.ready.wait(), 15)
    except asyncio.TimeoutError:
        fail("login alice: timeout")

    items = await alice["xep_0030"].get_items(jid=DOMAIN, timeout=10)
    jids = [i[0] for i in items["disco_items"]["items"]]
    if COMP not in jids:
        fail(f"{COMP} not in the server's disco#items: {jids}")

    alice.send_message(mto=f"echo@{COMP}", mbody="ping", mtype="chat")
    m = await asyncio.wait_for(bot.got.get(), 10)
    if m["body"] != "ping" or m["from"].bare != f"alice@{DOMAIN}":
        fail(f"component got {m}")
    r = await asyncio.wait_for(alice.got.get(), 10)
    if r["body"] != "echo: ping" or str(r["from"]) != f"echo@{COMP}":
        fail(f"alice got {r}")

    v = await bot["xep_0092"].get_version(alice.boundjid.full, ifrom=COMP, timeout=10)
    if not v["software_version"]["name"]:
        fail(f"version: {v}")

    alice.disconnect()
    bot.disconnect()
    print("OK", flush=True)


asyncio.run(main())
