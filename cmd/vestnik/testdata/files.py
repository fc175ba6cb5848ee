#!/usr/bin/python3
"""Files with slixmpp against a running Vestnik (run by files_test.go).

Usage: files.py HOST PORT DOMAIN PASSWORD FILE MAXSIZE
alice finds the upload service and its size limit in the disco form
(XEP-0363), is refused a slot over the limit, uploads FILE through a slot
and sends its URL to bob with an out-of-band element (XEP-0066), as
Conversations and Dino do; bob gets body and OOB URL and downloads the
same bytes. Prints "SLIX_URL <url>", then waits for a message to alice
from bob carrying a file (the test posts it over REST), downloads it over
its OOB URL and prints "REST_SHA <sha256>", then "OK".
"""
import asyncio
import hashlib
import io
import logging
import ssl
import sys

import aiohttp
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0363.http_upload import FileTooBig

HOST, PORT, DOMAIN, PASSWORD, FILE, MAXSIZE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
logging.basicConfig(level=logging.CRITICAL)


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/files", PASSWORD, sasl_mech="SCRAM-SHA-256")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in ("xep_0030", "xep_0066", "xep_0363"):
            self.register_plugin(p)
        self.messages = asyncio.Queue()
        self.ready = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        self.ready.set()

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            self.messages.put_nowait(msg)


async def login(user):
    c = Client(user)
    c.connect((HOST, PORT))
    try:
        await asyncio.wait_for(c.ready.wait(), 15)
    except asyncio.TimeoutError:
        fail(f"login {user}: timeout")
    return c


async def next_message(c, what):
    try:
        return await asyncio.wait_for(c.messages.get(), 20)
    except asyncio.TimeoutError:
        fail(f"no message: {what}")


async def fetch(url):
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            if r.status != 200:
                fail(f"GET {url}: {r.status}")
            return await r.read()


async def main():
    with open(FILE, "rb") as f:
        data = f.read()
    alice = await login("alice")
    bob = await login("bob")
    up = alice["xep_0363"]

    # Service discovery as the plugin does it (its own helper trips over
    # asyncio.wait on Python 3.11): the domain's items, the one that is a
    # file store with the upload feature, and max-file-size from its form.
    items = await alice["xep_0030"].get_items(jid=DOMAIN, timeout=10)
    for item in items["disco_items"]["items"]:
        info = await alice["xep_0030"].get_info(jid=item[0], timeout=10)
        if ("store", "file") in [(i[0], i[1]) for i in info["disco_info"]["identities"]] and \
                "urn:xmpp:http:upload:0" in info["disco_info"]["features"]:
            up.upload_service = info["from"]
            for form in info["disco_info"].iterables:
                values = form["values"]
                if values["FORM_TYPE"] == ["urn:xmpp:http:upload:0"]:
                    up.max_file_size = int(values["max-file-size"])
    if up.upload_service is None:
        fail(f"no upload service among {items['disco_items']['items']}")

    # Over the limit: refused by the client from the disco form's
    # max-file-size, and by the server when asked anyway.
    try:
        await up.upload_file("big.bin", size=MAXSIZE + 1, input_file=io.BytesIO(b"x"), timeout=10)
        fail("a file over max-file-size was accepted")
    except FileTooBig:
        pass
    if up.max_file_size != MAXSIZE:
        fail(f"max-file-size from the disco form: {up.max_file_size}, want {MAXSIZE}")
    try:
        await up.request_slot(up.upload_service, "big.bin", MAXSIZE + 1, timeout=10)
        fail("the server granted a slot over the limit")
    except IqError as e:
        if e.iq["error"]["condition"] != "not-acceptable":
            fail(f"oversized slot: {e.iq['error']['condition']}, want not-acceptable")

    url = await up.upload_file(FILE, timeout=20)
    msg = alice.make_message(mto=f"bob@{DOMAIN}", mbody=url, mtype="chat")
    msg["oob"]["url"] = url
    msg.send()
    m = await next_message(bob, "alice's file")
    if m["body"] != url or m["oob"]["url"] != url:
        fail(f"bob got body {m['body']!r} oob {m['oob']['url']!r}, want {url!r}")
    if await fetch(m["oob"]["url"]) != data:
        fail("bob downloaded other bytes")
    print("SLIX_URL", url, flush=True)

    m = await next_message(alice, "bob's file over REST")
    oob = m["oob"]["url"]
    if not oob or oob not in m["body"]:
        fail(f"message from REST without an OOB URL: {m}")
    print("REST_SHA", hashlib.sha256(await fetch(oob)).hexdigest(), flush=True)
    alice.disconnect()
    bob.disconnect()
    await asyncio.sleep(0.3)
    print("OK", flush=True)


asyncio.run(main())
