#!/usr/bin/python3
"""XEP-0050/0133 with slixmpp's ad-hoc commands client (run by adhoc_test.go).

Usage: adhoc.py HOST PORT DOMAIN PASSWORD
alice (an admin) lists the commands, fills in the announcement form and
bob receives the headline; alice lists the online users; bob (no admin)
is refused with forbidden. Prints "OK" and exits 0, or the failure and 1.
"""
import asyncio
import logging
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError

HOST, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ADMIN = "http://jabber.org/protocol/admin"
logging.basicConfig(level=logging.CRITICAL)


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0004")
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0050")
        self.headlines = asyncio.Queue()
        self.ready = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)

    async def on_start(self, _):
        self.send_presence()
        self.ready.set()

    def on_message(self, msg):
        if msg["type"] == "headline":
            self.headlines.put_nowait(msg)


async def login(user):
    c = Client(user)
    c.connect((HOST, PORT))
    try:
        await asyncio.wait_for(c.ready.wait(), 15)
    except asyncio.TimeoutError:
        fail(f"login {user}: timeout")
    return c


def submit(c, **fields):
    form = c["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN)
    for var, value in fields.items():
        form.add_field(var=var, value=value)
    return form


async def main():
    alice = await login("alice")
    bob = await login("bob")

    items = await alice["xep_0050"].get_commands(DOMAIN)
    nodes = {i[1] for i in items["disco_items"]["items"]}
    for want in ("announce", "get-online-users-list", "end-user-session"):
        if f"{ADMIN}#{want}" not in nodes:
            fail(f"commands lack {want}: {nodes}")

    first = await alice["xep_0050"].send_command(DOMAIN, f"{ADMIN}#announce")
    cmd = first["command"]
    if cmd["status"] != "executing" or "announcement" not in cmd["form"].get_fields():
        fail(f"announce form: {first}")
    done = await alice["xep_0050"].send_command(DOMAIN, f"{ADMIN}#announce", action="complete",
                                                payload=submit(alice, subject="Notice", announcement="Lunch is served"),
                                                sessionid=cmd["sessionid"])
    if done["command"]["status"] != "completed":
        fail(f"announce: {done}")
    try:
        msg = await asyncio.wait_for(bob.headlines.get(), 10)
    except asyncio.TimeoutError:
        fail("bob got no announcement")
    if msg["body"] != "Lunch is served" or msg["subject"] != "Notice" or msg["from"] != DOMAIN:
        fail(f"announcement: {msg}")

    res = await alice["xep_0050"].send_command(DOMAIN, f"{ADMIN}#get-online-users-list", action="complete",
                                               payload=submit(alice, max_items="none"))
    users = res["command"]["form"].get_values()["onlineuserjids"]
    if sorted(users) != [f"alice@{DOMAIN}", f"bob@{DOMAIN}"]:
        fail(f"online users: {users}")

    try:
        await bob["xep_0050"].send_command(DOMAIN, f"{ADMIN}#announce")
        fail("a non-admin ran announce")
    except IqError as e:
        if e.condition != "forbidden":
            fail(f"non-admin: {e.condition}")

    alice.disconnect()
    bob.disconnect()
    print("OK", flush=True)


asyncio.run(main())
