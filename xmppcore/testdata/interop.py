#!/usr/bin/python3
"""Interop check of Vestnik's c2s with slixmpp (run by interop_test.go).

Usage: interop.py HOST PORT DOMAIN PASSWORD
Two users (alice, bob) log in over STARTTLS with SCRAM-SHA-256, check their
roster groups, exchange presence and messages both ways; then bob goes
offline, alice writes, and bob receives the message with a delay stamp
after logging in again, with the xml:lang alice's client gave it ('en',
slixmpp's default language, which it puts on its stanzas). Bob sets a vCard avatar (XEP-0153) and alice sees its
hash in his presence. Prints "OK" and exits 0, or prints the failure and
exits 1.
"""
import asyncio
import hashlib
import logging
import ssl
import sys

import slixmpp

HOST, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
logging.basicConfig(level=logging.CRITICAL)


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self, user, resource):
        super().__init__(f"{user}@{DOMAIN}/{resource}", PASSWORD, sasl_mech="SCRAM-SHA-256")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0203")  # delayed delivery
        self.register_plugin("xep_0313")  # message archive management
        self.register_plugin("xep_0153")  # vCard-based avatars
        self.photos = {}
        self.messages = asyncio.Queue()
        self.available = {}
        self.ready = asyncio.Event()
        self.auth_failed = False
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_available", self.on_presence)

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        self.ready.set()

    def on_failed(self, _):
        self.auth_failed = True

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            self.messages.put_nowait(msg)

    def on_presence(self, pres):
        self.available[pres["from"].bare] = pres["from"].full
        self.photos[pres["from"].bare] = pres["vcard_temp_update"]["photo"]


async def login(user, resource):
    c = Client(user, resource)
    c.connect((HOST, PORT))
    try:
        await asyncio.wait_for(c.ready.wait(), 15)
    except asyncio.TimeoutError:
        fail(f"login {user}: {'auth failed' if c.auth_failed else 'timeout'}")
    if not c.is_connected() or "starttls" not in c.features:
        fail(f"login {user}: not over STARTTLS")
    return c


async def wait_for(cond, what, timeout=10):
    for _ in range(int(timeout * 20)):
        if cond():
            return
        await asyncio.sleep(0.05)
    fail(f"timeout waiting for {what}")


async def next_message(c, body, what):
    try:
        while True:
            m = await asyncio.wait_for(c.messages.get(), 10)
            if m["body"] == body:
                return m
    except asyncio.TimeoutError:
        fail(f"no message: {what}")


async def main():
    alice = await login("alice", "slix")
    roster = alice.client_roster
    bob_jid = f"bob@{DOMAIN}"
    if bob_jid not in roster or "Sales" not in roster[bob_jid]["groups"]:
        fail(f"alice's roster lacks bob in group Sales: {dict((j, roster[j]['groups']) for j in roster)}")
    if roster[bob_jid]["subscription"] != "both":
        fail(f"subscription to bob is {roster[bob_jid]['subscription']}")

    bob = await login("bob", "slix")
    await wait_for(lambda: bob_jid in alice.available, "alice sees bob online")
    await wait_for(lambda: f"alice@{DOMAIN}" in bob.available, "bob sees alice online")

    alice.send_message(mto=bob_jid, mbody="привет, Боб", mtype="chat")
    await next_message(bob, "привет, Боб", "alice -> bob")
    bob.send_message(mto=f"alice@{DOMAIN}", mbody="hi <alice> & co", mtype="chat")
    await next_message(alice, "hi <alice> & co", "bob -> alice")

    bob.disconnect()
    await bob.disconnected
    await asyncio.sleep(0.3)
    alice.send_message(mto=bob_jid, mbody="while you were away", mtype="chat")
    await asyncio.sleep(0.5)
    bob = await login("bob", "slix2")
    m = await next_message(bob, "while you were away", "offline message")
    if not m["delay"]["stamp"]:
        fail("offline message without a delay stamp")
    if m["lang"] != "en":
        fail(f"offline message's xml:lang: {m['lang']!r}, want 'en' (as alice sent it)")

    # XEP-0313 §4.1.1: the search form, asked for with an empty get.
    form = await bob.plugin["xep_0313"].get_fields(timeout=10)
    fields = form.get_fields()
    if form["type"] != "form" or not {"FORM_TYPE", "with", "start", "end"} <= set(fields):
        fail(f"MAM form: {form}")
    if fields["FORM_TYPE"]["value"] not in ("urn:xmpp:mam:2", ["urn:xmpp:mam:2"]):
        fail(f"MAM form FORM_TYPE: {fields['FORM_TYPE']['value']}")
    # XEP-0153: the server puts the hash of bob's new vCard photo in his
    # presence (it sends it again when the photo changes).
    await wait_for(lambda: bob_jid in alice.available, "alice sees bob online again")
    if alice.photos.get(bob_jid):
        fail(f"hash of a user without a photo: {alice.photos.get(bob_jid)!r}")
    avatar = b"\x89PNG\r\n\x1a\nnot really a png"
    await bob.plugin["xep_0153"].set_avatar(avatar=avatar, mtype="image/png", timeout=10)
    want = hashlib.sha1(avatar).hexdigest()
    await wait_for(lambda: alice.photos.get(bob_jid) == want, f"bob's avatar hash {want} in presence")
    alice.disconnect()
    bob.disconnect()
    await asyncio.sleep(0.3)
    print("OK", flush=True)


asyncio.run(main())
