// Interop test: Converse.js (npm converse.js, MPL-2.0, its prebuilt
// dist/) in real Chromium against a running `vestnik serve` over RFC 7395
// WebSocket. Driven by webclient/converse_test.go, which starts the server
// with the demo company and makes a chat over REST; can run by hand:
//   VESTNIK_URL=http://127.0.0.1:8080 VESTNIK_TOKEN=… node converse/run.mjs
// The page is served from a local HTTP server of this script (another
// origin than Vestnik's, as Converse.js on a portal would be).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'node_modules', 'converse.js', 'dist');
const BASE = process.env.VESTNIK_URL || 'http://127.0.0.1:8080';
const TOKEN = process.env.VESTNIK_TOKEN || '';
const DOMAIN = process.env.VESTNIK_DOMAIN || 'localhost';
let failed = false;

function log(...a) { console.log(...a); }
function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed = true;
    log(`FAIL ${name}\n${e && e.stack || e}`);
  }
}

async function rest(method, path, body) {
  const r = await fetch(BASE + '/api/v1' + path, {
    method, headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

// The page and Converse's dist files.
const types = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html', '.json': 'application/json',
  '.wasm': 'application/wasm', '.svg': 'image/svg+xml', '.woff2': 'font/woff2', '.png': 'image/png', '.mp3': 'audio/mpeg' };
const web = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  const file = path.startsWith('/dist/') ? join(dist, path.slice(6)) : join(here, path === '/' ? 'index.html' : path);
  if (!file.startsWith(dist) && !file.startsWith(here)) { res.writeHead(403).end(); return; }
  try {
    const data = await readFile(file);
    res.writeHead(200, { 'Content-Type': types[file.slice(file.lastIndexOf('.'))] || 'application/octet-stream' }).end(data);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => web.listen(0, '127.0.0.1', r));
const PAGE = `http://127.0.0.1:${web.address().port}/`;

// A closed chat of ivanov and smirnov with a message before Ivan logs in.
const chat = await rest('POST', '/chats', { title: 'Converse: план', description: 'Тема', color: 'GREEN', type: 'closed', owner_id: '2', users: ['2', '6'] });
await rest('POST', `/chats/${chat.id}/messages`, { from_user_id: '6', message: 'История до входа' });
const room = chat.jid;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
});
const page = await browser.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const missing = []; // 404s, by URL
page.on('response', (r) => { if (r.status() === 404) missing.push(r.url()); });

async function until(fn, arg, what, timeout = 20000) {
  const t0 = Date.now();
  for (;;) {
    const v = await page.evaluate(fn, arg).catch(() => null);
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error('timeout: ' + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const ws = BASE.replace(/^http/, 'ws') + '/xmpp-websocket';
await page.goto(`${PAGE}?ws=${encodeURIComponent(ws)}&jid=ivanov@${DOMAIN}&password=demo`);

await step('Converse.js logs in over WebSocket', async () => {
  await until(() => window.vestnikTest?.api?.connection?.connected?.(), null, 'connected');
});
if (failed) {
  log('console:\n' + consoleErrors.join('\n'));
  await browser.close();
  web.close();
  process.exit(1);
}

await step('roster: colleagues from the org structure', async () => {
  const jids = await until(async () => {
    const cs = await window.vestnikTest.api.contacts.get();
    return cs && cs.length ? cs.map((c) => c.get('jid')) : null;
  }, null, 'contacts');
  assert(jids.includes(`smirnov@${DOMAIN}`), 'smirnov in the roster: ' + jids.join(', '));
  await page.locator('converse-roster').getByText('Алексей Смирнов').first().waitFor({ timeout: 10000 });
});

await step('group chats from bookmarks: the chat is bookmarked and joined', async () => {
  await until((jid) => {
    const c = window.vestnikTest;
    const bm = c.state?.bookmarks || c.bookmarks;
    return bm && bm.get(jid);
  }, room, 'bookmark of ' + room);
  await until((jid) => {
    const c = window.vestnikTest;
    const r = c.state?.chatboxes?.get(jid) || c.chatboxes?.get(jid);
    return r && r.session && r.session.get('connection_status') === 5; // ROOMSTATUS.ENTERED
  }, room, 'joined ' + room);
});

await step('MUC history: the message posted before the join is shown', async () => {
  await until((jid) => {
    const c = window.vestnikTest;
    const r = c.state?.chatboxes?.get(jid) || c.chatboxes?.get(jid);
    return r && r.messages.models.some((m) => m.get('body') === 'История до входа');
  }, room, 'history message').catch(async (e) => {
    const dump = await page.evaluate((jid) => {
      const c = window.vestnikTest;
      const r = c.state?.chatboxes?.get(jid) || c.chatboxes?.get(jid);
      return JSON.stringify(r.messages.map((m) => m.toJSON()));
    }, room);
    throw new Error(e.message + ': ' + dump.slice(0, 3000));
  });
  await page.getByText('История до входа').first().waitFor({ timeout: 10000 });
});

await step('a message from Converse.js is archived in the chat', async () => {
  await page.evaluate(async (jid) => {
    const c = window.vestnikTest;
    const r = c.state?.chatboxes?.get(jid) || c.chatboxes?.get(jid);
    await r.sendMessage({ body: 'Ответ из Converse' });
  }, room);
  for (let i = 0; ; i++) {
    const page = await rest('GET', `/chats/${chat.id}/messages?user_id=2`);
    const msgs = page.messages || page;
    if (msgs.some((m) => (m.message || m.text || m.body) === 'Ответ из Converse')) break;
    if (i > 50) throw new Error('not archived: ' + JSON.stringify(page).slice(0, 500));
    await new Promise((r) => setTimeout(r, 200));
  }
});

await step('file upload (XEP-0363) from Converse.js', async () => {
  await page.evaluate(async (jid) => {
    const c = window.vestnikTest;
    const r = c.state?.chatboxes?.get(jid) || c.chatboxes?.get(jid);
    await r.sendFiles([new File(['привет из файла'], 'hello.txt', { type: 'text/plain' })]);
  }, room);
  const url = await until((jid) => {
    const c = window.vestnikTest;
    const r = c.state?.chatboxes?.get(jid) || c.chatboxes?.get(jid);
    const m = r && r.messages.models.find((m) => (m.get('oob_url') || '').includes('/upload/') && !m.get('upload'));
    return m && m.get('oob_url');
  }, room, 'uploaded file message', 30000);
  const got = await (await fetch(url)).text();
  assert(got === 'привет из файла', 'downloaded ' + JSON.stringify(got));
});

// Reading is not joining: a room entered by presence alone is read
// (affiliation none); Converse.js bookmarks a room it opens, and that
// bookmark is the join: Ivan becomes a member and Converse.js sees its own
// affiliation change.
await step('an open chat opened in Converse.js: its bookmark makes Ivan a member', async () => {
  const open = await rest('POST', '/chats', { title: 'Converse: курилка', description: '', color: 'GRAY', type: 'open', owner_id: '6', users: ['6'] });
  const room = ((jid) => { const c = window.vestnikTest; return c.state?.chatboxes?.get(jid) || c.chatboxes?.get(jid); }).toString();
  await page.evaluate(async (jid) => { await window.vestnikTest.api.rooms.open(jid, { nick: 'Иван' }); }, open.jid);
  await until(([jid, src]) => {
    const r = eval(src)(jid);
    return r && r.session && r.session.get('connection_status') === 5 && r.getOwnOccupant?.()?.get('affiliation') === 'member';
  }, [open.jid, room], 'member of ' + open.jid);
  await until((jid) => { const c = window.vestnikTest; const b = c.state?.bookmarks || c.bookmarks; return b && b.get(jid); }, open.jid, 'bookmark of ' + open.jid);
  const members = (await rest('GET', `/chats/${open.id}`)).members || [];
  assert(members.some((m) => m.login === 'ivanov'), 'not a member after the bookmark: ' + JSON.stringify(members));
  await page.evaluate(async ([jid, src]) => { await eval(src)(jid).sendMessage({ body: 'Я с вами' }); }, [open.jid, room]);
  await until(([jid, src]) => eval(src)(jid).messages.models.some((m) => m.get('body') === 'Я с вами' && m.get('stanza_id ' + jid)), [open.jid, room], 'echo with a stanza-id');
});

await step('no errors in the console', async () => {
  // Converse.js fetches some assets from the Internet (none here).
  const serious = consoleErrors.filter((e) => !/favicon|sound|\.mp3|\.ogg|emoji|ERR_NAME_NOT_RESOLVED|status of 404/i.test(e));
  assert(serious.length === 0, serious.join('\n'));
  // Vestnik answers everything Converse.js asks of it; the page's own
  // favicon and optional assets may be missing.
  const ours = missing.filter((u) => u.startsWith(BASE));
  assert(ours.length === 0, 'not found on Vestnik: ' + ours.join(', '));
  if (missing.length) log('not found on the test page (ignored): ' + missing.join(', '));
});

await step('Converse.js over BOSH (XEP-0206): login and roster', async () => {
  const p = await browser.newPage();
  await p.goto(`${PAGE}?bosh=${encodeURIComponent(BASE + '/http-bind')}&jid=petrova@${DOMAIN}&password=demo`);
  const t0 = Date.now();
  for (;;) {
    const n = await p.evaluate(async () => {
      const c = window.vestnikTest;
      if (!c?.api?.connection?.connected?.()) return 0;
      return (await c.api.contacts.get()).length;
    }).catch(() => 0);
    if (n > 0) break;
    if (Date.now() - t0 > 20000) throw new Error('no BOSH login with a roster');
    await new Promise((r) => setTimeout(r, 200));
  }
  const uri = await p.evaluate(() => window.vestnikTest.api.connection.get().service);
  assert(String(uri).endsWith('/http-bind'), 'connected through ' + uri);
  await p.close();
});

await browser.close();
web.close();
if (failed) process.exit(1);
log('OK');
