#!/usr/bin/python3
"""The XEPs of docs/xmpp.md's table checked with slixmpp (run by xeps_test.go).

Usage: xeps.py core HOST PORT TLSPORT DOMAIN PASSWORD  (xmppcore's test company)
       xeps.py pep HOST PORT DOMAIN PASSWORD           (the demo company, with PEP)
       xeps.py extdisco HOST PORT DOMAIN PASSWORD      (extdisco_test.go's services)
core: alice and bob (colleagues) and dave (no colleague of alice's) log in
over STARTTLS with SCRAM-SHA-256, alice once more over direct TLS (TLSPORT).
pep: ivanov publishes on PEP and smirnov gets the event; ivanov's XEP-0084
avatar becomes his vCard PHOTO.
extdisco: ivanov lists the external services (XEP-0215), those of a type,
and gets TURN credentials.
Each check prints "OK <name>"; at the end "OK". A failed check prints
"FAIL <name>: …" and exits 1. A last argument -v prints the stanzas a
check skipped while waiting.
"""
import asyncio
import base64
import hashlib
import logging
import ssl
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

MODE = sys.argv[1]
if MODE == "core":
    HOST, PORT, TLSPORT, DOMAIN, PASSWORD = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
else:
    HOST, PORT, DOMAIN, PASSWORD = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
logging.basicConfig(level=logging.CRITICAL)
CHECK = "login"


def fail(msg):
    print(f"FAIL {CHECK}: {msg}", flush=True)
    sys.exit(1)


def check(name):
    global CHECK
    CHECK = name


def ok():
    print("OK", CHECK, flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, user, resource, caps=False):
        super().__init__(f"{user}@{DOMAIN}/{resource}", PASSWORD, sasl_mech="SCRAM-SHA-256")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in ("xep_0012", "xep_0030", "xep_0054", "xep_0060", "xep_0084", "xep_0085",
                  "xep_0184", "xep_0191", "xep_0199", "xep_0280", "xep_0333", "xep_0313"):
            self.register_plugin(p)
        if caps:  # not on alice: without known caps she gets every PEP event
            self.register_plugin("xep_0115")
        # A PEP event goes to clients that ask for it (+notify, XEP-0163).
        self.plugin["xep_0030"].add_feature("http://jabber.org/protocol/tune+notify")
        self.plugin["xep_0184"].auto_ack = False
        self.plugin["xep_0184"].auto_request = False
        self.roster.auto_authorize = None  # subscriptions answered by hand
        self.raw_features = None
        self.seen = asyncio.Queue()
        self.ready = asyncio.Event()
        self.register_handler(slixmpp.xmlstream.handler.Callback(
            "raw features", slixmpp.xmlstream.matcher.MatchXPath("{http://etherx.jabber.org/streams}features"),
            self.on_features))
        self.add_event_handler("session_start", self.on_start)
        # Every message, not only those with a body (slixmpp's "message").
        self.register_handler(slixmpp.xmlstream.handler.Callback(
            "every message", slixmpp.xmlstream.matcher.MatchXPath("{jabber:client}message"),
            lambda m: self.seen.put_nowait(m)))
        self.add_event_handler("presence", lambda p: self.seen.put_nowait(p))
        self.add_event_handler("carbon_sent", lambda m: self.seen.put_nowait(("carbon_sent", m)))

    def on_features(self, f):
        if self.raw_features is None or f.xml.find("{urn:ietf:params:xml:ns:xmpp-bind}bind") is not None:
            self.raw_features = f.xml

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        self.ready.set()

    async def next(self, pred, what, timeout=5):
        """The next queued stanza pred accepts (others are dropped)."""
        deadline = asyncio.get_event_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_event_loop().time()
            if left <= 0:
                fail(f"no {what}")
            try:
                ev = await asyncio.wait_for(self.seen.get(), left)
            except asyncio.TimeoutError:
                fail(f"no {what}")
            if pred(ev):
                return ev
            if "-v" in sys.argv:
                print("skipped", ev, flush=True)

    def drain(self):
        while not self.seen.empty():
            self.seen.get_nowait()

    async def iq(self, typ, to, payload):
        iq = self.make_iq(ito=to, itype=typ)
        iq.append(ET.fromstring(payload))
        return await iq.send(timeout=5)


async def login(user, resource, tls=False, caps=False):
    c = Client(user, resource, caps)
    if tls:
        c.connect((HOST, TLSPORT), use_ssl=True)
    else:
        c.connect((HOST, PORT))
    try:
        await asyncio.wait_for(c.ready.wait(), 10)
    except asyncio.TimeoutError:
        fail(f"{user}/{resource} did not log in")
    return c


def is_msg(ev, frm=None):
    return isinstance(ev, slixmpp.Message) and (frm is None or ev["from"].bare == frm)


async def main():
    alice = await login("alice", "one")
    bob = await login("bob", "slix")
    dave = await login("dave", "slix", caps=True)
    A, B, D = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"dave@{DOMAIN}"

    check("xep-0368 direct TLS")
    alice2 = await login("alice", "two", tls=True)
    if "starttls" in alice2.features:
        fail("STARTTLS offered over direct TLS")
    ok()

    check("xep-0115 caps in stream features")
    c = alice.raw_features.find("{http://jabber.org/protocol/caps}c")
    if c is None or c.get("hash") != "sha-1" or not c.get("ver") or not c.get("node"):
        fail(f"no <c/> in {ET.tostring(alice.raw_features)!r}")
    info = await alice["xep_0030"].get_info(jid=DOMAIN, timeout=5)
    ver = dave["xep_0115"].generate_verstring(info["disco_info"], "sha-1")
    if ver != c.get("ver"):
        fail(f"ver {c.get('ver')} is not the disco#info hash {ver}")
    ok()

    check("xep-0157 contact addresses")
    admin = None
    for x in info.xml.findall(".//{jabber:x:data}x"):
        fields = {f.get("var"): [v.text for v in f.findall("{jabber:x:data}value")] for f in x.findall("{jabber:x:data}field")}
        if fields.get("FORM_TYPE") == ["http://jabber.org/network/serverinfo"]:
            admin = fields.get("admin-addresses")
    if admin is None or "mailto:it@example.test" not in admin or f"xmpp:{A}" not in admin:
        fail(f"admin-addresses in the serverinfo form: {admin}")
    ok()

    check("xep-0199 ping")
    await alice["xep_0199"].ping(DOMAIN, timeout=5)
    ok()

    check("xep-0012 last activity")
    last = await alice["xep_0012"].get_last_activity(DOMAIN, timeout=5)
    if last["last_activity"]["seconds"] is None or int(last["last_activity"]["seconds"]) < 0:
        fail(f"server uptime: {last}")
    ok()

    check("xep-0054 vcard-temp")
    v = await alice["xep_0054"].get_vcard(B, timeout=5)
    if v["vcard_temp"]["FN"] != "Боб Иванов":
        fail(f"bob's FN: {v['vcard_temp']['FN']!r}")
    try:
        await alice.iq("set", None, "<vCard xmlns='vcard-temp'><FN>Alice Smith</FN>"
                       "<ORG><ORGNAME>Another Company</ORGNAME></ORG></vCard>")
        fail("a company field was changed")
    except IqError as e:
        if e.condition != "not-allowed":
            fail(f"company field refused with {e.condition}")
    v = await bob["xep_0054"].get_vcard(A, timeout=5)
    if "Another" in str(v):
        fail("the refused set changed the vCard")
    ok()

    check("xep-0085/0184/0333 passed through")
    bob.drain()
    m = alice.make_message(mto=B, mbody="квитанция-xyz", mtype="chat")
    m["chat_state"] = "active"
    m["request_receipt"] = True
    m.append(ET.fromstring("<markable xmlns='urn:xmpp:chat-markers:0'/>"))
    mid = m["id"]
    m.send()
    got = await bob.next(lambda ev: is_msg(ev, A) and ev["body"] == "квитанция-xyz", "message at bob")
    if got["chat_state"] != "active" or not got["request_receipt"] or got.xml.find("{urn:xmpp:chat-markers:0}markable") is None:
        fail(f"stripped: {got}")
    alice.drain()
    r = bob.make_message(mto=got["from"], mtype="chat")
    r["receipt"] = mid
    r.send()
    d = bob.make_message(mto=got["from"], mtype="chat")
    d.append(ET.fromstring(f"<displayed xmlns='urn:xmpp:chat-markers:0' id='{mid}'/>"))
    d.send()
    await alice.next(lambda ev: is_msg(ev, B) and ev["receipt"] == mid, "receipt at alice")
    await alice.next(lambda ev: is_msg(ev, B) and ev.xml.find("{urn:xmpp:chat-markers:0}displayed") is not None, "displayed marker at alice")
    ok()

    check("xep-0249 direct MUC invitation passed through")
    bob.drain()
    inv = alice.make_message(mto=B)
    inv.append(ET.fromstring(f"<x xmlns='jabber:x:conference' jid='sales@conference.{DOMAIN}' reason='обсудим'/>"))
    inv.send()
    got = await bob.next(lambda ev: is_msg(ev, A) and ev.xml.find("{jabber:x:conference}x") is not None, "invitation at bob")
    x = got.xml.find("{jabber:x:conference}x")
    if x.get("jid") != f"sales@conference.{DOMAIN}" or x.get("reason") != "обсудим":
        fail(f"invitation: {got}")
    ok()

    check("xep-0431 fulltext in MAM")
    form = await alice["xep_0313"].get_fields(timeout=5)
    if "{urn:xmpp:fulltext:0}fulltext" not in form.get_fields():
        fail(f"MAM form fields: {list(form.get_fields())}")
    q = alice.make_iq_set()
    q.append(ET.fromstring("<query xmlns='urn:xmpp:mam:2' queryid='ft'><x xmlns='jabber:x:data' type='submit'>"
                           "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
                           "<field var='{urn:xmpp:fulltext:0}fulltext'><value>квитанция</value></field></x></query>"))
    alice.drain()
    await q.send(timeout=5)
    hits = []
    while not alice.seen.empty():
        ev = alice.seen.get_nowait()
        if is_msg(ev) and ev.xml.find("{urn:xmpp:mam:2}result") is not None:
            hits.append(ev)
    if len(hits) != 1 or "квитанция-xyz" not in ET.tostring(hits[0].xml, encoding="unicode"):
        fail(f"fulltext search found {len(hits)} messages")
    ok()

    check("xep-0280 carbons")
    await alice2["xep_0280"].enable(timeout=5)
    alice2.drain()
    alice.send_message(mto=B, mbody="копия", mtype="chat")
    ev = await alice2.next(lambda ev: isinstance(ev, tuple), "sent carbon at alice/two")
    if ev[1]["carbon_sent"]["body"] != "копия":
        fail(f"carbon: {ev[1]}")
    ok()

    # Two messages archived by now: one page each.
    check("xep-0059 result set management in MAM")
    pages, after, fins = [], "", []
    for _ in range(2):
        q = alice.make_iq_set()
        q.append(ET.fromstring("<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>1</max>"
                               + (f"<after>{after}</after>" if after else "") + "</set></query>"))
        alice.drain()
        res = await q.send(timeout=5)
        ids = []
        while not alice.seen.empty():
            ev = alice.seen.get_nowait()
            if is_msg(ev) and ev.xml.find("{urn:xmpp:mam:2}result") is not None:
                ids.append(ev.xml.find("{urn:xmpp:mam:2}result").get("id"))
        fin = res.xml.find("{urn:xmpp:mam:2}fin")
        last = fin is not None and fin.findtext("{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}last")
        if len(ids) != 1 or last != ids[0]:
            fail(f"page after {after!r}: results {ids}, fin {res}")
        pages.append(ids[0])
        fins.append(fin.get("complete"))
        after = last
    if pages[0] == pages[1] or fins[0] == "true":
        fail(f"pages {pages}, complete {fins}")
    ok()

    check("rfc6121 subscription to a non-colleague")
    alice.drain()
    dave.drain()
    alice.send_presence(pto=D, ptype="subscribe")
    await dave.next(lambda ev: isinstance(ev, slixmpp.Presence) and ev["type"] == "subscribe" and ev["from"].bare == A,
                    "request at dave")
    r = await alice.iq("get", None, "<query xmlns='jabber:iq:roster'/>")
    item = r.xml.find(f"{{jabber:iq:roster}}query/{{jabber:iq:roster}}item[@jid='{D}']")
    if item is None or item.get("subscription") != "none" or item.get("ask") != "subscribe":
        fail(f"pending item: {item is not None and item.attrib}")
    dave.send_presence(pto=A, ptype="subscribed")
    await alice.next(lambda ev: isinstance(ev, slixmpp.Presence) and ev["type"] == "subscribed" and ev["from"].bare == D,
                     "approval at alice")
    r = await alice.iq("get", None, "<query xmlns='jabber:iq:roster'/>")
    item = r.xml.find(f"{{jabber:iq:roster}}query/{{jabber:iq:roster}}item[@jid='{D}']")
    if item is None or item.get("subscription") != "to" or item.get("ask"):
        fail(f"approved item: {item is not None and item.attrib}")
    ok()

    # After the subscription changed it: version "1" (a roster never
    # changed) is never current, the server answers it in full.
    check("xep-0237 roster versioning")
    if "rosterver" not in alice.features:
        fail(f"no rosterver feature: {alice.features}")
    r = await alice.iq("get", None, "<query xmlns='jabber:iq:roster' ver=''/>")
    q = r.xml.find("{jabber:iq:roster}query")
    if q is None or not q.get("ver"):
        fail(f"roster without ver: {r}")
    r = await alice.iq("get", None, f"<query xmlns='jabber:iq:roster' ver='{q.get('ver')}'/>")
    if r.xml.find("{jabber:iq:roster}query") is not None:
        fail(f"unchanged roster answered with items: {r}")
    ok()

    check("xep-0352 client state indication")
    if "csi" not in bob.features and bob.raw_features.find("{urn:xmpp:csi:0}csi") is None:
        fail("no csi feature")
    bob.send_raw("<inactive xmlns='urn:xmpp:csi:0'/>")
    await bob["xep_0199"].ping(DOMAIN, timeout=5)
    bob.drain()
    alice.send_presence(pshow="away", pstatus="обед")
    alice2.send_presence(pshow="away", pstatus="обед")
    alice.send_message(mto=B, mbody="не ждёт", mtype="chat")
    await bob.next(lambda ev: is_msg(ev, A) and ev["body"] == "не ждёт", "message while inactive")
    await asyncio.sleep(0.5)
    while not bob.seen.empty():
        ev = bob.seen.get_nowait()
        if isinstance(ev, slixmpp.Presence) and ev["from"].bare == A and ev["status"] == "обед":
            fail("presence not held while inactive")
    bob.send_raw("<active xmlns='urn:xmpp:csi:0'/>")
    await bob.next(lambda ev: isinstance(ev, slixmpp.Presence) and ev["from"].bare == A and ev["status"] == "обед",
                   "held presence after active")
    await bob["xep_0199"].ping(DOMAIN, timeout=5)
    ok()

    check("xep-0191 blocking")
    await alice["xep_0191"].block(D, timeout=5)
    bl = await alice["xep_0191"].get_blocked(timeout=5)
    if D not in [str(j) for j in bl["blocklist"]["items"]]:
        fail(f"blocklist: {bl}")
    alice.drain()
    alice.send_message(mto=D, mbody="заблокирован", mtype="chat")
    err = await alice.next(lambda ev: is_msg(ev) and ev["type"] == "error", "error for a message to a blocked JID")
    if err["error"]["condition"] != "not-acceptable" or err.xml.find(".//{urn:xmpp:blocking:errors}blocked") is None:
        fail(f"refusal: {err}")
    await alice["xep_0191"].unblock(D, timeout=5)
    bl = await alice["xep_0191"].get_blocked(timeout=5)
    if bl["blocklist"]["items"]:
        fail(f"blocklist after unblock: {bl}")
    ok()

    for c in (alice, alice2, bob, dave):
        c.disconnect()
    print("OK", flush=True)


async def main_pep():
    ivanov = await login("ivanov", "slix")
    smirnov = await login("smirnov", "slix", caps=True)
    I = f"ivanov@{DOMAIN}"

    check("xep-0060/0163 PEP publish and notify")
    ivanov.drain()
    smirnov.drain()
    tune = ET.fromstring("<tune xmlns='http://jabber.org/protocol/tune'><artist>Ёлка</artist><title>Прованс</title></tune>")
    await ivanov["xep_0060"].publish(I, "http://jabber.org/protocol/tune", payload=tune, timeout=5)
    ev = await smirnov.next(lambda ev: is_msg(ev, I) and ev.xml.find("{http://jabber.org/protocol/pubsub#event}event") is not None,
                          "PEP event at smirnov")
    if "Прованс" not in ET.tostring(ev.xml, encoding="unicode"):
        fail(f"event: {ev}")
    items = await smirnov["xep_0060"].get_items(I, "http://jabber.org/protocol/tune", timeout=5)
    if "Прованс" not in str(items):
        fail(f"items: {items}")
    ok()

    check("xep-0398 avatar to vCard")
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    sha = hashlib.sha1(png).hexdigest()
    await ivanov["xep_0084"].publish_avatar(png, timeout=5)
    await ivanov["xep_0084"].publish_avatar_metadata(items=[{"id": sha, "type": "image/png", "bytes": len(png)}], timeout=5)
    for _ in range(20):
        v = await smirnov["xep_0054"].get_vcard(I, cached=False, timeout=5)
        photo = v["vcard_temp"]["PHOTO"]
        if photo["BINVAL"] == png:
            break
        await asyncio.sleep(0.1)
    else:
        fail("the PEP avatar is not ivanov's vCard PHOTO")
    ok()

    for c in (ivanov, smirnov):
        c.disconnect()
    print("OK", flush=True)


async def main_extdisco():
    ivanov = await login("ivanov", "slix")
    NS = "urn:xmpp:extdisco:2"
    check("xep-0215 external service discovery")
    info = await ivanov["xep_0030"].get_info(jid=DOMAIN, timeout=5)
    if NS not in info["disco_info"]["features"]:
        fail(f"{NS} not in the server's disco#info")
    r = await ivanov.iq("get", DOMAIN, f"<services xmlns='{NS}'/>")
    types = [(s.get("type"), s.get("host")) for s in r.xml.iter(f"{{{NS}}}service")]
    if sorted(types) != [("ftp", "ftp.example.test"), ("stun", "turn.example.test"), ("turn", "turn.example.test")]:
        fail(f"services: {types}")
    r = await ivanov.iq("get", DOMAIN, f"<services xmlns='{NS}' type='turn'/>")
    turn = list(r.xml.iter(f"{{{NS}}}service"))
    if len(turn) != 1 or turn[0].get("restricted") not in ("1", "true") or not turn[0].get("username", "").endswith(":ivanov"):
        fail(f"turn services: {r}")
    r = await ivanov.iq("get", DOMAIN, f"<credentials xmlns='{NS}'><service host='turn.example.test' type='turn'/></credentials>")
    cred = list(r.xml.iter(f"{{{NS}}}service"))
    if len(cred) != 1 or not cred[0].get("password") or not cred[0].get("username", "").endswith(":ivanov"):
        fail(f"credentials: {r}")
    try:
        await ivanov.iq("get", DOMAIN, f"<credentials xmlns='{NS}'><service host='turn.example.test'/></credentials>")
        fail("credentials without a type answered")
    except IqError as e:
        if e.condition != "bad-request":
            fail(f"credentials without a type: {e.condition}")
    ok()
    ivanov.disconnect()
    print("OK", flush=True)


MAINS = {"core": main, "pep": main_pep, "extdisco": main_extdisco}
asyncio.get_event_loop().run_until_complete(asyncio.wait_for(MAINS[MODE](), 30))
