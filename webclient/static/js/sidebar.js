// The sidebar's list view: recent conversations, the company tree and
// search results (people, chats and messages).
import { h, replace, icon } from './dom.js';
import { snippetParts } from './text.js';
import { shortStamp } from './format.js';
import { convKey } from './proto.js';
import { S, V, t, lang, LS, app, request } from './state.js';
import { avatar, convAvatar, dot, presenceOf, presenceText } from './ui.js';
import { isMuted } from './mute.js';
import { stripFileLines } from './files.js';
import { noticeText } from './notice.js';
import { plainLine } from './rich.js';

// systemText is a system message in the reader's language when the
// server gave its event (notice.js), else its text.
export function systemText(m) {
  return noticeText(m.event, (id) => S.users.get(id)?.name, t) || m.body;
}

export function nameOfConv(key) {
  if (key[0] === 'c') return S.chats.get(Number(key.slice(1)))?.title || '…';
  return S.users.get(Number(key.slice(1)))?.name || '…';
}

function matches(s) {
  const q = S.query.trim().toLowerCase();
  return !q || String(s || '').toLowerCase().includes(q);
}

export function renderList() {
  if (!V.list) return;
  let total = 0;
  for (const c of S.convs.values()) if (!isMuted(c.key)) total += c.unread || 0;
  const tc = V.tabs.querySelector('[data-tab=chats] .tab-count');
  tc.textContent = total ? String(total) : '';
  if (S.query.trim()) return renderSearch();
  if (S.tab === 'chats') renderRecent(); else renderCompany();
}

// previewText is a message as one line of plain text (no formatting
// marks): its text without the file URL lines, or the files' names.
export function previewText(m) {
  if (m.kind === 'system' && m.event) return systemText(m);
  const text = plainLine(stripFileLines(m.body, m.files));
  if (text || !m.files?.length) return text;
  return '📎 ' + m.files.map((f) => f.name).join(', ');
}

function previewOf(m) {
  if (!m) return '';
  if (m.deleted) return t('deleted');
  const who = m.from === S.me.id ? t('you') + ': ' : (m.chat && m.from ? (S.users.get(m.from)?.name.split(' ')[0] || '') + ': ' : '');
  return who + previewText(m);
}

function convRow(key, c) {
  const typing = S.typing.get(key);
  const isUser = key[0] === 'u';
  const id = Number(key.slice(1));
  const muted = isMuted(key);
  return h('button.row' + (S.open === key ? '.active' : ''), { role: 'listitem', onclick: () => app.openConv(key), dataset: { key } },
    h('span.av-wrap', null, convAvatar(key), isUser ? dot(id) : null),
    h('span.row-main', null,
      h('span.row-top', null, h('span.row-name', null, nameOfConv(key)),
        muted ? h('span.row-muted', { title: t('muted'), 'aria-label': t('muted') }, icon('belloff')) : null,
        c.last ? h('span.row-time', null, shortStamp(c.last.time, Date.now(), lang)) : null),
      h('span.row-bottom', null,
        typing ? h('span.row-preview.typing', null, t('typing')) : h('span.row-preview', null, previewOf(c.last)),
        c.unread ? h('span.unread' + (muted ? '.muted' : ''), null, c.unread > 99 ? '99+' : String(c.unread)) : null)));
}

function renderRecent() {
  const rows = [...S.convs.values()].filter((c) => c.last || c.key === S.open)
    .sort((a, b) => (b.last?.id || 0) - (a.last?.id || 0));
  // Chats the user belongs to but where nobody has written yet (newest first).
  const shown = new Set(rows.map((c) => c.key));
  const quiet = [...S.chats.values()].filter((ch) => ch.member !== false && !shown.has('c' + ch.id)).sort((a, b) => b.id - a.id);
  for (const ch of quiet) rows.push(S.convs.get('c' + ch.id) || { key: 'c' + ch.id, unread: 0 });
  if (!rows.length) { replace(V.list, h('div.list-empty', null, t('noChats'))); return; }
  replace(V.list, rows.map((c) => convRow(c.key, c)));
}

// userRow opens the conversation with a colleague; the card is the
// button beside it.
function userRow(u, pad) {
  return h('div.row.person' + (S.open === 'u' + u.id ? '.active' : ''), { role: 'listitem', dataset: { user: u.id }, style: pad ? `padding-left:${pad}px` : null },
    h('button.row-open', { type: 'button', onclick: () => { if (u.id === S.me.id) app.openProfile(u.id); else app.openConv('u' + u.id); } },
      h('span.av-wrap', null, avatar(u.id, u.name), dot(u.id)),
      h('span.row-main', null,
        h('span.row-top', null, h('span.row-name', null, u.name)),
        h('span.row-bottom', null, h('span.row-preview', null, u.title || presenceText(u.id))))),
    h('button.icon-btn.row-card', { type: 'button', onclick: () => app.openProfile(u.id), 'aria-label': t('openProfile', { name: u.name }), title: t('profile') }, icon('info')));
}

function renderCompany() {
  const byParent = new Map();
  for (const d of S.depts) {
    const k = d.parent_id || 0;
    if (!byParent.has(k)) byParent.set(k, []);
    byParent.get(k).push(d);
  }
  const members = new Map();
  for (const u of S.users.values()) {
    const d = (u.departments || [])[0] || 0;
    if (!members.has(d)) members.set(d, []);
    members.get(d).push(u);
  }
  let saved = LS.get('depts');
  if (!saved) {
    // First visit: open the path to the user's own department.
    const path = [];
    let d = S.depts.find((x) => x.id === (S.me.departments || [])[0]);
    while (d) { path.push(d.id); d = S.depts.find((x) => x.id === d.parent_id); }
    saved = JSON.stringify(path);
  }
  const open = new Set(JSON.parse(saved));
  const out = [];
  const walk = (parent, depth) => {
    for (const d of byParent.get(parent) || []) {
      const people = (members.get(d.id) || []).sort((a, b) => (b.id === d.head_id) - (a.id === d.head_id) || a.name.localeCompare(b.name));
      const isOpen = depth === 0 || open.has(d.id);
      const online = people.filter((u) => presenceOf(u.id).show !== 'offline').length;
      out.push(h('button.dept' + (isOpen ? '.open' : ''), {
        style: `padding-left:${12 + depth * 14}px`, 'aria-expanded': String(isOpen),
        onclick: () => { if (open.has(d.id)) open.delete(d.id); else open.add(d.id); LS.set('depts', JSON.stringify([...open])); renderList(); },
      }, icon('chev', 'chev'), h('span.dept-name', null, d.name), h('span.dept-count', null, online ? `${online} / ${people.length}` : String(people.length))));
      if (isOpen) {
        for (const u of people) out.push(userRow(u, 18 + depth * 14));
        walk(d.id, depth + 1);
      }
    }
  };
  walk(0, 0);
  const orphans = members.get(0) || [];
  for (const u of orphans) out.push(userRow(u));
  replace(V.list, out.length ? out : h('div.list-empty', null, t('loadingHistory')));
}

let searchSeq = 0, searchTimer = null;
function renderSearch() {
  const people = [...S.users.values()].filter((u) => matches(u.name) || matches(u.login) || matches(u.title)).slice(0, 30);
  const chats = [...S.chats.values()].filter((c) => c.member !== false && matches(c.title)).slice(0, 10);
  const hits = h('div.hits');
  const out = [
    ...chats.map((c) => convRow('c' + c.id, S.convs.get('c' + c.id) || {})),
    ...people.map((u) => userRow(u)),
    hits,
  ];
  replace(V.list, out);
  const q = S.query.trim();
  const seq = ++searchSeq;
  if (q.length < 2) { if (!chats.length && !people.length) replace(hits, h('div.list-empty', null, t('nothingFound'))); return; }
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    try {
      const d = await request('search', { text: q, limit: 20 });
      if (seq !== searchSeq) return;
      const rows = (d.hits || []).map((hit) => {
        const m = hit.message;
        const key = convKey(m, S.me.id);
        return h('button.row.hit', { onclick: () => app.openConv(key, m.id) },
          h('span.av-wrap', null, convAvatar(key)),
          h('span.row-main', null,
            h('span.row-top', null, h('span.row-name', null, nameOfConv(key)), h('span.row-time', null, shortStamp(m.time, Date.now(), lang))),
            h('span.row-preview.snippet', null, snippetParts(hit.snippet || m.body).map((p) => (p.mark ? h('mark', null, p.text) : p.text)))));
      });
      if (rows.length) replace(hits, h('div.list-label', null, t('search')), rows);
      else if (!chats.length && !people.length) replace(hits, h('div.list-empty', null, t('nothingFound')));
    } catch { /* search unavailable */ }
  }, 250);
}
