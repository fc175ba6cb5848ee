// The web messenger: state, the bridge connection and the views.
import { h, replace, clear, icon } from './dom.js';
import { makeT, pickLang } from './i18n.js';
import { renderBody, snippetParts } from './text.js';
import { formatTime, dayLabel, shortStamp, lastSeen, initials, colorFor, groupMessages } from './format.js';
import { Bridge, newOriginId, mergeMessages, convKey } from './proto.js';

const lang = pickLang(navigator.languages || [navigator.language]);
const t = makeT(lang);
document.documentElement.lang = lang;
document.title = t('appName');

const LS = {
  get(k) { try { return localStorage.getItem('vestnik.' + k); } catch { return null; } },
  set(k, v) { try { if (v == null || v === '') localStorage.removeItem('vestnik.' + k); else localStorage.setItem('vestnik.' + k, v); } catch { /* private mode */ } },
};

const S = {
  me: null,
  users: new Map(), // id -> user
  depts: [],
  chats: new Map(), // id -> chat
  presence: new Map(), // id -> {show, status, last_seen}
  convs: new Map(), // key -> {key, last, unread, peerRead, peerDelivered}
  msgs: new Map(), // key -> {list, complete, loading}
  typing: new Map(), // key -> {name, until}
  notes: [], notesUnread: 0,
  tab: 'chats', query: '', open: null, editing: null, replying: null,
  conn: 'connecting', hiddenUnread: 0,
  seen: new Set(), // message ids already counted
};

let bridge;
const root = document.getElementById('app');

// ---------- boot and login ----------

async function boot() {
  let me = null;
  try {
    const r = await fetch('/session', { credentials: 'same-origin' });
    if (r.ok) me = (await r.json()).user;
  } catch { /* offline: show login */ }
  if (me) start(me); else showLogin();
}

function showLogin(errKey) {
  document.body.className = 'login-page';
  const err = h('div.login-error', { role: 'alert' }, errKey ? t(errKey) : '');
  const login = h('input', { name: 'login', autocomplete: 'username', required: true, autofocus: true, placeholder: t('login'), 'aria-label': t('login') });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, placeholder: t('password'), 'aria-label': t('password') });
  const btn = h('button.btn-primary', { type: 'submit' }, t('signIn'));
  const form = h('form.login-card', {
    onsubmit: async (e) => {
      e.preventDefault();
      btn.disabled = true; btn.textContent = t('signingIn'); err.textContent = '';
      try {
        const r = await fetch('/login', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ login: login.value.trim(), password: pass.value }) });
        if (r.ok) { start((await r.json()).user); return; }
        err.textContent = t(r.status === 401 ? 'badLogin' : 'loginFailed');
      } catch { err.textContent = t('loginFailed'); }
      btn.disabled = false; btn.textContent = t('signIn');
    },
  },
  h('div.login-logo', null, logo()),
  h('h1', null, t('appName')),
  h('p.login-hint', null, t('loginHint')),
  login, pass, err, btn);
  replace(root, h('div.login-wrap', null, form));
}

function logo() {
  return h('div.logo-mark', null, icon('send'));
}

function start(me) {
  S.me = me;
  S.users.set(me.id, me);
  document.body.className = 'app-page';
  buildLayout();
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  bridge = new Bridge({
    url: `${proto}//${location.host}/ws`,
    WebSocket,
    lastId: 0,
    onEvent,
    onState: (s) => {
      S.conn = s;
      if (s === 'unauthorized') { showLogin(); return; }
      renderConn();
    },
  });
  bridge.connect();
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) { S.hiddenUnread = 0; updateTitle(); markOpenRead(); }
  });
}

let firstSync = true;
async function onSynced() {
  if (firstSync) {
    firstSync = false;
    await Promise.all([loadContacts(), loadConversations(), loadNotifications()]);
    const last = LS.get('open');
    if (last && !S.open && window.innerWidth > 720) openConv(last);
    if ('Notification' in window && Notification.permission === 'default') {
      document.addEventListener('click', () => Notification.requestPermission().catch(() => {}), { once: true });
    }
  } else {
    // After a reconnect: refresh what may have changed meanwhile, and
    // retry a history page that failed while disconnected.
    loadConversations();
    loadNotifications();
    const box = S.open && S.msgs.get(S.open);
    if (box && !box.list.length && !box.complete) {
      const key = S.open;
      loadOlder(key).then(() => { if (S.open === key) renderMessages(true); });
    }
  }
}

async function loadContacts() {
  try {
    const d = await bridge.request('contacts');
    for (const u of d.users || []) S.users.set(u.id, u);
    S.depts = d.departments || [];
    for (const c of d.chats || []) S.chats.set(c.id, c);
    for (const p of d.presence || []) S.presence.set(p.user, p);
    if (d.users) { const me = S.users.get(S.me.id); if (me) S.me = me; }
    renderMe(); renderList(); renderHead();
  } catch (e) { console.warn('contacts', e); }
}

async function loadConversations() {
  try {
    const d = await bridge.request('conversations');
    for (const c of d.chats || []) S.chats.set(c.id, c);
    for (const c of d.conversations || []) {
      const old = S.convs.get(c.key) || {};
      S.convs.set(c.key, { ...old, ...c });
    }
    renderList(); renderHead();
  } catch (e) { console.warn('conversations', e); }
}

async function loadNotifications() {
  try {
    const d = await bridge.request('notifications', { limit: 50 });
    S.notes = d.notifications || [];
    S.notesUnread = d.unread || 0;
    renderBell();
  } catch (e) { console.warn('notifications', e); }
}

// ---------- events ----------

function onEvent(f) {
  switch (f.type) {
    case 'synced': onSynced(); break;
    case 'message': onMessage(f.message, f.replay); break;
    case 'edited': case 'deleted': onMessage(f.message, true); break;
    case 'reactions': onReactions(f.message_id, f.reactions); break;
    case 'receipt': onReceipt(f); break;
    case 'typing': onTyping(f); break;
    case 'presence': S.presence.set(f.user, f); renderPresence(f.user); break;
    case 'notification': onNotification(f.notification); break;
    case 'contacts_changed': loadContacts(); break;
    case 'chat_changed': onChatChanged(f); break;
    case 'command_answer': toast({ message: f.text }); break;
    case 'error': console.warn('bridge error', f.code, f.message); break;
    default: break;
  }
}

// A chat changed (any door): keep its fields; one we are no longer in
// leaves the list (and the pane, if open).
function onChatChanged(f) {
  const c = f.chat;
  if (!c) return;
  const key = 'c' + c.id;
  if (c.member === false) {
    S.chats.delete(c.id);
    S.convs.delete(key);
    if (S.open === key) closeConv();
    if (V.profile.dataset.chat === String(c.id)) closeProfile();
    renderList();
    return;
  }
  const known = S.chats.has(c.id);
  S.chats.set(c.id, { ...S.chats.get(c.id), ...c });
  if (!known) loadConversations();
  renderList(); renderHead();
  if (V.profile.dataset.chat === String(c.id)) openChatInfo(c.id);
}

async function leaveChat(id) {
  const c = S.chats.get(id);
  if (!c || !confirm(t('leaveConfirm', { title: c.title }))) return;
  try {
    await bridge.request('chat_leave', { chat: id });
    onChatChanged({ chat: { id, member: false } });
  } catch (e) { toast(e); }
}

let reloadingConvs = null;
function onMessage(m, quiet) {
  if (!m) return;
  if (m.chat && !S.chats.has(m.chat) && !reloadingConvs) {
    // A chat we did not know (just added to it): fetch the list again.
    reloadingConvs = loadConversations().finally(() => { reloadingConvs = null; });
  }
  const key = convKey(m, S.me.id);
  const box = S.msgs.get(key);
  const isNew = !S.seen.has(m.id) && !(box && box.list.some((x) => x.id === m.id));
  S.seen.add(m.id);
  if (box && !m.reactions && !m.deleted) {
    // An edit does not carry the reactions: keep those we have.
    const had = box.list.find((x) => x.id === m.id);
    if (had && had.reactions) m.reactions = had.reactions;
  }
  if (box) box.list = mergeMessages(box.list, [m]);
  const c = S.convs.get(key) || { key, unread: 0 };
  if (!c.last || c.last.id <= m.id) c.last = m;
  const mine = m.from === S.me.id;
  if (isNew && !mine && m.kind !== 'system' && !m.edited && !m.deleted) {
    const visible = S.open === key && !document.hidden;
    if (!visible && (!c.read || m.id > c.read)) c.unread = (c.unread || 0) + 1;
    if (S.typing.has(key)) { S.typing.delete(key); }
    if (!quiet && document.hidden) alertHidden(m);
  }
  S.convs.set(key, c);
  if (S.open === key) { renderMessages(true); markOpenRead(); renderHead(); }
  renderList();
}

// onReactions shows everyone's reactions on a message now.
function onReactions(id, reactions) {
  for (const [key, box] of S.msgs) {
    const m = box.list.find((x) => x.id === id);
    if (!m) continue;
    m.reactions = reactions && reactions.length ? reactions : undefined;
    if (S.open === key) renderMessages(false);
  }
}

// toggleReaction adds or takes off one of my reactions (the bridge takes
// my whole set, as XEP-0444 does).
async function toggleReaction(m, emoji) {
  const mine = (m.reactions || []).filter((r) => r.users.includes(S.me.id)).map((r) => r.emoji);
  const next = mine.includes(emoji) ? mine.filter((x) => x !== emoji) : [...mine, emoji];
  try {
    const d = await bridge.request('react', { message_id: m.id, reactions: next });
    onReactions(m.id, d.reactions);
  } catch (e) { toast(e); }
}

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '🙏'];

function onReceipt(f) {
  const key = f.chat ? 'c' + f.chat : 'u' + f.user;
  const c = S.convs.get(key) || { key, unread: 0 };
  if (f.state === 'read') c.peerRead = Math.max(c.peerRead || 0, f.message_id);
  c.peerDelivered = Math.max(c.peerDelivered || 0, f.message_id);
  S.convs.set(key, c);
  if (S.open === key) renderMessages(false);
}

function onTyping(f) {
  const key = f.chat ? 'c' + f.chat : 'u' + f.user;
  if (f.state === 'composing') S.typing.set(key, { user: f.user, until: Date.now() + 6000 });
  else S.typing.delete(key);
  renderHead(); renderList();
  setTimeout(() => {
    const x = S.typing.get(key);
    if (x && x.until <= Date.now()) { S.typing.delete(key); renderHead(); renderList(); }
  }, 6100);
}

function onNotification(n) {
  S.notes.unshift(n);
  S.notesUnread++;
  renderBell();
  if (document.hidden) alertHidden({ body: n.text, notification: true });
}

function alertHidden(m) {
  S.hiddenUnread++;
  updateTitle();
  if ('Notification' in window && Notification.permission === 'granted') {
    const from = m.notification ? t('notifications') : (S.users.get(m.from)?.name || t('newMessage'));
    try { new Notification(from, { body: String(m.body || '').slice(0, 200), tag: 'vestnik' }); } catch { /* ignored */ }
  }
}

function updateTitle() {
  document.title = (S.hiddenUnread ? `(${S.hiddenUnread}) ` : '') + t('appName');
}

// ---------- layout ----------

const V = {};

function buildLayout() {
  V.meBtn = h('button.me-btn', { onclick: toggleStatusMenu, title: t('status') });
  V.statusMenu = h('div.menu.hidden', { role: 'menu' });
  V.search = h('input.search', {
    type: 'search', placeholder: t('search'), 'aria-label': t('search'),
    oninput: (e) => { S.query = e.target.value; renderList(); },
  });
  V.bellCount = h('span.badge.hidden');
  V.bell = h('button.icon-btn.bell', { onclick: toggleBell, title: t('notifications'), 'aria-label': t('notifications') }, icon('bell'), V.bellCount);
  V.bellPanel = h('div.panel.notes.hidden');
  V.tabs = h('div.tabs', { role: 'tablist' },
    h('button.tab', { dataset: { tab: 'chats' }, onclick: () => setTab('chats') }, t('chats'), h('span.tab-count')),
    h('button.tab', { dataset: { tab: 'company' }, onclick: () => setTab('company') }, t('company')));
  V.list = h('div.list', { role: 'list' });
  V.connBar = h('div.conn.hidden');
  V.side = h('aside.sidebar', null,
    h('div.side-head', null, V.meBtn, h('div.search-wrap', null, icon('search', 'search-icon'), V.search), V.bell),
    V.statusMenu, V.bellPanel, V.tabs, V.connBar, V.list);

  V.headMain = h('div.head-main');
  V.head = h('header.chat-head.hidden', null,
    h('button.icon-btn.back', { onclick: closeConv, 'aria-label': t('back') }, icon('back')),
    V.headMain,
    h('button.icon-btn', { onclick: () => S.open && openProfileFor(S.open), 'aria-label': t('profile'), title: t('profile') }, icon('info')));
  V.msgs = h('div.messages', { onscroll: onScroll });
  V.editBar = h('div.edit-bar.hidden');
  V.input = h('textarea.input', { rows: 1, placeholder: t('writeMessage'), 'aria-label': t('writeMessage'), onkeydown: onKey, oninput: onInput });
  V.sendBtn = h('button.send', { onclick: submit, 'aria-label': t('send'), title: t('send') }, icon('send'));
  V.composer = h('footer.composer.hidden', null, V.editBar, h('div.compose-row', null, V.input, V.sendBtn));
  V.empty = h('div.empty', null, h('div.empty-inner', null, logo(), h('p', null, t('pickConversation'))));
  V.pane = h('main.pane', null, V.head, V.msgs, V.composer, V.empty);
  V.profile = h('div.profile-wrap.hidden', { onclick: (e) => { if (e.target === V.profile) closeProfile(); } });
  replace(root, h('div.layout', null, V.side, V.pane, V.profile));
  document.addEventListener('click', (e) => {
    if (!V.statusMenu.contains(e.target) && !V.meBtn.contains(e.target)) V.statusMenu.classList.add('hidden');
    if (!V.bellPanel.contains(e.target) && !V.bell.contains(e.target)) V.bellPanel.classList.add('hidden');
    if (!e.target.closest?.('.msg-menu, .msg-more')) document.querySelectorAll('.msg-menu').forEach((x) => x.remove());
  });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') { closeProfile(); V.bellPanel.classList.add('hidden'); if (S.editing) cancelEdit(); if (S.replying) cancelReply(); } });
  setTab(LS.get('tab') || 'chats');
  renderMe(); renderConn(); renderBell();
  setInterval(() => { if (S.tab === 'company' || S.open) { renderHead(); } }, 60000);
}

function setTab(tab) {
  S.tab = tab;
  LS.set('tab', tab);
  for (const b of V.tabs.children) b.classList.toggle('active', b.dataset.tab === tab);
  renderList();
}

function renderConn() {
  if (!V.connBar) return;
  const bad = S.conn === 'reconnecting' || S.conn === 'connecting';
  V.connBar.classList.toggle('hidden', !bad);
  V.connBar.textContent = S.conn === 'connecting' ? t('connecting') : t('reconnecting');
}

function avatar(id, name, size = '', color) {
  return h('span.avatar' + (size ? '.' + size : ''), { style: `background:${color || colorFor(id)}` }, initials(name));
}

function presenceOf(id) {
  return S.presence.get(id) || { show: 'offline' };
}

function dot(id) {
  return h('span.dot.' + presenceOf(id).show, { title: t(presenceOf(id).show) });
}

function presenceText(id) {
  const p = presenceOf(id);
  if (p.show === 'offline') return lastSeen(p.last_seen, Date.now(), lang, t);
  return t(p.show) + (p.status ? ' · ' + p.status : '');
}

function renderMe() {
  if (!V.meBtn) return;
  replace(V.meBtn, avatar(S.me.id, S.me.name), dot(S.me.id));
  const cur = presenceOf(S.me.id).show;
  replace(V.statusMenu,
    h('div.menu-title', null, S.me.name),
    ...['online', 'away', 'dnd'].map((s) => h('button.menu-item' + (cur === s ? '.on' : ''), { onclick: () => setStatus(s) }, h('span.dot.' + s), t('set' + s[0].toUpperCase() + s.slice(1)))),
    h('div.menu-sep'),
    h('button.menu-item', { onclick: () => openProfile(S.me.id) }, icon('info', 'mi'), t('profile')),
    h('button.menu-item', { onclick: logout }, icon('logout', 'mi'), t('logout')));
}

function toggleStatusMenu() { V.statusMenu.classList.toggle('hidden'); }

async function setStatus(show) {
  V.statusMenu.classList.add('hidden');
  S.presence.set(S.me.id, { ...presenceOf(S.me.id), show });
  renderMe();
  try { await bridge.request('presence', { show }); } catch (e) { console.warn(e); }
}

async function logout() {
  try { await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: '{}' }); } catch { /* ignored */ }
  bridge?.close();
  LS.set('open', null);
  location.reload();
}

// ---------- sidebar lists ----------

function nameOfConv(key) {
  if (key[0] === 'c') return S.chats.get(Number(key.slice(1)))?.title || '…';
  return S.users.get(Number(key.slice(1)))?.name || '…';
}

function convAvatar(key, size) {
  const id = Number(key.slice(1));
  if (key[0] === 'c') {
    const c = S.chats.get(id);
    return h('span.avatar.chat' + (size ? '.' + size : ''), { style: `background:${chatColor(c?.color)}` }, initials(c?.title || '#'));
  }
  return avatar(id, S.users.get(id)?.name, size);
}

const CHAT_COLORS = { RED: '#e5484d', GREEN: '#46a758', MINT: '#3fc1a5', LIGHT_BLUE: '#4fb3ea', DARK_BLUE: '#3e63dd', PURPLE: '#8e4ec6', AQUA: '#12a5b5', PINK: '#d6409f', LIME: '#8db600', BROWN: '#a07553', AZURE: '#0090ff', KHAKI: '#a39770', SAND: '#c2a26a', MARENGO: '#4c5c68', GRAY: '#8b8d98', GRAPHITE: '#3f4448' };
function chatColor(c) { return CHAT_COLORS[c] || '#6b7c93'; }

function matches(s) {
  const q = S.query.trim().toLowerCase();
  return !q || String(s || '').toLowerCase().includes(q);
}

function renderList() {
  if (!V.list) return;
  let total = 0;
  for (const c of S.convs.values()) total += c.unread || 0;
  const tc = V.tabs.querySelector('[data-tab=chats] .tab-count');
  tc.textContent = total ? String(total) : '';
  if (S.query.trim()) return renderSearch();
  if (S.tab === 'chats') renderRecent(); else renderCompany();
}

function previewOf(m) {
  if (!m) return '';
  if (m.deleted) return t('deleted');
  const who = m.from === S.me.id ? t('you') + ': ' : (m.chat && m.from ? (S.users.get(m.from)?.name.split(' ')[0] || '') + ': ' : '');
  return who + String(m.body || '').replace(/\s+/g, ' ');
}

function convRow(key, c) {
  const typing = S.typing.get(key);
  const isUser = key[0] === 'u';
  const id = Number(key.slice(1));
  return h('button.row' + (S.open === key ? '.active' : ''), { role: 'listitem', onclick: () => openConv(key), dataset: { key } },
    h('span.av-wrap', null, convAvatar(key), isUser ? dot(id) : null),
    h('span.row-main', null,
      h('span.row-top', null, h('span.row-name', null, nameOfConv(key)), c.last ? h('span.row-time', null, shortStamp(c.last.time, Date.now(), lang)) : null),
      h('span.row-bottom', null,
        typing ? h('span.row-preview.typing', null, t('typing')) : h('span.row-preview', null, previewOf(c.last)),
        c.unread ? h('span.unread', null, c.unread > 99 ? '99+' : String(c.unread)) : null)));
}

function renderRecent() {
  const rows = [...S.convs.values()].filter((c) => c.last || c.key === S.open)
    .sort((a, b) => (b.last?.id || 0) - (a.last?.id || 0));
  // Chats the user belongs to but where nobody has written yet.
  for (const ch of S.chats.values()) {
    if (ch.member && !S.convs.has('c' + ch.id)) rows.push({ key: 'c' + ch.id, unread: 0 });
  }
  if (!rows.length) { replace(V.list, h('div.list-empty', null, t('noChats'))); return; }
  replace(V.list, rows.map((c) => convRow(c.key, c)));
}

function userRow(u, extra) {
  return h('button.row.person' + (S.open === 'u' + u.id ? '.active' : ''), { role: 'listitem', onclick: () => openProfile(u.id), dataset: { user: u.id } },
    h('span.av-wrap', null, avatar(u.id, u.name), dot(u.id)),
    h('span.row-main', null,
      h('span.row-top', null, h('span.row-name', null, u.name), extra || null),
      h('span.row-bottom', null, h('span.row-preview', null, u.title || presenceText(u.id)))));
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
        style: `padding-left:${12 + depth * 14}px`,
        onclick: () => { if (open.has(d.id)) open.delete(d.id); else open.add(d.id); LS.set('depts', JSON.stringify([...open])); renderList(); },
      }, icon('chev', 'chev'), h('span.dept-name', null, d.name), h('span.dept-count', null, online ? `${online} / ${people.length}` : String(people.length))));
      if (isOpen) {
        for (const u of people) {
          const r = userRow(u);
          r.style.paddingLeft = `${18 + depth * 14}px`;
          out.push(r);
        }
        walk(d.id, depth + 1);
      }
    }
  };
  walk(0, 0);
  const orphans = members.get(0) || [];
  for (const u of orphans) out.push(userRow(u));
  replace(V.list, out.length ? out : h('div.list-empty', null, t('loadingHistory')));
}

let searchSeq = 0;
function renderSearch() {
  const people = [...S.users.values()].filter((u) => matches(u.name) || matches(u.login) || matches(u.title)).slice(0, 30);
  const chats = [...S.chats.values()].filter((c) => matches(c.title)).slice(0, 10);
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
  clearTimeout(renderSearch.timer);
  renderSearch.timer = setTimeout(async () => {
    try {
      const d = await bridge.request('search', { text: q, limit: 20 });
      if (seq !== searchSeq) return;
      const rows = (d.hits || []).map((hit) => {
        const m = hit.message;
        const key = convKey(m, S.me.id);
        return h('button.row.hit', { onclick: () => openConv(key, m.id) },
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

// ---------- conversation ----------

async function openConv(key, focusId) {
  if (!/^[uc]\d+$/.test(key)) return;
  if (S.editing) cancelEdit();
  if (S.replying) cancelReply();
  saveDraft();
  S.open = key;
  LS.set('open', key);
  document.body.classList.add('show-chat');
  if (!S.convs.has(key)) S.convs.set(key, { key, unread: 0 });
  V.head.classList.remove('hidden');
  V.composer.classList.remove('hidden');
  V.empty.classList.add('hidden');
  V.input.value = LS.get('draft.' + key) || '';
  autoGrow();
  renderHead(); renderList();
  clear(V.msgs);
  if (!S.msgs.has(key)) {
    S.msgs.set(key, { list: [], complete: false, loading: false });
    await loadOlder(key);
  }
  renderMessages(true, focusId);
  markOpenRead();
  if (window.innerWidth > 720) V.input.focus();
}

function closeConv() {
  saveDraft();
  document.body.classList.remove('show-chat');
  S.open = null;
  LS.set('open', null);
  V.head.classList.add('hidden');
  V.composer.classList.add('hidden');
  V.empty.classList.remove('hidden');
  clear(V.msgs);
  renderList();
}

function target(key) {
  const id = Number(key.slice(1));
  return key[0] === 'c' ? { chat: id } : { user: id };
}

async function loadOlder(key) {
  const box = S.msgs.get(key);
  if (!box || box.loading || box.complete) return;
  box.loading = true;
  const before = box.list.length ? box.list[0].id : 0;
  try {
    const d = await bridge.request('history', { with: target(key), before_id: before, limit: 50 });
    box.list = mergeMessages(box.list, d.messages || []);
    box.complete = !!d.complete;
    const c = S.convs.get(key);
    if (c && d.peer_read) c.peerRead = Math.max(c.peerRead || 0, d.peer_read);
  } catch (e) {
    console.warn('history', e);
  } finally {
    box.loading = false;
  }
}

async function onScroll() {
  const key = S.open;
  if (!key || V.msgs.scrollTop > 120) return;
  const box = S.msgs.get(key);
  if (!box || box.complete || box.loading) return;
  const h0 = V.msgs.scrollHeight;
  await loadOlder(key);
  if (S.open !== key) return;
  renderMessages(false);
  V.msgs.scrollTop = V.msgs.scrollHeight - h0 + V.msgs.scrollTop;
}

function renderHead() {
  if (!S.open || !V.headMain) return;
  const key = S.open;
  const id = Number(key.slice(1));
  let sub;
  const typing = S.typing.get(key);
  if (typing) {
    sub = h('span.sub.typing', null, key[0] === 'c' ? t('typingIn', { name: S.users.get(typing.user)?.name.split(' ')[0] || '' }) : t('typing'));
  } else if (key[0] === 'c') {
    const c = S.chats.get(id);
    sub = h('span.sub', null, c?.members ? t('members', { n: c.members }) : t('groupChat'));
  } else {
    const p = presenceOf(id);
    sub = h('span.sub' + (p.show !== 'offline' ? '.live' : ''), null, presenceText(id));
  }
  replace(V.headMain, h('button.head-btn', { onclick: () => openProfileFor(key) },
    h('span.av-wrap', null, convAvatar(key, 'md')),
    h('span.head-text', null, h('span.head-name', null, nameOfConv(key)), sub)));
}

function renderPresence(id) {
  if (id === S.me.id) renderMe();
  renderList();
  if (S.open === 'u' + id) renderHead();
  if (V.profile.dataset.user === String(id)) renderProfile(id);
}

function status(m, c) {
  if (m.from !== S.me.id || m.kind === 'system') return null;
  if (!m.id) return h('span.tick.pending', { title: '…' }, icon('clock'));
  if (c && c.peerRead >= m.id) return h('span.tick.read', null, icon('checks'));
  if (c && c.peerDelivered >= m.id) return h('span.tick', null, icon('checks'));
  return h('span.tick', null, icon('check'));
}

function renderMessages(stickBottom, focusId) {
  const key = S.open;
  const box = S.msgs.get(key);
  if (!box) return;
  const atBottom = V.msgs.scrollHeight - V.msgs.scrollTop - V.msgs.clientHeight < 80;
  const prevTop = V.msgs.scrollTop;
  const c = S.convs.get(key);
  const isChat = key[0] === 'c';
  const list = [...box.list, ...(box.pending || [])];
  const days = groupMessages(list);
  const out = [];
  if (box.complete) out.push(h('div.history-start', null, t('historyStart')));
  else if (box.loading) out.push(h('div.history-start', null, t('loadingHistory')));
  const now = Date.now();
  for (const day of days) {
    out.push(h('div.day', null, h('span', null, dayLabel(day.ts, now, lang, t))));
    for (const run of day.runs) {
      if (run.system) {
        for (const m of run.msgs) out.push(h('div.system', { dataset: { id: m.id } }, h('span', null, m.body)));
        continue;
      }
      const mine = run.author === S.me.id;
      const author = S.users.get(run.author);
      const bubbles = run.msgs.map((m, i) => bubble(m, c, mine, isChat && !mine && i === 0 ? author : null, i === run.msgs.length - 1));
      out.push(h('div.run' + (mine ? '.mine' : ''), null,
        !mine && isChat ? h('span.run-av', { onclick: () => openProfile(run.author) }, avatar(run.author, author?.name, 'sm')) : null,
        h('div.run-body', null, bubbles)));
    }
  }
  replace(V.msgs, out);
  if (focusId) {
    const el = V.msgs.querySelector(`[data-id="${Number(focusId)}"]`);
    if (el) { el.scrollIntoView({ block: 'center' }); el.classList.add('flash'); return; }
  }
  if (stickBottom === true || atBottom) V.msgs.scrollTop = V.msgs.scrollHeight;
  else V.msgs.scrollTop = prevTop;
}

function bubble(m, c, mine, author, tail) {
  const body = h('div.text');
  if (m.deleted) body.appendChild(h('em.deleted', null, t('deleted')));
  else renderBody(document, body, m.body);
  const meta = h('span.meta', null,
    m.edited && !m.deleted ? h('span.edited', null, t('edited')) : null,
    h('time', { datetime: new Date(m.time).toISOString(), title: new Date(m.time).toLocaleString(lang) }, formatTime(m.time, lang)),
    status(m, c));
  const reactions = m.reactions && m.reactions.length && !m.deleted ? h('div.reactions', null,
    m.reactions.map((r) => h('button.reaction' + (r.users.includes(S.me.id) ? '.mine' : ''), {
      title: r.users.map((u) => S.users.get(u)?.name || '…').join(', '),
      onclick: (e) => { e.stopPropagation(); toggleReaction(m, r.emoji); },
    }, r.emoji + ' ' + r.users.length))) : null;
  const more = !m.deleted && m.id && m.kind !== 'system' ? h('button.msg-more', { 'aria-label': '⋯', onclick: (e) => { e.stopPropagation(); msgMenu(e.currentTarget, m); } }, '⋯') : null;
  return h('div.bubble' + (tail ? '.tail' : '') + (m.deleted ? '.gone' : ''), { dataset: { id: m.id || '' } },
    author ? h('div.author', { style: `color:${colorFor(author.id)}`, onclick: () => openProfile(author.id) }, author.name) : null,
    m.reply_to && !m.deleted ? quote(m) : null, body, reactions, meta, more);
}

function msgMenu(anchor, m) {
  document.querySelectorAll('.msg-menu').forEach((x) => x.remove());
  const mine = m.from === S.me.id;
  const menu = h('div.msg-menu', null,
    mine ? h('button.menu-item', { onclick: () => { menu.remove(); startEdit(m); } }, t('edit')) : null,
    mine ? h('button.menu-item.danger', { onclick: async () => { menu.remove(); if (confirm(t('deleteConfirm'))) { try { await bridge.request('delete', { message_id: m.id }); } catch (e) { toast(e); } } } }, t('delete')) : null,
    h('button.menu-item.reply', { onclick: () => { menu.remove(); startReply(m); } }, t('reply')),
    h('div.react-pick', { 'aria-label': t('react') },
      QUICK_REACTIONS.map((x) => h('button.react-opt', { onclick: () => { menu.remove(); toggleReaction(m, x); } }, x))));
  anchor.parentElement.appendChild(menu);
}

// Replies (XEP-0461): the composer remembers the message answered.
function startReply(m) {
  if (S.editing) cancelEdit();
  S.replying = m;
  V.editBar.classList.remove('hidden');
  replace(V.editBar, h('span.edit-label', null, t('replyTo') + ' ' + (S.users.get(m.from)?.name || '…')),
    h('span.edit-text', null, m.body), h('button.icon-btn', { onclick: cancelReply, 'aria-label': t('cancel') }, icon('close')));
  V.input.focus();
}

function cancelReply() {
  S.replying = null;
  V.editBar.classList.add('hidden');
}

// findMessage looks for a loaded message by id in any conversation.
function findMessage(id) {
  for (const box of S.msgs.values()) {
    const m = box.list.find((x) => x.id === id);
    if (m) return m;
  }
  return null;
}

// quote shows the message a reply answers (when it is loaded).
function quote(m) {
  const q = findMessage(m.reply_to);
  const who = q ? (S.users.get(q.from)?.name || '…') : '';
  const text = !q ? t('earlierMessage') : q.deleted ? t('deleted') : q.body;
  return h('div.quote', { onclick: (e) => { e.stopPropagation(); if (q) renderMessages(false, q.id); } },
    who ? h('span.quote-author', null, who) : null, h('span.quote-text', null, text));
}

function startEdit(m) {
  if (S.replying) cancelReply();
  S.editing = m;
  V.editBar.classList.remove('hidden');
  replace(V.editBar, h('span.edit-label', null, t('editing')), h('span.edit-text', null, m.body), h('button.icon-btn', { onclick: cancelEdit, 'aria-label': t('cancel') }, icon('close')));
  V.input.value = m.body;
  autoGrow();
  V.input.focus();
}

function cancelEdit() {
  S.editing = null;
  V.editBar.classList.add('hidden');
  V.input.value = LS.get('draft.' + S.open) || '';
  autoGrow();
}

function markOpenRead() {
  const key = S.open;
  if (!key || document.hidden) return;
  const box = S.msgs.get(key);
  const c = S.convs.get(key);
  if (!box || !c) return;
  let max = 0;
  for (const m of box.list) if (m.from !== S.me.id && m.id > max) max = m.id;
  const had = c.unread;
  c.unread = 0;
  if (max && (!c.read || max > c.read)) {
    c.read = max;
    bridge.request('read', { with: target(key), up_to: max }).catch(() => {});
  }
  if (had) renderList();
}

function saveDraft() {
  if (S.open && !S.editing) LS.set('draft.' + S.open, V.input.value);
}

function autoGrow() {
  V.input.style.height = 'auto';
  V.input.style.height = Math.min(V.input.scrollHeight, 180) + 'px';
}

let typingSent = 0, typingTimer = null;
function onInput() {
  autoGrow();
  saveDraft();
  if (!S.open || S.editing) return;
  const now = Date.now();
  if (now - typingSent > 4000 && V.input.value.trim()) {
    typingSent = now;
    bridge.notify('typing', { to: target(S.open), state: 'composing' });
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => {
    if (typingSent) { typingSent = 0; bridge.notify('typing', { to: target(S.open), state: 'paused' }); }
  }, 5000);
}

function onKey(e) {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  } else if (e.key === 'ArrowUp' && !V.input.value && S.open) {
    const box = S.msgs.get(S.open);
    const mine = box?.list.filter((m) => m.from === S.me.id && !m.deleted && m.kind !== 'system');
    if (mine?.length) { e.preventDefault(); startEdit(mine[mine.length - 1]); }
  }
}

async function submit() {
  const key = S.open;
  const body = V.input.value.replace(/\s+$/, '');
  if (!key || !body.trim()) return;
  if (S.editing) {
    const m = S.editing;
    cancelEdit();
    if (body !== m.body) {
      try { onMessage((await bridge.request('edit', { message_id: m.id, body })).message, true); } catch (e) { toast(e); }
    }
    return;
  }
  V.input.value = '';
  LS.set('draft.' + key, null);
  autoGrow();
  if (typingSent) { typingSent = 0; clearTimeout(typingTimer); }
  const replyTo = S.replying ? S.replying.id : 0;
  if (S.replying) cancelReply();
  const origin = newOriginId();
  const box = S.msgs.get(key) || { list: [], complete: true };
  S.msgs.set(key, box);
  const temp = { id: 0, origin_id: origin, from: S.me.id, body, time: Date.now(), kind: key[0] === 'c' ? 'groupchat' : 'chat', reply_to: replyTo || undefined };
  box.pending = [...(box.pending || []), temp];
  renderMessages(true);
  try {
    const d = await bridge.request('send', replyTo ? { to: target(key), body, origin_id: origin, reply_to: replyTo } : { to: target(key), body, origin_id: origin });
    box.pending = box.pending.filter((x) => x !== temp);
    if (d.message) onMessage(d.message, true);
    else renderMessages(true);
  } catch (e) {
    box.pending = box.pending.filter((x) => x !== temp);
    renderMessages(true);
    V.input.value = body;
    toast(e);
  }
}

function toast(e) {
  const el = h('div.toast', { role: 'alert' }, (e && e.message) || t('error'));
  document.body.appendChild(el);
  setTimeout(() => el.remove(), 4000);
}

// ---------- profile ----------

function openProfileFor(key) {
  if (key[0] === 'u') openProfile(Number(key.slice(1)));
  else openChatInfo(Number(key.slice(1)));
}

async function openProfile(id) {
  V.statusMenu.classList.add('hidden');
  delete V.profile.dataset.chat;
  V.profile.dataset.user = String(id);
  if (S.users.has(id)) renderProfile(id);
  try {
    const d = await bridge.request('profile', { user: id });
    S.users.set(id, { ...S.users.get(id), ...d.user });
    if (d.presence) S.presence.set(id, d.presence);
  } catch { /* show what we have */ }
  // Still the profile the user asked for, and not closed meanwhile?
  if (V.profile.dataset.user === String(id)) renderProfile(id);
}

function renderProfile(id) {
  const u = S.users.get(id);
  if (!u) return;
  const mgr = u.manager_id ? S.users.get(u.manager_id) : null;
  const depts = (u.departments || []).map((d) => S.depts.find((x) => x.id === d)?.name).filter(Boolean);
  const field = (label, value) => (value ? h('div.field', null, h('span.field-label', null, label), h('span.field-value', null, value)) : null);
  V.profile.dataset.user = String(id);
  replace(V.profile, h('div.profile-card', { role: 'dialog', 'aria-label': t('profile') },
    h('button.icon-btn.close', { onclick: closeProfile, 'aria-label': t('cancel') }, icon('close')),
    h('div.profile-top', null,
      avatar(id, u.name, 'xl'),
      h('h2', null, u.name),
      h('div.profile-presence', null, dot(id), presenceText(id))),
    h('div.fields', null,
      field(t('title'), u.title),
      field(t('department'), depts.join(', ')),
      mgr ? h('div.field', null, h('span.field-label', null, t('manager')), h('button.link', { onclick: () => openProfile(mgr.id) }, mgr.name)) : null,
      field(t('email'), u.email),
      field(t('login'), u.jid || u.login)),
    id !== S.me.id ? h('div.profile-actions', null,
      h('button.btn-primary', { onclick: () => { closeProfile(); setTab('chats'); openConv('u' + id); } }, t('writeTo')),
      h('button.btn-secondary', { onclick: () => { closeProfile(); showCorrespondence(id); } }, t('showCorrespondence'))) : null));
  V.profile.classList.remove('hidden');
}

function openChatInfo(id) {
  const c = S.chats.get(id);
  if (!c) return;
  delete V.profile.dataset.user;
  V.profile.dataset.chat = String(id);
  replace(V.profile, h('div.profile-card', { role: 'dialog' },
    h('button.icon-btn.close', { onclick: closeProfile, 'aria-label': t('cancel') }, icon('close')),
    h('div.profile-top', null, convAvatar('c' + id, 'xl'), h('h2', null, c.title), h('div.profile-presence', null, c.members ? t('members', { n: c.members }) : t('groupChat'))),
    h('div.fields', null, c.description ? h('div.field', null, h('span.field-value', null, c.description)) : null,
      h('div.field', null, h('span.field-label', null, t('chatId')), h('span.field-value.chat-id', null, String(id))),
      c.jid ? h('div.field', null, h('span.field-label', null, 'XMPP'), h('span.field-value', null, c.jid)) : null),
    h('div.profile-actions', null, h('button.btn-secondary.leave-chat', { onclick: () => leaveChat(id) }, t('leaveChat')))));
  V.profile.classList.remove('hidden');
}

function closeProfile() { V.profile.classList.add('hidden'); delete V.profile.dataset.user; delete V.profile.dataset.chat; }

// showCorrespondence opens the whole history with a colleague from its start.
async function showCorrespondence(id) {
  const key = 'u' + id;
  S.msgs.delete(key);
  await openConv(key);
  const box = S.msgs.get(key);
  while (box && !box.complete && box.list.length < 500) {
    const n = box.list.length;
    await loadOlder(key);
    if (box.list.length === n) break;
  }
  renderMessages(false);
  V.msgs.scrollTop = 0;
}

// ---------- notifications ----------

function renderBell() {
  if (!V.bellCount) return;
  V.bellCount.textContent = S.notesUnread > 99 ? '99+' : String(S.notesUnread);
  V.bellCount.classList.toggle('hidden', !S.notesUnread);
  const items = S.notes.map((n) => {
    const href = n.link && /^https?:\/\//i.test(n.link) ? n.link : null;
    const body = h('div.note-body', null, h('div.note-text', null, n.text), h('div.note-time', null, shortStamp(n.time, Date.now(), lang) + (new Date(n.time).toDateString() === new Date().toDateString() ? '' : ' ' + formatTime(n.time, lang))));
    return h('div.note' + (n.read ? '' : '.fresh'), { dataset: { id: n.id } },
      h('span.note-dot'),
      href ? h('a.note-link', { href, target: '_blank', rel: 'noopener noreferrer', onclick: () => markNotes([n.id]) }, body) : body);
  });
  replace(V.bellPanel,
    h('div.panel-head', null, h('strong', null, t('notifications')), S.notesUnread ? h('button.link', { onclick: () => markNotes(null) }, t('markAllRead')) : null),
    h('div.panel-list', null, items.length ? items : h('div.list-empty', null, t('noNotifications'))));
}

function toggleBell() {
  V.bellPanel.classList.toggle('hidden');
}

async function markNotes(ids) {
  try {
    const d = await bridge.request('notifications_read', ids ? { ids } : { all: true });
    for (const n of S.notes) if (!ids || ids.includes(n.id)) n.read = true;
    S.notesUnread = d.unread ?? S.notes.filter((n) => !n.read).length;
    renderBell();
  } catch (e) { toast(e); }
}

boot();
