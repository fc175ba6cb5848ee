// The web messenger: boot and login, the bridge connection and its
// events, the layout, the status menu and the notification bell. The
// views live in their own modules (sidebar, conversation, profile,
// chatinfo, chatform); they reach this one through `app` (state.js).
import { h, replace, icon } from './dom.js';
import { formatTime, shortStamp } from './format.js';
import { Bridge, convKey, mergeMessages } from './proto.js';
import { S, V, t, lang, LS, app, conn, request } from './state.js';
import { avatar, dot, presenceOf, toast, closeCard } from './ui.js';
import { renderList, nameOfConv, previewText } from './sidebar.js';
import { buildPane, openConv, closeConv, renderHead, renderMessages, markOpenRead, loadOlder, cancelEdit, cancelReply, onReactions } from './conversation.js';
import { openProfile, renderProfile, profileShown } from './profile.js';
import { openChatInfo, chatInfoShown } from './chatinfo.js';
import { openNewChat, openBrowse } from './chatform.js';
import { isMuted } from './mute.js';
import { splitMentions } from './text.js';
import { onRead, onSeen } from './seen.js';
import { IdleWatch } from './idle.js';
import { loadSettings, saveSettings, decide, unlockSound, chime } from './alerts.js';

document.documentElement.lang = lang;
document.title = t('appName');

const root = document.getElementById('app');

// ---------- boot and login ----------

// boot asks whether this browser is signed in: /session answers 200 with
// the user or null, so a first visit logs no error.
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
  conn.bridge = new Bridge({
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
  conn.bridge.connect();
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
    const d = await request('contacts');
    for (const u of d.users || []) S.users.set(u.id, u);
    S.depts = d.departments || [];
    for (const c of d.chats || []) S.chats.set(c.id, { ...S.chats.get(c.id), ...c });
    // Our own presence is the one we chose (or the server kept): the
    // list says only "online".
    for (const p of d.presence || []) if (p.user !== S.me.id || !S.presence.has(p.user)) S.presence.set(p.user, p);
    if (d.users) { const me = S.users.get(S.me.id); if (me) S.me = me; }
    renderMe(); renderList(); renderHead();
  } catch (e) { console.warn('contacts', e); }
}

async function loadConversations() {
  try {
    const d = await request('conversations');
    for (const c of d.chats || []) S.chats.set(c.id, { ...S.chats.get(c.id), ...c });
    for (const c of d.conversations || []) {
      const old = S.convs.get(c.key) || {};
      S.convs.set(c.key, { ...old, ...c });
    }
    renderList(); renderHead();
  } catch (e) { console.warn('conversations', e); }
}

async function loadNotifications() {
  try {
    const d = await request('notifications', { limit: 50 });
    S.notes = d.notifications || [];
    S.notesUnread = d.unread || 0;
    renderBell();
  } catch (e) { console.warn('notifications', e); }
}

// ---------- events ----------

function onEvent(f) {
  switch (f.type) {
    case 'synced': onSynced(); break;
    case 'hello': onHello(f.data); break;
    case 'photo': onPhoto(f); break;
    case 'message': onMessage(f.message, f.replay); break;
    case 'edited': case 'deleted': onMessage(f.message, true); break;
    case 'reactions': onReactions(f.message_id, f.reactions); break;
    case 'receipt': onReceipt(f); break;
    case 'read': onRead(f); break;
    case 'seen': onSeen(f); break;
    case 'typing': onTyping(f); break;
    case 'presence': S.presence.set(f.user, f); renderPresence(f.user); break;
    case 'notification': onNotification(f.notification); break;
    case 'contacts_changed': loadContacts(); break;
    case 'chat_changed': onChatChanged(f); break;
    case 'command_answer': toast(String(f.text || ''), '.command-answer'); break;
    case 'error': console.warn('bridge error', f.code, f.message); break;
    default: break;
  }
}

// The hello's answer: the presence the server kept for us (do-not-disturb
// survives reloads) and our photo.
function onHello(d) {
  if (d.presence) {
    S.presence.set(S.me.id, { ...presenceOf(S.me.id), user: S.me.id, show: d.presence.show, status: d.presence.status });
    idle.choose(d.presence.show);
  }
  if (d.user) { S.me = { ...S.me, photo: d.user.photo }; S.users.set(S.me.id, { ...S.users.get(S.me.id), photo: d.user.photo }); }
  renderMe();
}

// A colleague's photo changed (or was removed): redraw where it shows.
function onPhoto(f) {
  const u = S.users.get(f.user);
  if (u) S.users.set(f.user, { ...u, photo: f.photo || undefined });
  if (f.user === S.me.id) S.me = { ...S.me, photo: f.photo || undefined };
  renderMe(); renderList(); renderHead();
  if (S.open) renderMessages(false);
  if (profileShown(f.user)) renderProfile(f.user);
  const chat = V.profile.dataset.chat;
  if (chat) openChatInfo(Number(chat));
}

// A chat changed (any door): keep its fields; one we are no longer in
// leaves the list (and the pane and info panel, if open).
function onChatChanged(f) {
  const c = f.chat;
  if (!c) return;
  const key = 'c' + c.id;
  if (c.member === false) {
    S.chats.delete(c.id);
    S.convs.delete(key);
    S.msgs.delete(key);
    if (S.open === key) closeConv();
    if (chatInfoShown(c.id)) closeCard();
    renderList();
    return;
  }
  const known = S.chats.has(c.id);
  const old = S.chats.get(c.id) || {};
  const next = { ...old, ...c };
  if (!c.avatar) delete next.avatar;
  if (f.change !== 'edited' && old.member_list) delete next.member_list;
  S.chats.set(c.id, next);
  if (!known) loadConversations();
  renderList(); renderHead();
  if (chatInfoShown(c.id)) openChatInfo(c.id);
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
    if (!quiet && document.hidden) {
      const muted = isMuted(key), mentioned = muted && mentionsMe(m);
      if (!muted || mentioned) alertHidden(m, { muted, mentioned });
    }
  }
  S.convs.set(key, c);
  if (S.open === key) { renderMessages(true); markOpenRead(); renderHead(); }
  renderList();
}

// mentionsMe: a muted chat still alerts the person it @mentions.
function mentionsMe(m) {
  return splitMentions(m.body, [S.me.name, S.me.login]).some((p) => p.mention >= 0);
}

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
  // The list from the server has what the event does not carry (sender,
  // buttons) and no longer has a notification the new one's tag replaced.
  loadNotifications();
  if (document.hidden) alertHidden({ body: n.text, notification: true });
}

// alertHidden tells about m while the page is hidden: the title counter,
// and (alerts.js) a desktop notification and a sound unless the settings
// or do-not-disturb say otherwise.
function alertHidden(m, { muted = false, mentioned = false } = {}) {
  S.hiddenUnread++;
  updateTitle();
  const how = decide({ settings: loadSettings(), muted, mentioned, dnd: presenceOf(S.me.id).show === 'dnd' });
  if (how.sound) chime();
  if (how.notify && 'Notification' in window && Notification.permission === 'granted') {
    const from = m.notification ? t('notifications') : (m.chat ? nameOfConv('c' + m.chat) + ': ' : '') + (S.users.get(m.from)?.name || t('newMessage'));
    try { new Notification(from, { body: (m.notification ? String(m.body || '') : previewText(m)).slice(0, 200), tag: 'vestnik' }); } catch { /* ignored */ }
  }
}

function updateTitle() {
  document.title = (S.hiddenUnread ? `(${S.hiddenUnread}) ` : '') + t('appName');
}

// ---------- layout ----------

function buildLayout() {
  V.meBtn = h('button.me-btn', { type: 'button', onclick: toggleStatusMenu, title: t('status'), 'aria-label': t('status'), 'aria-haspopup': 'menu', 'aria-expanded': 'false' });
  V.statusMenu = h('div.menu.hidden', { role: 'menu', 'aria-label': t('status') });
  V.search = h('input.search', {
    type: 'search', placeholder: t('search'), 'aria-label': t('search'),
    oninput: (e) => { S.query = e.target.value; renderList(); },
  });
  V.bellCount = h('span.badge.hidden');
  V.bell = h('button.icon-btn.bell', { type: 'button', onclick: toggleBell, title: t('notifications'), 'aria-label': t('notifications') }, icon('bell'), V.bellCount);
  V.bellPanel = h('div.panel.notes.hidden', { role: 'region', 'aria-label': t('notifications') });
  V.tabs = h('div.tabs', null,
    h('div.tab-list', { role: 'tablist' },
      h('button.tab', { type: 'button', role: 'tab', dataset: { tab: 'chats' }, onclick: () => setTab('chats') }, t('chats'), h('span.tab-count')),
      h('button.tab', { type: 'button', role: 'tab', dataset: { tab: 'company' }, onclick: () => setTab('company') }, t('company'))),
    h('button.icon-btn.browse-chats', { type: 'button', onclick: openBrowse, 'aria-label': t('browseChats'), title: t('browseChats') }, icon('browse')),
    h('button.icon-btn.new-chat', { type: 'button', onclick: openNewChat, 'aria-label': t('newChat'), title: t('newChat') }, icon('newchat')));
  V.list = h('div.list', { role: 'list' });
  V.connBar = h('div.conn.hidden', { role: 'status' });
  V.side = h('aside.sidebar', null,
    h('div.side-head', null, V.meBtn, h('div.search-wrap', null, icon('search', 'search-icon'), V.search), V.bell),
    V.statusMenu, V.bellPanel, V.tabs, V.connBar, V.list);
  V.empty = h('div.empty', null, h('div.empty-inner', null, logo(), h('p', null, t('pickConversation'))));
  V.pane = buildPane();
  V.profile = h('div.profile-wrap.hidden', { onclick: (e) => { if (e.target === V.profile) closeCard(); } });
  replace(root, h('div.layout', null, V.side, V.pane, V.profile));
  document.addEventListener('click', (e) => {
    if (!V.statusMenu.contains(e.target) && !V.meBtn.contains(e.target)) { V.statusMenu.classList.add('hidden'); V.meBtn.setAttribute('aria-expanded', 'false'); }
    if (!V.bellPanel.contains(e.target) && !V.bell.contains(e.target)) V.bellPanel.classList.add('hidden');
    if (!e.target.closest?.('.msg-menu, .msg-more')) document.querySelectorAll('.msg-menu').forEach((x) => x.remove());
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (!V.profile.classList.contains('hidden')) { closeCard(); return; }
    document.querySelectorAll('.msg-menu').forEach((x) => x.remove());
    V.bellPanel.classList.add('hidden');
    V.statusMenu.classList.add('hidden');
    if (S.editing) cancelEdit();
    if (S.replying) cancelReply();
  });
  setTab(LS.get('tab') || 'chats');
  renderMe(); renderConn(); renderBell();
  setInterval(() => { if (S.tab === 'company' || S.open) { renderHead(); } }, 60000);
}

function setTab(tab) {
  S.tab = tab;
  LS.set('tab', tab);
  for (const b of V.tabs.querySelectorAll('.tab')) {
    b.classList.toggle('active', b.dataset.tab === tab);
    b.setAttribute('aria-selected', String(b.dataset.tab === tab));
  }
  renderList();
}

function renderConn() {
  if (!V.connBar) return;
  const bad = S.conn === 'reconnecting' || S.conn === 'connecting';
  V.connBar.classList.toggle('hidden', !bad);
  V.connBar.textContent = S.conn === 'connecting' ? t('connecting') : t('reconnecting');
}

function renderPresence(id) {
  if (id === S.me.id) renderMe();
  renderList();
  if (S.open === 'u' + id) renderHead();
  if (profileShown(id)) renderProfile(id);
}

function renderMe() {
  if (!V.meBtn) return;
  replace(V.meBtn, avatar(S.me.id, S.me.name), dot(S.me.id));
  const cur = presenceOf(S.me.id).show;
  replace(V.statusMenu,
    h('div.menu-title', null, S.me.name),
    ...['online', 'away', 'dnd'].map((s) => h('button.menu-item' + (cur === s ? '.on' : ''), { role: 'menuitemradio', 'aria-checked': String(cur === s), onclick: () => setStatus(s) }, h('span.dot.' + s), t('set' + s[0].toUpperCase() + s.slice(1)))),
    h('div.menu-sep'),
    ...alertToggles(),
    h('div.menu-sep'),
    h('button.menu-item', { role: 'menuitem', onclick: () => openProfile(S.me.id) }, icon('info', 'mi'), t('profile')),
    h('button.menu-item', { role: 'menuitem', onclick: logout }, icon('logout', 'mi'), t('logout')));
}

function toggleStatusMenu() {
  V.statusMenu.classList.toggle('hidden');
  V.meBtn.setAttribute('aria-expanded', String(!V.statusMenu.classList.contains('hidden')));
  if (!V.statusMenu.classList.contains('hidden')) V.statusMenu.querySelector('.menu-item')?.focus();
}

async function setStatus(show) {
  V.statusMenu.classList.add('hidden');
  S.presence.set(S.me.id, { ...presenceOf(S.me.id), show });
  idle.choose(show);
  renderMe();
  try { await request('presence', { show }); } catch (e) { console.warn(e); }
}

// The notification settings (alerts.js) as checkboxes in the status menu;
// turning the sound on is the click that lets the browser play it.
function alertToggles() {
  const s = loadSettings();
  const toggle = (key, label) => h('button.menu-item.alert-toggle', {
    role: 'menuitemcheckbox', 'aria-checked': String(s[key]), dataset: { setting: key },
    onclick: () => {
      const next = { ...loadSettings(), [key]: !s[key] };
      saveSettings(next);
      if (key === 'sound' && next.sound) { unlockSound(); chime(); }
      if (key === 'desktop' && next.desktop && 'Notification' in window && Notification.permission === 'default') Notification.requestPermission().catch(() => {});
      renderMe();
    },
  }, h('span.check-box', { 'aria-hidden': 'true' }, s[key] ? '✓' : ''), t(label));
  return [toggle('desktop', 'desktopAlerts'), toggle('sound', 'alertSound')];
}

// Automatic away after 10 minutes without input (idle.js); not over
// do-not-disturb, not remembered by the server.
const idle = new IdleWatch({
  send: (show) => {
    S.presence.set(S.me.id, { ...presenceOf(S.me.id), show });
    renderMe();
    request('presence', { show, auto: true }).catch(() => {});
  },
});
let lastInput = 0;
function onActivity() {
  const now = Date.now();
  if (now - lastInput < 5000 && !idle.auto) return;
  lastInput = now;
  idle.activity();
}
for (const ev of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart']) document.addEventListener(ev, onActivity, { passive: true, capture: true });
setInterval(() => { if (S.conn === 'ready') idle.tick(); }, 30000);
// A browser allows sound only after a gesture: the first one unlocks it.
for (const ev of ['pointerdown', 'keydown']) document.addEventListener(ev, () => { if (loadSettings().sound) unlockSound(); }, { once: true, capture: true });

async function logout() {
  try { await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: '{}' }); } catch { /* ignored */ }
  conn.bridge?.close();
  LS.set('open', null);
  location.reload();
}


// ---------- profile ----------

function openProfileFor(key) {
  if (key[0] === 'u') openProfile(Number(key.slice(1)));
  else openChatInfo(Number(key.slice(1)));
}

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
    const href = n.link && (/^https?:\/\//i.test(n.link) || /^\/(?!\/)/.test(n.link)) ? n.link : null;
    const sender = n.sender ? S.users.get(n.sender) : null;
    const body = h('div.note-body', null,
      sender ? h('div.note-sender', null, avatar(n.sender, sender.name, 'xs'), h('span.note-sender-name', null, sender.name)) : null,
      h('div.note-text', null, n.text), h('div.note-time', null, shortStamp(n.time, Date.now(), lang) + (new Date(n.time).toDateString() === new Date().toDateString() ? '' : ' ' + formatTime(n.time, lang))));
    return h('div.note' + (n.read ? '' : '.fresh'), { dataset: { id: n.id } },
      h('span.note-dot'),
      h('div.note-main', null,
        href ? h('a.note-link', { href, target: '_blank', rel: 'noopener noreferrer', onclick: () => markNotes([n.id]) }, body) : body,
        noteButtons(n)));
  });
  replace(V.bellPanel,
    h('div.panel-head', null, h('strong', null, t('notifications')), S.notesUnread ? h('button.link', { onclick: () => markNotes(null) }, t('markAllRead')) : null),
    h('div.panel-list', null, items.length ? items : h('div.list-empty', null, t('noNotifications'))));
}

// noteButtons are a notification's buttons: pressed once, the chosen one
// stays marked (aria-pressed) and the others are disabled.
function noteButtons(n) {
  if (!n.buttons?.length) return null;
  return h('div.note-actions', { role: 'group', 'aria-label': t('noteActions') }, n.buttons.map((b) => {
    const chosen = n.answer === b.value;
    return h('button.note-btn' + (chosen ? '.chosen' : ''), {
      type: 'button', disabled: !!n.answer, 'aria-pressed': chosen ? 'true' : 'false',
      'aria-label': chosen ? t('noteChosen', { title: b.title }) : b.title,
      onclick: () => answerNote(n, b.value),
    }, b.title);
  }));
}

async function answerNote(n, value) {
  try {
    await request('notification_action', { notification_id: n.id, answer: value });
    n.answer = value;
    if (!n.read) { n.read = true; S.notesUnread = Math.max(0, S.notesUnread - 1); }
    renderBell();
  } catch (e) { toast(e); }
}

function toggleBell() {
  V.bellPanel.classList.toggle('hidden');
}

async function markNotes(ids) {
  try {
    const d = await request('notifications_read', ids ? { ids } : { all: true });
    for (const n of S.notes) if (!ids || ids.includes(n.id)) n.read = true;
    S.notesUnread = d.unread ?? S.notes.filter((n) => !n.read).length;
    renderBell();
  } catch (e) { toast(e); }
}


Object.assign(app, {
  openConv, openProfile, openProfileFor, showCorrespondence, setTab, renderList, renderHead,
  onMessage, onChatChanged, toast,
});

boot();
