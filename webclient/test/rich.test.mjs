import test from 'node:test';
import assert from 'node:assert/strict';
import { parseRich, plainOf, safeLink, renderRich, renderAttach, renderKeyboard } from '../static/js/rich.js';

// A minimal DOM: enough to see what the renderers build, and that user
// text only ever becomes text nodes.
class Node {
  constructor(tag) { this.tagName = tag; this.childNodes = []; this.attrs = {}; this.style = {}; this.dataset = {}; this.className = ''; this.listeners = {}; }
  appendChild(c) { this.childNodes.push(c); return c; }
  get firstChild() { return this.childNodes[0] || null; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  addEventListener(k, f) { this.listeners[k] = f; }
  set textContent(v) { this.childNodes = [{ text: String(v) }]; }
  get textContent() { return this.childNodes.map((c) => (c.text !== undefined ? c.text : c.textContent)).join(''); }
  set innerHTML(_) { throw new Error('innerHTML used'); }
}
const doc = { createElement: (t) => new Node(t), createTextNode: (v) => ({ text: String(v) }) };
const all = (n, out = []) => { out.push(n); for (const c of n.childNodes || []) all(c, out); return out; };
const tags = (n) => all(n).filter((x) => x.tagName).map((x) => x.tagName);

test('BB-codes parse into a tree', () => {
  assert.deepEqual(parseRich('[b]bold[/b] [I]it[/I] [u]u[/u] [s]s[/s][br]next'), [
    { t: 'b', c: [{ t: 'text', v: 'bold' }] }, { t: 'text', v: ' ' },
    { t: 'i', c: [{ t: 'text', v: 'it' }] }, { t: 'text', v: ' ' },
    { t: 'u', c: [{ t: 'text', v: 'u' }] }, { t: 'text', v: ' ' },
    { t: 's', c: [{ t: 'text', v: 's' }] }, { t: 'br' }, { t: 'text', v: 'next' },
  ]);
  assert.deepEqual(parseRich('[url=https://a.test/x]site[/url] [url]https://b.test[/url]'), [
    { t: 'link', href: 'https://a.test/x', c: [{ t: 'text', v: 'site' }] }, { t: 'text', v: ' ' },
    { t: 'link', href: 'https://b.test/', c: [{ t: 'text', v: 'https://b.test' }] },
  ]);
  assert.deepEqual(parseRich('hi [user=5]Ivan[/user] in [chat=7]Sales[/chat]'), [
    { t: 'text', v: 'hi ' }, { t: 'user', id: 5, c: [{ t: 'text', v: 'Ivan' }] }, { t: 'text', v: ' in ' },
    { t: 'chat', id: 7, c: [{ t: 'text', v: 'Sales' }] },
  ]);
  assert.deepEqual(parseRich('[quote]a[/quote]after'), [{ t: 'quote', c: [{ t: 'text', v: 'a' }] }, { t: 'text', v: 'after' }]);
  assert.deepEqual(parseRich('[code][b]x[/b] *y*[/code]'), [{ t: 'pre', v: '[b]x[/b] *y*' }]);
});

test('unclosed and unknown tags stay text', () => {
  assert.equal(plainOf(parseRich('[b]never closed')), '[b]never closed');
  assert.equal(plainOf(parseRich('a [/i] b [img]x[/img]')), 'a [/i] b [img]x[/img]');
  assert.equal(plainOf(parseRich('[code]no end')), '[code]no end');
});

test('unsafe links are text, never links', () => {
  for (const bad of ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,<b>', 'vbscript:x', '//evil.test', '/relative']) {
    const nodes = parseRich(`[url=${bad}]click[/url] [url]${bad}[/url]`);
    assert.ok(!JSON.stringify(nodes).includes('"link"'), bad);
  }
  assert.equal(plainOf(parseRich('[url=javascript:alert(1)]click[/url]')), 'click');
  assert.equal(safeLink('mailto:a@b.test'), 'mailto:a@b.test');
  assert.equal(safeLink('www.a.test'), 'https://www.a.test/');
  assert.equal(safeLink('ftp://a.test'), '');
});

test('message styling: *bold*, _italic_, ~strike~, `code`, code blocks, quotes', () => {
  assert.deepEqual(parseRich('a *bold* and _it_ ~no~ `x*y*`'), [
    { t: 'text', v: 'a ' }, { t: 'b', c: [{ t: 'text', v: 'bold' }] }, { t: 'text', v: ' and ' },
    { t: 'i', c: [{ t: 'text', v: 'it' }] }, { t: 'text', v: ' ' }, { t: 's', c: [{ t: 'text', v: 'no' }] },
    { t: 'text', v: ' ' }, { t: 'code', v: 'x*y*' },
  ]);
  assert.deepEqual(parseRich('2*3*4 and snake_case_name and * not *'), [{ t: 'text', v: '2*3*4 and snake_case_name and * not *' }]);
  assert.deepEqual(parseRich('> quoted\n> more\nreply'), [
    { t: 'quote', c: [{ t: 'text', v: 'quoted' }, { t: 'br' }, { t: 'text', v: 'more' }] }, { t: 'text', v: 'reply' },
  ]);
  assert.deepEqual(parseRich('look:\n```\nif (a < b) { *x* }\n```\ndone'), [
    { t: 'text', v: 'look:' }, { t: 'pre', v: 'if (a < b) { *x* }' }, { t: 'text', v: 'done' },
  ]);
  assert.deepEqual(parseRich('[b]x[/b]> not a quote'), [{ t: 'b', c: [{ t: 'text', v: 'x' }] }, { t: 'text', v: '> not a quote' }]);
});

test('rendering makes text nodes and safe links only', () => {
  const root = renderRich(doc, new Node('div'), '<img src=x onerror=alert(1)> *b* [url=https://a.test]<i>x</i>[/url] see https://c.test/p.');
  assert.deepEqual(tags(root), ['div', 'strong', 'a', 'a']);
  const links = all(root).filter((x) => x.tagName === 'a');
  assert.deepEqual(links.map((a) => a.href), ['https://a.test/', 'https://c.test/p']);
  assert.ok(links.every((a) => a.rel === 'noopener noreferrer' && a.target === '_blank'));
  assert.equal(root.textContent, '<img src=x onerror=alert(1)> b <i>x</i> see https://c.test/p.');
});

test('attachment blocks render as a card', () => {
  const card = renderAttach(doc, {
    color: '#29619b',
    blocks: [
      { user: { name: 'CRM <bot>' } },
      { link: { name: 'Deal', desc: '[b]big[/b]', link: 'https://crm.test/1' } },
      { link: { name: 'evil', link: 'javascript:alert(1)' } },
      { delimiter: { size: 200, color: 'red;background:url(x)' } },
      { grid: [{ name: 'Sum', value: '100', display: 'LINE' }, { name: 'Owner', value: 'Ivan', display: 'ROW', color: '#f00' }] },
      { image: [{ name: 'chart', link: 'https://other.test/c.png' }, { name: 'local', link: 'https://me.test/i.png' }] },
      { file: [{ name: 'deal.pdf', link: 'https://crm.test/d.pdf', size: 2048 }] },
    ],
  }, { origin: 'https://me.test' });
  assert.equal(card.style.borderLeftColor, '#29619b');
  const links = all(card).filter((x) => x.tagName === 'a').map((a) => a.href);
  assert.deepEqual(links, ['https://crm.test/1', 'https://other.test/c.png', 'https://me.test/i.png', 'https://crm.test/d.pdf']);
  const imgs = all(card).filter((x) => x.tagName === 'img');
  assert.equal(imgs.length, 1, 'only a same-origin image is loaded');
  assert.equal(all(card).find((x) => x.tagName === 'hr').style.borderTopColor, undefined);
  assert.ok(card.textContent.includes('CRM <bot>') && card.textContent.includes('big') && card.textContent.includes('2.0 KB'));
  assert.ok(!card.textContent.includes('[b]'));
});

test('keyboard: rows, link buttons open links, commands call back', () => {
  const pressed = [];
  const kb = renderKeyboard(doc, [
    { text: 'Yes', command: 'vote', command_params: '1' },
    { text: 'Site', link: 'https://a.test' },
    { text: 'Bad', link: 'javascript:alert(1)' },
    { type: 'NEWLINE' },
    { text: 'Off', command: 'x', disabled: true },
  ], (i, b) => pressed.push([i, b.command]));
  assert.equal(kb.childNodes.length, 2);
  const [yes, site] = kb.childNodes[0].childNodes;
  assert.equal(kb.childNodes[0].childNodes.length, 2, 'a javascript: link button is left out');
  assert.equal(site.tagName, 'a');
  assert.equal(site.href, 'https://a.test/');
  yes.listeners.click({ stopPropagation() {} });
  assert.deepEqual(pressed, [[0, 'vote']]);
  assert.equal(kb.childNodes[1].childNodes[0].disabled, true);
});

test('plainLine: a preview without formatting marks', async () => {
  const { plainLine } = await import('../static/js/rich.js');
  assert.equal(plainLine('*Важно:* сдать _отчёт_ до `пятницы`'), 'Важно: сдать отчёт до пятницы');
  assert.equal(plainLine('[b]Build[/b] [url=https://ci.example/1]#1[/url] passed\n[i]all green[/i]'), 'Build #1 passed all green');
  assert.equal(plainLine('> quoted\nanswer'), 'quoted answer');
  assert.equal(plainLine('2 * 3 = 6, a_b_c'), '2 * 3 = 6, a_b_c');
  assert.equal(plainLine('<b>not markup</b>'), '<b>not markup</b>');
});
