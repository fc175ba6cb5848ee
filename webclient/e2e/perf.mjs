// Figures for docs/performance.md (not part of the test suite): seeds a
// running `vestnik serve --demo=on` over REST, then measures in headless
// Chromium
//   1. the time to open a conversation that has 10,000 messages of history
//      (alice ↔ bob), from the click to its newest message on screen;
//   2. the memory of a tab that has loaded 1,000 messages of which 100
//      carry an image (smirnov ↔ kuznetsova), scrolled through to the top.
// Run:
//   VESTNIK_URL=http://127.0.0.1:8080 VESTNIK_TOKEN=… node e2e/perf.mjs
import { deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const BASE = process.env.VESTNIK_URL || 'http://127.0.0.1:8080';
const TOKEN = process.env.VESTNIK_TOKEN;
const SEED = process.env.SEED !== '0';
if (!TOKEN) throw new Error('VESTNIK_TOKEN is not set');

const rest = (method, path, body) => fetch(BASE + '/api/v1' + path, {
  method, headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body),
});

async function pool(n, jobs, worker) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs) { const i = next++; await worker(i); }
  }));
}

// png makes a w×h RGB PNG with a pattern that depends on seed.
function png(w, h, seed) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * seed) & 255; raw[o + 1] = (y * 3 + seed * 7) & 255; raw[o + 2] = ((x ^ y) + seed) & 255;
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (b) => { let c = 0xffffffff; for (const x of b) c = crcTable[(c ^ x) & 255] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

async function seed() {
  let t0 = Date.now();
  await pool(16, 10000, async (i) => {
    const [from, to] = i % 2 ? ['5', '4'] : ['4', '5'];
    const r = await rest('POST', '/messages', { from_user_id: from, to_user_id: to, message: `Сообщение ${i + 1} из 10000: обсуждаем план работ на квартал` });
    if (r.status !== 201) throw new Error('POST /messages ' + r.status + ' ' + await r.text());
  });
  console.log(`seeded 10,000 messages alice↔bob in ${Date.now() - t0} ms`);
  t0 = Date.now();
  const files = [];
  await pool(8, 100, async (i) => {
    const fd = new FormData();
    fd.append('from_user_id', i % 2 ? '7' : '6');
    fd.append('file', new Blob([png(480, 320, i + 1)], { type: 'image/png' }), `снимок-${i + 1}.png`);
    const r = await fetch(BASE + '/api/v1/files', { method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN }, body: fd });
    if (r.status !== 201) throw new Error('POST /files ' + r.status + ' ' + await r.text());
    files[i] = (await r.json()).id;
  });
  // 1,000 messages in order (one writer keeps them ordered); every tenth has an image.
  for (let i = 0; i < 1000; i++) {
    const img = i % 10 === 9 ? files[(i - 9) / 10] : 0;
    const from = img ? (((i - 9) / 10) % 2 ? '7' : '6') : (i % 2 ? '7' : '6');
    const to = from === '6' ? '7' : '6';
    const body = { from_user_id: from, to_user_id: to, message: `Заметка ${i + 1}: ${'текст '.repeat(1 + (i % 12))}` };
    if (img) body.files = [img];
    const r = await rest('POST', '/messages', body);
    if (r.status !== 201) throw new Error('POST /messages ' + r.status + ' ' + await r.text());
  }
  console.log(`seeded 1,000 messages with 100 images smirnov↔kuznetsova in ${Date.now() - t0} ms`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--enable-precise-memory-info',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function login(user) {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 820 } });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.log('console error:', m.text()); });
  await page.goto(BASE + '/');
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'demo');
  await page.click('button[type=submit]');
  await page.waitForSelector('.list .row');
  return page;
}

async function until(page, fn, arg, timeout = 60000) {
  const t0 = Date.now();
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() - t0 > timeout) throw new Error('timeout: ' + fn);
    await new Promise((r) => setTimeout(r, 5));
  }
}

if (SEED) await seed();

// 1. Opening the 10,000-message conversation: cold (first open after
// login) five times, each in a fresh page.
const opens = [];
for (let run = 0; run < 5; run++) {
  const page = await login('alice');
  const row = page.locator('.row', { hasText: 'Bob Miller' }).first();
  await row.waitFor({ timeout: 60000 });
  const t0 = Date.now();
  await row.click();
  await until(page, () => [...document.querySelectorAll('.bubble .text')].some((e) => e.textContent.startsWith('Сообщение 10000 ')) || [...document.querySelectorAll('.bubble .text')].some((e) => /Сообщение 999\d /.test(e.textContent)));
  opens.push(Date.now() - t0);
  const shown = await page.locator('.bubble').count();
  if (run === 0) console.log(`bubbles rendered on open: ${shown}`);
  await page.context().close();
}
opens.sort((a, b) => a - b);
console.log(`open 10,000-message conversation: ${opens.join(', ')} ms (median ${opens[2]})`);

// 2. Memory after loading 1,000 messages with 100 images.
{
  const page = await login('smirnov');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const before = await metrics(page, cdp);
  const t0 = Date.now();
  await page.locator('.row', { hasText: 'Ольга Кузнецова' }).first().click();
  await page.waitForSelector('.bubble');
  // Scroll up until the beginning of the conversation is shown.
  for (let i = 0; i < 200; i++) {
    const done = await page.evaluate(() => {
      const m = document.querySelector('.messages');
      m.scrollTop = 0;
      m.dispatchEvent(new Event('scroll'));
      return !!document.querySelector('.history-start') && document.querySelector('.history-start').textContent !== '' && document.querySelectorAll('.bubble').length >= 1000;
    });
    if (done) break;
    await new Promise((r) => setTimeout(r, 150));
  }
  const loadedMs = Date.now() - t0;
  // Bring every image into view once so that all 100 load and decode.
  await page.evaluate(async () => {
    for (const img of document.querySelectorAll('.bubble img')) { img.loading = 'eager'; img.scrollIntoView(); }
  });
  await until(page, () => [...document.querySelectorAll('.bubble img')].every((i) => i.complete), null, 60000);
  const counts = await page.evaluate(() => ({ bubbles: document.querySelectorAll('.bubble').length, images: document.querySelectorAll('.bubble img').length }));
  const after = await metrics(page, cdp);
  console.log(`loaded ${counts.bubbles} bubbles, ${counts.images} images in ${loadedMs} ms`);
  console.log('tab before opening: ' + JSON.stringify(before));
  console.log('tab after 1,000 messages and 100 images: ' + JSON.stringify(after));
  await page.context().close();
}
await browser.close();

async function metrics(page, cdp) {
  await cdp.send('HeapProfiler.collectGarbage').catch(() => {});
  const { metrics: m } = await cdp.send('Performance.getMetrics');
  const get = (n) => m.find((x) => x.name === n)?.value || 0;
  const out = {
    js_heap_used_mb: +(get('JSHeapUsedSize') / 1048576).toFixed(1),
    js_heap_total_mb: +(get('JSHeapTotalSize') / 1048576).toFixed(1),
    dom_nodes: get('Nodes'),
  };
  // The renderer's resident memory (one tab per browser context here: the
  // newest renderer process is this page's).
  try {
    const b = await browser.newBrowserCDPSession();
    const info = await b.send('SystemInfo.getProcessInfo');
    const rs = info.processInfo.filter((p) => p.type === 'renderer').map((p) => p.id);
    const rss = rs.map((pid) => {
      const st = readFileSync(`/proc/${pid}/status`, 'utf8');
      return +(st.match(/VmRSS:\s+(\d+)/)?.[1] || 0);
    });
    out.renderer_rss_mb = rss.map((k) => +(k / 1024).toFixed(1));
  } catch (e) { out.renderer_rss_mb = 'n/a: ' + e.message; }
  return out;
}
