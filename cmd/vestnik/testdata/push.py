#!/usr/bin/python3
"""XEP-0357 push through a XEP-0114 app server, with slixmpp (run by
push_test.go against `vestnik serve --components … --component …`).

Usage: push.py HOST C2S_PORT COMPONENT_PORT DOMAIN PASSWORD COMPONENT SECRET
The app server is slixmpp's ComponentXMPP. bob finds urn:xmpp:push:0 on
his account, enables push at the component (node and a publish-options
secret, as Conversations does) and disconnects; alice writes to him; the
component receives the publish from bob's bare JID with the summary form
and the secret, and answers it. Prints "OK" and exits 0, or the failure
and 1.
"""
import asyncio
import logging
import ssl
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.componentxmpp import ComponentXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

HOST, C2S, CPORT, DOMAIN, PASSWORD, COMP, SECRET = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
PUSH = "urn:xmpp:push:0"
PUBSUB = "http://jabber.org/protocol/pubsub"
DATA = "jabber:x:data"
logging.basicConfig(level=logging.CRITICAL)


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


class AppServer(ComponentXMPP):
    def __init__(self):
        super().__init__(COMP, SECRET, HOST, CPORT)
        self.ready = asyncio.Event()
        self.publishes = asyncio.Queue()
        self.add_event_handler("session_start", lambda _: self.ready.set())
        self.register_handler(Callback("push publish", MatchXPath(f"{{{self.default_ns}}}iq/{{{PUBSUB}}}pubsub"), self.on_publish))

    def on_publish(self, iq):
        self.publishes.put_nowait(iq)
        iq.reply().send()


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/phone", PASSWORD)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0030")
        self.ready = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)

    async def on_start(self, _):
        self.send_presence()
        self.ready.set()


async def login(user):
    c = Client(user)
    c.connect((HOST, C2S))
    try:
        await asyncio.wait_for(c.ready.wait(), 15)
    except asyncio.TimeoutError:
        fail(f"login {user}: timeout")
    return c


def fields(x):
    return {f.get("var"): [v.text for v in f.findall(f"{{{DATA}}}value")] for f in x.findall(f"{{{DATA}}}field")}


async def main():
    app = AppServer()
    app.connect()
    try:
        await asyncio.wait_for(app.ready.wait(), 15)
    except asyncio.TimeoutError:
        fail("component handshake: timeout")

    bob = await login("bob")
    info = await bob["xep_0030"].get_info(jid=f"bob@{DOMAIN}", timeout=10)
    if PUSH not in info["disco_info"]["features"]:
        fail(f"{PUSH} not on bob's account: {info['disco_info']['features']}")
    iq = bob.make_iq_set()
    enable = ET.fromstring(
        f"<enable xmlns='{PUSH}' jid='{COMP}' node='device-1'>"
        f"<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
        f"<field var='secret'><value>tok-123</value></field></x></enable>")
    iq.append(enable)
    await iq.send(timeout=10)
    bob.disconnect()
    await asyncio.sleep(0.5)

    alice = await login("alice")
    alice.send_message(mto=f"bob@{DOMAIN}", mbody="are you there?", mtype="chat")
    try:
        got = await asyncio.wait_for(app.publishes.get(), 10)
    except asyncio.TimeoutError:
        fail("no publish reached the app server")
    if got["from"].full != f"bob@{DOMAIN}" or got["type"] != "set":
        fail(f"publish from {got['from']} type {got['type']}")
    ps = got.xml.find(f"{{{PUBSUB}}}pubsub")
    pub = ps.find(f"{{{PUBSUB}}}publish")
    if pub is None or pub.get("node") != "device-1":
        fail(f"publish node: {ET.tostring(ps)}")
    x = pub.find(f"{{{PUBSUB}}}item/{{{PUSH}}}notification/{{{DATA}}}x")
    summary = fields(x) if x is not None else {}
    if summary.get("FORM_TYPE") != ["urn:xmpp:push:summary"] or summary.get("message-count") != ["1"] \
            or summary.get("last-message-sender") != [f"alice@{DOMAIN}"] or "last-message-body" in summary:
        fail(f"summary: {summary}")
    opts = ps.find(f"{{{PUBSUB}}}publish-options/{{{DATA}}}x")
    if opts is None or fields(opts).get("secret") != ["tok-123"]:
        fail(f"publish-options: {ET.tostring(ps)}")

    alice.disconnect()
    app.disconnect()
    print("OK", flush=True)


asyncio.run(main())
