// End-to-end test of /widget.js on a portal page of another site, in real
// Chromium. Driven by webclient/widget_e2e_test.go, which starts
// `vestnik serve --widget-origins PORTAL_URL` and the portal (a page that
// includes the widget and an endpoint that asks Vestnik's REST API for a
// one-time login link for Иван Иванов, ext id 2).
// Environment: VESTNIK_URL, PORTAL_URL, VESTNIK_C2S, VESTNIK_TOKEN, CHROMIUM.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const BASE = process.env.VESTNIK_URL;
const PORTAL = process.env.PORTAL_URL;
const C2S = process.env.VESTNIK_C2S;
const TOKEN = process.env.VESTNIK_TOKEN;
const PY = process.env.PYTHON || '/usr/bin/python3';
let failed = false;
const pages = [];

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}\n${e && e.stack || e}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// connections is the server's count of open bridge WebSockets.
async function connections() {
  const text = await (await fetch(BASE + '/metrics')).text();
  const m = /^vestnik_bridge_connections (\S+)$/m.exec(text);
  return Number(m[1]);
}
async function until(fn, what, ms = 10000) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) throw new Error('timeout: ' + what);
    await sleep(50);
  }
}
async function rest(path, body) {
  const r = await fetch(BASE + '/api/v1' + path, {
    method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const text = await r.text();
  assert(r.status === 201, path + ': ' + r.status + ' ' + text);
  return JSON.parse(text);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
async function portalTab(ctx) {
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  pages.push(page);
  await page.goto(PORTAL + '/');
  return page;
}

const ctx = await browser.newContext({ locale: 'ru-RU' });
ctx.setDefaultTimeout(10000);
let tab1, tab2, bob;

await step('the portal page signs the widget in through a one-time link, with no cookie of Vestnik', async () => {
  tab1 = await portalTab(ctx);
  await until(async () => (await connections()) === 1, 'one widget connection');
  const badge = tab1.getByRole('button', { name: /^Вестник/ });
  await badge.click();
  await tab1.getByText('Вестник · Иван Иванов').waitFor();
  await badge.click();
  assert((await ctx.cookies(BASE)).length === 0, 'no cookie for Vestnik: ' + JSON.stringify(await ctx.cookies(BASE)));
  const stored = await tab1.evaluate((k) => localStorage.getItem(k), 'vestnik-widget ' + BASE);
  assert(stored && JSON.parse(stored).token, 'credential in the portal origin\'s storage');
});

await step('a second tab shares the one connection', async () => {
  tab2 = await portalTab(ctx);
  await tab2.getByRole('button', { name: /^Вестник/ }).waitFor();
  await sleep(1500);
  assert((await connections()) === 1, 'still one server-side connection, got ' + await connections());
});

await step('a message from a Jabber client pops up in both tabs within a second', async () => {
  const text = 'Привет <b>виджет</b> <img src=x onerror=alert(1)>';
  bob = spawn(PY, [join(here, 'xmpp_peer.py'), 'bob@localhost', 'demo', 'ivanov@localhost', text, C2S.split(':')[0], C2S.split(':')[1]], { stdio: ['pipe', 'pipe', 'inherit'] });
  bob.lines = [];
  let buf = '';
  bob.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      bob.lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  bob.wait = (ev, ms = 10000) => until(() => bob.lines.find((l) => l.event === ev), 'slixmpp ' + ev + ' in ' + JSON.stringify(bob.lines), ms)
    .then(() => bob.lines.find((l) => l.event === ev));
  await bob.wait('ready');
  bob.stdin.write('go\n');
  await bob.wait('sent');
  const t0 = Date.now();
  const pop1 = tab1.getByRole('group', { name: 'Вестник: Bob Miller' });
  const pop2 = tab2.getByRole('group', { name: 'Вестник: Bob Miller' });
  await Promise.all([pop1.waitFor(), pop2.waitFor()]);
  const ms = Date.now() - t0;
  console.log(`METRICS widget_popup_ms=${ms}`);
  assert(ms < 1000, 'pop-up after ' + ms + ' ms');
  assert(await pop2.getByText(text, { exact: true }).count() === 1, 'the body is shown as text');
  assert(await tab2.evaluate(() => !document.querySelector('img')), 'no element made from the message');
  const label = await tab1.getByRole('button', { name: /^Вестник/ }).getAttribute('aria-label');
  assert(/1 непрочитанных/.test(label), 'badge: ' + label);
});

await step('the answer typed in the second tab reaches the Jabber client; the pop-up closes in both', async () => {
  await tab2.getByRole('textbox', { name: 'Ответ: Bob Miller' }).fill('Ответ из виджета');
  await tab2.getByRole('button', { name: 'Отправить' }).click();
  const got = await bob.wait('message');
  assert(got.from === 'ivanov@localhost' && got.body === 'Ответ из виджета', JSON.stringify(got));
  await until(async () => (await tab1.getByRole('group', { name: 'Вестник: Bob Miller' }).count()) === 0, 'pop-up closed in tab 1');
  await until(async () => (await tab2.getByRole('group', { name: 'Вестник: Bob Miller' }).count()) === 0, 'pop-up closed in tab 2');
  // The answer marked the message read: the badge is clear.
  await until(async () => !/непрочитанных/.test(await tab1.getByRole('button', { name: /^Вестник/ }).getAttribute('aria-label')), 'badge cleared');
});

await step('the leader tab closes: the other takes over the connection and still gets pop-ups', async () => {
  await tab1.close();
  pages.splice(pages.indexOf(tab1), 1);
  await until(async () => (await connections()) === 1, 'the second tab connected', 10000);
  await sleep(300);
  await rest('/messages', { from_user_id: '3', to_user_id: '2', message: 'Вы на связи?' });
  await tab2.getByRole('group', { name: 'Вестник: Мария Петрова', exact: true }).waitFor({ timeout: 2000 });
  assert((await connections()) === 1, 'one connection');
});

await step('a notification pops up, labelled in English in an English browser', async () => {
  const en = await browser.newContext({ locale: 'en-US' });
  const page = await portalTab(en);
  await page.getByRole('button', { name: /^Vestnik/ }).waitFor();
  await until(async () => (await connections()) === 2, 'the English browser connected');
  await sleep(300);
  await rest('/notifications', { to_user_id: '2', text: 'Согласуйте отпуск', link: 'https://portal.example/vacation' });
  const pop = page.getByRole('group', { name: 'Vestnik: Notification' });
  await pop.waitFor({ timeout: 2000 });
  await pop.getByRole('link', { name: 'Details' }).waitFor();
  await tab2.getByRole('group', { name: 'Вестник: Уведомление' }).waitFor({ timeout: 2000 });
  await pop.getByRole('button', { name: 'Close: Notification' }).click();
  await until(async () => (await pop.count()) === 0, 'closed');
  await page.getByRole('button', { name: /^Vestnik: \d+ unread/ }).waitFor();
  await en.close();
  pages.splice(pages.indexOf(page), 1);
});

await step('a mention in a chat pops up and is answered in that chat', async () => {
  const chat = await rest('/chats', { title: 'Отчёты', type: 'closed', owner_id: '3', users: ['3', '2'] });
  await sleep(500);
  const t0 = Date.now();
  await rest(`/chats/${chat.id}/messages`, { from_user_id: '3', message: '@Иван Иванов посмотри отчёт' });
  const pop = tab2.getByRole('group', { name: 'Вестник: Мария Петрова · упоминание', exact: true });
  await pop.waitFor({ timeout: 2000 }).catch(async (e) => {
    const shown = await tab2.evaluate(() => [...document.querySelector('body > div:last-child').shadowRoot.querySelectorAll('[role=group]')].map((g) => g.getAttribute('aria-label') + ' | ' + g.textContent));
    throw new Error(e.message + '\npop-ups shown: ' + JSON.stringify(shown));
  });
  const ms = Date.now() - t0;
  console.log(`METRICS widget_mention_popup_ms=${ms}`);
  assert(ms < 1000, 'mention pop-up after ' + ms + ' ms');
  await pop.getByRole('textbox', { name: 'Ответ: Мария Петрова · упоминание' }).fill('Смотрю отчёт');
  await pop.getByRole('button', { name: 'Отправить' }).click();
  await until(async () => (await pop.count()) === 0, 'mention pop-up closed');
  const r = await fetch(`${BASE}/api/v1/chats/${chat.id}/messages?user_id=3`, { headers: { Authorization: 'Bearer ' + TOKEN } });
  const got = await r.json();
  assert(got.messages.some((m) => m.text === 'Смотрю отчёт' && m.from_user_id === '2'), JSON.stringify(got));
});

await step('a notification with a sender and buttons: the pop-up names them and a button answers it', async () => {
  await rest('/notifications', { to_user_id: '2', sender_id: '3', text: 'Отпуск с 1 июля?',
    buttons: [{ title: 'Согласовать', value: 'yes' }, { title: 'Отклонить', value: 'no' }] });
  const pop = tab2.getByRole('group', { name: 'Вестник: Уведомление · Мария Петрова', exact: true });
  await pop.waitFor({ timeout: 2000 });
  const actions = pop.getByRole('group', { name: 'Ответ на уведомление' });
  await actions.getByRole('button', { name: 'Согласовать', exact: true }).click();
  const chosen = actions.getByRole('button', { name: 'Выбрано: Согласовать' });
  await chosen.waitFor({ timeout: 5000 });
  assert(await chosen.getAttribute('aria-pressed') === 'true', 'the chosen button is pressed');
  assert(await actions.getByRole('button', { name: 'Отклонить' }).isDisabled(), 'the other button is disabled');
  await tab2.screenshot({ path: join(process.env.VESTNIK_SHOTS || join(here, '..', 'test', 'screenshots'), 'ru-widget-notification-buttons.png') });
});

await step('"Open messenger" opens the full messenger signed in', async () => {
  const pop = tab2.getByRole('group', { name: 'Вестник: Мария Петрова', exact: true });
  const [win] = await Promise.all([ctx.waitForEvent('page'), pop.getByRole('button', { name: 'Открыть мессенджер' }).click()]);
  await until(async () => win.url() === BASE + '/', 'messenger opened at ' + win.url());
  await win.waitForLoadState();
  const s = await win.evaluate(() => fetch('/session').then((r) => r.json()));
  assert(s.user && s.user.login === 'ivanov', JSON.stringify(s));
  await win.close();
});

await step('signing out of the widget ends its connection; "Sign in" asks the portal again', async () => {
  const badge = tab2.getByRole('button', { name: /^Вестник/ });
  await badge.click();
  await tab2.getByRole('button', { name: 'Выйти из виджета' }).click();
  await until(async () => (await connections()) === 0, 'the widget connection closed');
  await tab2.getByRole('button', { name: 'Войти в Вестник' }).click();
  await until(async () => (await connections()) === 1, 'signed in again');
  await tab2.getByText('Вестник · Иван Иванов').waitFor();
});

await step('no script or console errors on the portal pages', async () => {
  for (const p of pages) assert(p.errors.length === 0, p.errors.join('\n'));
});

if (bob) bob.kill();
await browser.close();
const bytes = (await (await fetch(BASE + '/widget.js', { headers: { 'Accept-Encoding': 'identity' } })).arrayBuffer()).byteLength;
console.log(`METRICS widget_js_bytes=${bytes}`);
process.exit(failed ? 1 : 0);
