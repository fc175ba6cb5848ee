// Rich text and rich messages, safely. parseRich turns a message text into
// a small tree: BB-codes as Bitrix24 writes them ([b] [i] [u] [s] [url]
// [url=…] [user=ID] [chat=ID] [br] [quote] [code]) and the simple
// formatting people type (XEP-0393 message styling: *bold*, _italic_,
// ~strike~, `code`, ```code block```, "> " quotes), with http(s) and www
// links found in plain text. renderNodes builds DOM from the tree with
// createElement and text nodes only — user text is never markup — and
// links only for http, https and mailto. renderAttach and renderKeyboard
// draw a message's attachment blocks and keyboard buttons.

import { tokenize, splitMentions, safeHref } from './text.js';

// safeLink: an http(s) or mailto URL, normalized, or ''.
export function safeLink(raw) {
  const s = String(raw || '').trim();
  if (/^mailto:/i.test(s)) {
    try { const u = new URL(s); return u.protocol === 'mailto:' && u.pathname ? u.href : ''; } catch { return ''; }
  }
  if (!/^(https?:\/\/|www\.)/i.test(s)) return '';
  return safeHref(s);
}

const TAG_RE = /\[(\/?)(b|i|u|s|url|user|chat|quote|code|send|put|call|color|size)(?:=([^\]\n]*))?\]|\[br\]/gi;
const KEEP_TEXT = new Set(['send', 'put', 'call', 'color', 'size']);

// parseBB parses BB-codes; text runs are left for the styling pass.
// Tags that are never closed stay as the text they were.
function parseBB(s) {
  const root = { t: 'root', c: [] };
  const stack = [root];
  const top = () => stack[stack.length - 1];
  const text = (v, at) => { if (v) top().c.push({ t: 'raw', v, ls: at === 0 || s[at - 1] === '\n' }); };
  let last = 0;
  TAG_RE.lastIndex = 0;
  for (let m; (m = TAG_RE.exec(s));) {
    text(s.slice(last, m.index), last);
    last = TAG_RE.lastIndex;
    const [whole, close, nameRaw, arg] = m;
    if (!nameRaw) { top().c.push({ t: 'br' }); continue; }
    const name = nameRaw.toLowerCase();
    if (!close && name === 'code') {
      const end = s.toLowerCase().indexOf('[/code]', last);
      if (end < 0) { text(whole, m.index); continue; }
      top().c.push({ t: 'pre', v: s.slice(last, end).replace(/^\n|\n$/g, '') });
      last = TAG_RE.lastIndex = end + 7;
      continue;
    }
    if (!close) {
      const node = { t: name, arg: arg ?? null, c: [], open: whole };
      top().c.push(node);
      stack.push(node);
      continue;
    }
    const at = stack.map((n) => n.t).lastIndexOf(name);
    if (at <= 0) { text(whole, m.index); continue; }
    while (stack.length > at) stack.pop();
  }
  text(s.slice(last), last);
  // Unclosed tags become their text again.
  const fix = (n) => {
    const out = [];
    for (const k of n.c || []) {
      if (k.c) k.c = fix(k);
      if (k.t !== 'root' && k.open !== undefined && stack.includes(k)) {
        out.push({ t: 'raw', v: k.open, ls: false }, ...k.c);
      } else out.push(k);
    }
    return out;
  };
  root.c = fix(root);
  return root.c;
}

// Styling (XEP-0393): blocks first (``` fences, "> " quotes, each
// starting a line), then spans within a line. lineStart tells whether s
// begins a line of the message (a text run after a BB-code does not).
function styleBlocks(s, lineStart = true) {
  const out = [];
  const lines = s.split('\n');
  let para = [];
  const flush = () => {
    para.forEach((l, k) => { if (k) out.push({ t: 'br' }); out.push(...styleSpans(l)); });
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const blockOK = i > 0 || lineStart;
    if (blockOK && line.startsWith('```')) {
      let end = -1;
      for (let j = i + 1; j < lines.length; j++) if (lines[j].startsWith('```')) { end = j; break; }
      if (end > 0) {
        flush();
        out.push({ t: 'pre', v: lines.slice(i + 1, end).join('\n') });
        i = end;
        continue;
      }
    }
    if (blockOK && line.startsWith('>')) {
      flush();
      const q = [];
      while (i < lines.length && lines[i].startsWith('>')) q.push(lines[i++].replace(/^> ?/, ''));
      i--;
      out.push({ t: 'quote', c: styleBlocks(q.join('\n')) });
      continue;
    }
    para.push(line);
  }
  flush();
  return out;
}

// tidy drops a line break beside a block (quote, code block): the block
// already stands on its own lines.
function tidy(nodes) {
  const block = (n) => n && (n.t === 'quote' || n.t === 'pre');
  return nodes.filter((n, i) => !(n.t === 'br' && (block(nodes[i - 1]) || block(nodes[i + 1]))))
    .map((n) => (n.c ? { ...n, c: tidy(n.c) } : n));
}

const SPAN = { '*': 'b', _: 'i', '~': 's', '`': 'code' };
const OPEN_OK = /[\s([{"'«—-]/;
const CLOSE_OK = /[\s)\]}"'».,!?;:—-]/;

function styleSpans(s) {
  const out = [];
  let buf = '';
  const push = (n) => { if (buf) { out.push({ t: 'text', v: buf }); buf = ''; } out.push(n); };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const kind = SPAN[ch];
    if (kind && (i === 0 || OPEN_OK.test(s[i - 1])) && i + 1 < s.length && !/\s/.test(s[i + 1]) && s[i + 1] !== ch) {
      let j = i + 1;
      for (; j < s.length && s[j] !== '\n'; j++) {
        if (s[j] === ch && !/\s/.test(s[j - 1]) && (j + 1 === s.length || CLOSE_OK.test(s[j + 1]))) break;
      }
      if (j < s.length && s[j] === ch && j > i + 1) {
        const inner = s.slice(i + 1, j);
        push(kind === 'code' ? { t: 'code', v: inner } : { t: kind, c: styleSpans(inner) });
        i = j;
        continue;
      }
    }
    buf += ch;
  }
  if (buf) out.push({ t: 'text', v: buf });
  return out;
}

// parseRich parses a message text into nodes:
// {t:'text',v} {t:'br'} {t:'b'|'i'|'u'|'s'|'quote',c} {t:'code'|'pre',v}
// {t:'link',href,c} {t:'user'|'chat',id,c}.
export function parseRich(text) {
  const conv = (nodes) => {
    const out = [];
    for (const n of nodes) {
      if (n.t === 'raw') out.push(...styleBlocks(n.v, n.ls));
      else if (n.t === 'br' || n.t === 'pre') out.push(n);
      else if (n.t === 'url') {
        const label = conv(n.c);
        const plain = n.c.map((k) => k.v || '').join('');
        const href = safeLink(n.arg ?? plain);
        if (href) out.push({ t: 'link', href, c: label.length ? label : [{ t: 'text', v: n.arg }] });
        else out.push(...(label.length ? label : [{ t: 'text', v: n.arg ?? '' }])); // a link this client will not open: its text only
      } else if (n.t === 'user' || n.t === 'chat') {
        const id = parseInt(n.arg, 10);
        out.push(id > 0 ? { t: n.t, id, c: conv(n.c) } : { t: 'text', v: '' }, ...(id > 0 ? [] : conv(n.c)));
      } else if (KEEP_TEXT.has(n.t)) out.push(...conv(n.c));
      else out.push({ t: n.t, c: conv(n.c) });
    }
    return out.filter((n) => !(n.t === 'text' && n.v === ''));
  };
  return tidy(conv(parseBB(String(text ?? ''))));
}

// plainOf is a node list's text (for previews and names).
export function plainOf(nodes) {
  return nodes.map((n) => (n.t === 'br' ? '\n' : n.v !== undefined ? n.v : plainOf(n.c || []))).join('');
}

// plainLine is a message text as one line of plain text, without its
// formatting marks (list previews, desktop notifications).
export function plainLine(text) {
  const line = (nodes) => nodes.map((n) => (n.t === 'br' ? ' ' : n.v !== undefined ? (n.t === 'pre' ? ` ${n.v} ` : n.v)
    : n.t === 'quote' ? ` ${line(n.c)} ` : line(n.c || []))).join('');
  return line(parseRich(text)).replace(/\s+/g, ' ').trim();
}

const TAGS = { b: 'strong', i: 'em', u: 'u', s: 's', quote: 'blockquote' };

// renderNodes appends nodes to parent. opts: {mentions: {names, me}
// (marked in text), onUser(id), onChat(id)}.
export function renderNodes(doc, parent, nodes, opts = {}) {
  for (const n of nodes) {
    if (n.t === 'text') renderText(doc, parent, n.v, opts);
    else if (n.t === 'br') parent.appendChild(doc.createElement('br'));
    else if (n.t === 'code') {
      const el = doc.createElement('code');
      el.textContent = n.v;
      parent.appendChild(el);
    } else if (n.t === 'pre') {
      const pre = doc.createElement('pre');
      const code = doc.createElement('code');
      code.textContent = n.v;
      pre.appendChild(code);
      parent.appendChild(pre);
    } else if (n.t === 'link') {
      const a = doc.createElement('a');
      a.href = n.href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      renderNodes(doc, a, n.c, { ...opts, noLinks: true });
      parent.appendChild(a);
    } else if (n.t === 'user' || n.t === 'chat') {
      const b = doc.createElement('button');
      b.type = 'button';
      b.className = n.t === 'user' ? 'mention bb-user' : 'chat-ref';
      b.dataset[n.t] = String(n.id);
      renderNodes(doc, b, n.c, { ...opts, noLinks: true });
      const f = n.t === 'user' ? opts.onUser : opts.onChat;
      if (f) b.addEventListener('click', (e) => { e.stopPropagation(); f(n.id); });
      parent.appendChild(b);
    } else if (TAGS[n.t]) {
      const el = doc.createElement(TAGS[n.t]);
      renderNodes(doc, el, n.c, opts);
      parent.appendChild(el);
    }
  }
  return parent;
}

function renderText(doc, parent, s, opts) {
  const toks = opts.noLinks ? [{ t: 'text', v: s }] : tokenize(s);
  for (const tok of toks) {
    if (tok.t === 'br') parent.appendChild(doc.createElement('br'));
    else if (tok.t === 'link') {
      const a = doc.createElement('a');
      a.href = tok.href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = tok.v;
      parent.appendChild(a);
    } else if (opts.mentions?.names?.length && tok.v.includes('@')) {
      for (const p of splitMentions(tok.v, opts.mentions.names)) {
        if (p.mention < 0) { parent.appendChild(doc.createTextNode(p.text)); continue; }
        const el = doc.createElement('span');
        el.className = opts.mentions.me?.includes(p.mention) ? 'mention me' : 'mention';
        el.textContent = p.text;
        parent.appendChild(el);
      }
    } else parent.appendChild(doc.createTextNode(tok.v));
  }
}

// renderRich renders a message text with its formatting.
export function renderRich(doc, parent, text, opts) {
  return renderNodes(doc, parent, parseRich(text), opts);
}

function el(doc, tag, cls, text) {
  const e = doc.createElement(tag);
  if (cls) e.className = cls;
  if (text != null && text !== '') e.textContent = String(text);
  return e;
}

function link(doc, href, cls, text) {
  const a = el(doc, 'a', cls, text);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

const COLOR_RE = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

// sameOrigin: images load only from this server (the page's CSP); others
// are shown as links.
function sameOrigin(url, origin) {
  try { return new URL(url).origin === origin; } catch { return false; }
}

function humanSize(n) {
  if (!(n > 0)) return '';
  const u = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

// renderAttach draws an attachment's blocks as a card. opts: as for
// renderNodes, plus origin (images from elsewhere become links).
export function renderAttach(doc, attach, opts = {}) {
  const card = el(doc, 'div', 'rich-attach');
  if (COLOR_RE.test(attach?.color || '')) card.style.borderLeftColor = attach.color;
  for (const b of attach?.blocks || []) {
    if (b.message) {
      card.appendChild(renderRich(doc, el(doc, 'div', 'ra-message'), b.message, opts));
    } else if (b.link) {
      const box = el(doc, 'div', 'ra-link');
      const href = safeLink(b.link.link);
      const name = b.link.name || b.link.link || '';
      box.appendChild(href ? link(doc, href, 'ra-link-name', name) : el(doc, 'div', 'ra-link-name', name));
      if (b.link.desc) box.appendChild(renderRich(doc, el(doc, 'div', 'ra-desc'), b.link.desc, opts));
      card.appendChild(box);
    } else if (b.image) {
      const box = el(doc, 'div', 'ra-images');
      for (const im of b.image) {
        const href = safeLink(im.link);
        if (!href) continue;
        if (sameOrigin(href, opts.origin)) {
          const a = link(doc, href, 'ra-image');
          const img = doc.createElement('img');
          img.src = safeLink(im.preview) && sameOrigin(im.preview, opts.origin) ? safeLink(im.preview) : href;
          img.alt = im.name || '';
          img.loading = 'lazy';
          a.appendChild(img);
          box.appendChild(a);
        } else box.appendChild(link(doc, href, 'ra-image-link', im.name || href));
      }
      card.appendChild(box);
    } else if (b.file) {
      for (const f of b.file) {
        const href = safeLink(f.link);
        const row = el(doc, 'div', 'ra-file');
        row.appendChild(href ? link(doc, href, 'ra-file-name', f.name || href) : el(doc, 'span', 'ra-file-name', f.name));
        if (f.size > 0) row.appendChild(el(doc, 'span', 'ra-size', humanSize(f.size)));
        card.appendChild(row);
      }
    } else if (b.grid) {
      const grid = el(doc, 'div', 'ra-grid');
      for (const it of b.grid) {
        const display = String(it.display || 'BLOCK').toLowerCase();
        const row = el(doc, 'div', 'ra-item ra-' + (['line', 'row', 'table'].includes(display) ? display : 'block'));
        if (it.name) row.appendChild(el(doc, 'span', 'ra-name', it.name));
        const val = el(doc, 'span', 'ra-value');
        if (COLOR_RE.test(it.color || '')) val.style.color = it.color;
        const href = safeLink(it.link);
        if (href) val.appendChild(link(doc, href, '', it.value || it.link));
        else renderRich(doc, val, it.value || '', opts);
        row.appendChild(val);
        grid.appendChild(row);
      }
      card.appendChild(grid);
    } else if (b.delimiter) {
      const hr = el(doc, 'hr', 'ra-delimiter');
      if (COLOR_RE.test(b.delimiter.color || '')) hr.style.borderTopColor = b.delimiter.color;
      if (b.delimiter.size > 0) hr.style.maxWidth = Math.min(b.delimiter.size, 2000) + 'px';
      card.appendChild(hr);
    } else if (b.user) {
      const row = el(doc, 'div', 'ra-user');
      const href = safeLink(b.user.link);
      if (b.user.avatar && sameOrigin(b.user.avatar, opts.origin) && safeLink(b.user.avatar)) {
        const img = doc.createElement('img');
        img.src = safeLink(b.user.avatar);
        img.alt = '';
        img.className = 'ra-avatar';
        row.appendChild(img);
      }
      if (b.user.user_id > 0 && opts.onUser) {
        const btn = el(doc, 'button', 'ra-user-name linkish', b.user.name);
        btn.type = 'button';
        btn.addEventListener('click', () => opts.onUser(b.user.user_id));
        row.appendChild(btn);
      } else row.appendChild(href ? link(doc, href, 'ra-user-name', b.user.name) : el(doc, 'span', 'ra-user-name', b.user.name));
      card.appendChild(row);
    }
  }
  return card;
}

// renderKeyboard draws the buttons in rows (NEWLINE starts a row). A
// link button opens its link; any other press calls onPress(index,
// button), which asks the server (command) or acts in the client.
export function renderKeyboard(doc, buttons, onPress) {
  const kb = el(doc, 'div', 'rich-keyboard');
  kb.setAttribute('role', 'group');
  let row = el(doc, 'div', 'kb-row');
  (buttons || []).forEach((b, i) => {
    if (String(b.type || '').toUpperCase() === 'NEWLINE') {
      if (row.firstChild) kb.appendChild(row);
      row = el(doc, 'div', 'kb-row');
      return;
    }
    const href = b.link ? safeLink(b.link) : '';
    let node;
    if (b.link) {
      if (!href) return; // a link this client will not open
      node = link(doc, href, 'kb-btn kb-link', b.text);
    } else {
      node = el(doc, 'button', 'kb-btn', b.text);
      node.type = 'button';
      if (b.disabled) node.disabled = true;
      else node.addEventListener('click', (e) => { e.stopPropagation(); onPress?.(i, b, node); });
    }
    if (COLOR_RE.test(b.bg_color || '')) node.style.backgroundColor = b.bg_color;
    if (COLOR_RE.test(b.text_color || '')) node.style.color = b.text_color;
    if (String(b.display || '').toUpperCase() === 'BLOCK') node.className += ' kb-block';
    row.appendChild(node);
  });
  if (row.firstChild) kb.appendChild(row);
  return kb;
}
