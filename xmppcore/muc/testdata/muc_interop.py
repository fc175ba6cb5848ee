#!/usr/bin/python3
"""MUC interop check with slixmpp (run by interop_test.go).

Usage: muc_interop.py HOST PORT DOMAIN PASSWORD ROOM
ivanov and smirnov (members of the closed chat ROOM) log in over STARTTLS
with SCRAM-SHA-256; smirnov reads his bookmarks from private storage
(XEP-0048) and, as Converse.js does, from PEP storage:bookmarks after
seeing urn:xmpp:bookmarks:1#compat on his account, and finds ROOM with
autojoin; smirnov publishes XEP-0402 bookmarks (ROOM, and a room elsewhere
with autojoin='false' and extensions) and reads them back as published;
both join ROOM with the XEP-0045
plugin and see each other; ivanov's groupchat message reaches smirnov
from ROOM/ivanov's nick with a stanza-id by the room and the occupant-id (XEP-0421) of ivanov's
presence; ivanov's self-ping (XEP-0410) is answered; petrova (not a
member) is refused; a rejoin with maxchars=0 gets no history; ivanov
kicks smirnov (307) and bans him (301, outcast list, rejoin forbidden);
petrova reads a password-protected open chat (affiliation none) and her
first message makes her a member (the presence first).
Prints "OK" and exits 0, or prints the failure and
exits 1.
"""
import asyncio
import logging
import ssl
import sys

import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, PresenceError

HOST, PORT, DOMAIN, PASSWORD, ROOM = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
logging.basicConfig(level=logging.CRITICAL)


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD, sasl_mech="SCRAM-SHA-256")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in ("xep_0004", "xep_0030", "xep_0045", "xep_0048", "xep_0049", "xep_0199", "xep_0223", "xep_0359"):
            self.register_plugin(p)
        self.groupchat = asyncio.Queue()
        self.ready = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("groupchat_message", lambda m: self.groupchat.put_nowait(m))
        self.gone = asyncio.Queue()
        self.add_event_handler("groupchat_presence", lambda p: self.gone.put_nowait(p) if p["type"] == "unavailable" else None)
        # Every room stanza, in order (presence and messages).
        self.seen = asyncio.Queue()
        self.add_event_handler("groupchat_presence", lambda p: self.seen.put_nowait(p))
        self.add_event_handler("groupchat_message", lambda m: self.seen.put_nowait(m))

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        self.ready.set()


async def login(user):
    c = Client(user)
    c.connect((HOST, PORT))
    try:
        await asyncio.wait_for(c.ready.wait(), 10)
    except asyncio.TimeoutError:
        fail(f"{user} did not log in")
    return c


async def main():
    ivanov = await login("ivanov")
    smirnov = await login("smirnov")

    # XEP-0048 bookmarks in private storage: the member's chats, autojoin.
    res = await smirnov.plugin["xep_0048"].get_bookmarks(method="xep_0049")
    confs = res["private"]["bookmarks"]["conferences"]
    if not any(str(c["jid"]) == ROOM and c["autojoin"] for c in confs):
        fail(f"bookmarks: {res}")

    # Converse.js-style: the account's disco#info says the PEP service
    # keeps XEP-0048 and XEP-0402 bookmarks in sync (#compat), and PEP
    # storage:bookmarks (XEP-0223) lists the chat.
    info = await smirnov.plugin["xep_0030"].get_info(jid=f"smirnov@{DOMAIN}")
    feats = info["disco_info"]["features"]
    for f in ("urn:xmpp:bookmarks:1#compat", "urn:xmpp:bookmarks:1#compat-pep"):
        if f not in feats:
            fail(f"account disco#info lacks {f}: {feats}")
    res = await smirnov.plugin["xep_0048"].get_bookmarks(method="xep_0223")
    found = [c for c in res.xml.iter("{storage:bookmarks}conference")
             if c.get("jid") == ROOM and c.get("autojoin") == "true"]
    if not found:
        fail(f"PEP storage:bookmarks: {res}")

    # XEP-0402: published conferences are kept as published and read
    # back: ROOM (autojoin: autojoin='false' would leave the chat) and a
    # room elsewhere with autojoin='false' and <extensions/>.
    other = "lounge@muc.elsewhere.test"
    for room, conf in ((ROOM, "name='Продажи (мои)' autojoin='true'><nick>Лёша</nick>"),
                       (other, "name='Гостиная' autojoin='false'><nick>Лёша</nick><extensions><x xmlns='urn:example:x'/></extensions>")):
        pub = smirnov.make_iq_set()
        pub.append(ET.fromstring(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'>"
            f"<item id='{room}'><conference xmlns='urn:xmpp:bookmarks:1' {conf}</conference></item></publish>"
            "<publish-options><x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
            "<field var='pubsub#persist_items'><value>true</value></field>"
            "<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub>"))
        await pub.send(timeout=10)
    get = smirnov.make_iq_get()
    get.append(ET.fromstring("<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub>"))
    res = await get.send(timeout=10)
    got = {i.get("id"): i.find("{urn:xmpp:bookmarks:1}conference") for i in res.xml.iter("{http://jabber.org/protocol/pubsub}item")}
    c1, c2 = got.get(ROOM), got.get(other)
    if c1 is None or c1.get("name") != "Продажи (мои)" or c1.get("autojoin") not in ("true", "1") \
            or c1.findtext("{urn:xmpp:bookmarks:1}nick") != "Лёша":
        fail(f"XEP-0402 bookmark of ROOM read back: {res}")
    if c2 is None or c2.get("name") != "Гостиная" or c2.get("autojoin") not in ("false", "0") \
            or c2.find("{urn:xmpp:bookmarks:1}extensions/{urn:example:x}x") is None:
        fail(f"XEP-0402 bookmark elsewhere read back: {res}")
    print("OK xep-0402 bookmarks", flush=True)

    muc_i, muc_s = ivanov.plugin["xep_0045"], smirnov.plugin["xep_0045"]
    await muc_i.join_muc_wait(slixmpp.JID(ROOM), "Иван", maxstanzas=0, timeout=10)
    await muc_s.join_muc_wait(slixmpp.JID(ROOM), "Алексей", maxstanzas=0, timeout=10)
    for _ in range(50):
        if "Иван" in muc_s.get_roster(slixmpp.JID(ROOM)):
            break
        await asyncio.sleep(0.1)
    else:
        fail(f"smirnov does not see ivanov: {muc_s.get_roster(slixmpp.JID(ROOM))}")

    ivanov.send_message(mto=ROOM, mbody="привет из slixmpp", mtype="groupchat")
    deadline = asyncio.get_event_loop().time() + 10
    while True:
        left = deadline - asyncio.get_event_loop().time()
        if left <= 0:
            fail("smirnov got no groupchat message")
        try:
            m = await asyncio.wait_for(smirnov.groupchat.get(), left)
        except asyncio.TimeoutError:
            fail("smirnov got no groupchat message")
        if m["body"] == "привет из slixmpp":
            break
    if str(m["from"]) != ROOM + "/Иван":
        fail(f"from {m['from']}")
    if m["stanza_id"]["by"] != ROOM or not m["stanza_id"]["id"]:
        fail(f"stanza-id {m['stanza_id']}")

    # XEP-0421: the message and ivanov's presence carry the same occupant-id.
    oid = m.xml.find("{urn:xmpp:occupant-id:0}occupant-id")
    if oid is None or not oid.get("id"):
        fail(f"no occupant-id on the message: {m}")
    pres_ids = []
    while not smirnov.seen.empty():
        ev = smirnov.seen.get_nowait()
        if ev.name == "presence" and str(ev["from"]) == ROOM + "/Иван":
            o = ev.xml.find("{urn:xmpp:occupant-id:0}occupant-id")
            pres_ids.append(o is not None and o.get("id"))
    if not pres_ids or any(i != oid.get("id") for i in pres_ids):
        fail(f"occupant-id {oid.get('id')} of the message, of the presence: {pres_ids}")
    print("OK xep-0421 occupant-id", flush=True)

    # XEP-0410: a joined session's ping to its own occupant JID is
    # answered by the room.
    await ivanov.plugin["xep_0199"].ping(slixmpp.JID(ROOM + "/Иван"), timeout=10)
    print("OK xep-0410 self-ping", flush=True)

    # A rejoin with maxchars=0 gets no history (Conversations-style).
    _, _, _, hist = await muc_s.join_muc_wait(slixmpp.JID(ROOM), "Алексей", maxchars=0, timeout=10)
    if hist:
        fail(f"maxchars=0 replayed {len(hist)} messages")

    async def gone_with(client, code):
        deadline = asyncio.get_event_loop().time() + 10
        while True:
            left = deadline - asyncio.get_event_loop().time()
            if left <= 0:
                fail(f"no unavailable presence with status {code}")
            try:
                p = await asyncio.wait_for(client.gone.get(), left)
            except asyncio.TimeoutError:
                fail(f"no unavailable presence with status {code}")
            if str(p["from"]) == ROOM + "/Алексей" and code in p["muc"]["status_codes"]:
                return p

    # The owner kicks (307): still a member, rejoins.
    await muc_i.set_role(slixmpp.JID(ROOM), "Алексей", "none", reason="тише", timeout=10)
    p = await gone_with(smirnov, 307)
    if p["muc"]["role"] != "none":
        fail(f"kick presence: {p}")
    await muc_s.join_muc_wait(slixmpp.JID(ROOM), "Алексей", maxstanzas=0, timeout=10)

    # The owner bans (301): listed as outcast, cannot rejoin.
    await muc_i.set_affiliation(slixmpp.JID(ROOM), "outcast", jid=smirnov.boundjid.bare, reason="спам", timeout=10)
    p = await gone_with(smirnov, 301)
    if p["muc"]["affiliation"] != "outcast":
        fail(f"ban presence: {p}")
    outcasts = await muc_i.get_affiliation_list(slixmpp.JID(ROOM), "outcast", timeout=10)
    if [str(j) for j in outcasts] != [f"smirnov@{DOMAIN}"]:
        fail(f"outcast list: {outcasts}")
    try:
        await muc_s.join_muc_wait(slixmpp.JID(ROOM), "Алексей", maxstanzas=0, timeout=10)
        fail("a banned user rejoined")
    except PresenceError as e:
        if e.condition != "forbidden":
            fail(f"banned rejoin refused with {e.condition}")

    # A non-member cannot join the closed chat.
    petrova = await login("petrova")
    try:
        await petrova.plugin["xep_0045"].join_muc_wait(slixmpp.JID(ROOM), "Мария", maxstanzas=0, timeout=10)
        fail("petrova joined a closed chat")
    except PresenceError as e:
        if e.condition != "registration-required":
            fail(f"petrova refused with {e.condition}")

    # A room created by joining, configured in the owner's form: open to
    # the company, with a password (XEP-0045 §10.2).
    secret = f"tajna@conference.{DOMAIN}"
    await muc_i.join_muc_wait(slixmpp.JID(secret), "Иван", maxstanzas=0, timeout=10)
    form = await muc_i.get_room_config(slixmpp.JID(secret), timeout=10)
    fields = form.get_fields()
    if "muc#roomconfig_roomsecret" not in fields or "muc#roomconfig_passwordprotectedroom" not in fields:
        fail(f"room form without a password: {list(fields)}")
    submit = ivanov.plugin["xep_0004"].make_form(ftype="submit")
    submit.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/muc#roomconfig")
    submit.add_field(var="muc#roomconfig_membersonly", value=False)
    submit.add_field(var="muc#roomconfig_passwordprotectedroom", value=True)
    submit.add_field(var="muc#roomconfig_roomsecret", value="пароль-1")
    await muc_i.set_room_config(slixmpp.JID(secret), submit, timeout=10)
    muc_p = petrova.plugin["xep_0045"]
    for pw in (None, "пароль-2"):
        try:
            await muc_p.join_muc_wait(slixmpp.JID(secret), "Мария", maxstanzas=0, password=pw, timeout=10)
            fail(f"joined a password-protected room with {pw!r}")
        except PresenceError as e:
            if e.condition != "not-authorized":
                fail(f"wrong password refused with {e.condition}")
    # The right password lets petrova read the open chat (affiliation
    # none, not a member); her first message makes her a member, and her
    # presence says so before the message.
    self_p, _, _, _ = await muc_p.join_muc_wait(slixmpp.JID(secret), "Мария", maxstanzas=0, password="пароль-1", timeout=10)
    if self_p["muc"]["affiliation"] != "none":
        fail(f"a reader's self-presence: {self_p}")
    members = await muc_i.get_affiliation_list(slixmpp.JID(secret), "member", timeout=10)
    if f"petrova@{DOMAIN}" in [str(j) for j in members]:
        fail(f"entering made a member: {members}")
    petrova.send_message(mto=slixmpp.JID(secret), mbody="можно к вам?", mtype="groupchat")
    deadline = asyncio.get_event_loop().time() + 10
    while True:
        left = deadline - asyncio.get_event_loop().time()
        if left <= 0:
            fail("no presence with the new affiliation")
        try:
            ev = await asyncio.wait_for(petrova.seen.get(), left)
        except asyncio.TimeoutError:
            fail("no presence with the new affiliation")
        if ev.name == "message" and str(ev["from"]) == secret + "/Мария":
            fail(f"the message came before the new affiliation: {ev}")
        if ev.name == "presence" and str(ev["from"]) == secret + "/Мария" and ev["muc"]["affiliation"] == "member":
            break
    members = await muc_i.get_affiliation_list(slixmpp.JID(secret), "member", timeout=10)
    if f"petrova@{DOMAIN}" not in [str(j) for j in members]:
        fail(f"the first message did not make a member: {members}")

    for c in (ivanov, smirnov, petrova):
        c.disconnect()
    print("OK", flush=True)


asyncio.get_event_loop().run_until_complete(asyncio.wait_for(main(), 50))
