// The conversation view: its header, the message list (day separators,
// runs by author, files, the "new messages" divider), the composer with
// attachments, editing and sending.
import { h, replace, clear, icon } from './dom.js';
import { renderRich, renderAttach, renderKeyboard } from './rich.js';
import { formatTime, dayLabel, colorFor, groupMessages } from './format.js';
import { newOriginId, mergeMessages } from './proto.js';
import { S, V, t, lang, LS, app, request, conn } from './state.js';
import { avatar, convAvatar, presenceOf, presenceText, toast, showCard, closeBtn } from './ui.js';
import { renderFiles, stripFileLines, safeFileURL } from './files.js';
import { Attachments, wireDrop, pastedFiles } from './attach.js';
import { nameOfConv, systemText } from './sidebar.js';
import { MentionBox } from './mention.js';
import { seenRow, setChatMarks } from './seen.js';
import { EmojiPicker } from './emoji.js';

const attachments = new Attachments();
let seenFor = 0; // the message that shows "seen by" (renderMessages)
let divider = null; // {key, id}: the first message that was unread when the conversation was opened

export function buildPane() {
  V.headMain = h('div.head-main');
  V.infoBtn = h('button.icon-btn.info-btn', { type: 'button', onclick: () => S.open && app.openProfileFor(S.open), 'aria-label': t('profile'), title: t('profile') }, icon('info'));
  V.head = h('header.chat-head.hidden', null,
    h('button.icon-btn.back', { type: 'button', onclick: closeConv, 'aria-label': t('back'), title: t('back') }, icon('back')),
    V.headMain, V.infoBtn);
  V.msgs = h('div.messages', { onscroll: onScroll, role: 'log', 'aria-live': 'polite', tabindex: 0 });
  V.jump = h('button.jump-unread.hidden', { type: 'button', onclick: jumpToUnread, 'aria-label': t('jumpUnread') }, t('newMessages'), ' ↑');
  V.editBar = h('div.edit-bar.hidden');
  V.input = h('textarea.input', {
    rows: 1, placeholder: t('writeMessage'), 'aria-label': t('writeMessage'), onkeydown: onKey, oninput: onInput,
    onpaste: (e) => { const files = pastedFiles(e); if (files.length) { e.preventDefault(); attachments.add(files); } },
  });
  V.mentions = new MentionBox(V.input);
  V.input.addEventListener('click', () => V.mentions.update());
  V.input.addEventListener('blur', () => setTimeout(() => V.mentions.close(), 150));
  V.sendBtn = h('button.send', { type: 'button', onclick: submit, 'aria-label': t('send'), title: t('send') }, icon('send'));
  V.emoji = new EmojiPicker(V.input, t, () => { autoGrow(); onInput(); });
  V.composer = h('footer.composer.hidden', null, V.editBar, attachments.el, V.mentions.el, V.emoji.panel,
    h('div.compose-row', null, attachments.button, attachments.input, V.emoji.button, V.input, V.sendBtn));
  V.drop = h('div.drop-hint', { 'aria-hidden': 'true' }, t('dropHere'));
  const pane = h('main.pane', null, V.head, V.msgs, V.jump, V.composer, V.empty, V.drop);
  wireDrop(pane, (files) => { if (S.open) attachments.add(files); });
  return pane;
}

export async function openConv(key, focusId) {
  if (!/^[uc]\d+$/.test(key)) return;
  if (S.editing) cancelEdit();
  if (S.replying) cancelReply();
  if (S.open !== key) attachments.clear();
  saveDraft();
  S.open = key;
  LS.set('open', key);
  document.body.classList.add('show-chat');
  if (!S.convs.has(key)) S.convs.set(key, { key, unread: 0 });
  const c = S.convs.get(key);
  const readMark = c.unread ? (c.read || 0) : null;
  divider = null;
  V.head.classList.remove('hidden');
  V.composer.classList.remove('hidden');
  V.empty.classList.add('hidden');
  V.input.value = LS.get('draft.' + key) || '';
  autoGrow();
  renderHead(); app.renderList();
  clear(V.msgs);
  if (!S.msgs.has(key)) {
    S.msgs.set(key, { list: [], complete: false, loading: false });
    await loadOlder(key);
  }
  if (readMark != null) {
    // Load pages until the first unread message is there (a few at most).
    const box = S.msgs.get(key);
    for (let i = 0; i < 5 && !box.complete && box.list.length && box.list[0].id > readMark; i++) await loadOlder(key);
    const first = box.list.find((m) => m.id > readMark && m.from !== S.me.id && m.kind !== 'system');
    if (first) divider = { key, id: first.id };
  }
  if (S.open !== key) return;
  renderMessages(true, focusId);
  if (!focusId && divider) {
    V.msgs.querySelector('.unread-divider')?.scrollIntoView({ block: 'start' });
    updateJump();
  }
  markOpenRead();
  if (window.innerWidth > 720) V.input.focus();
}

export function closeConv() {
  saveDraft();
  document.body.classList.remove('show-chat');
  S.open = null;
  divider = null;
  attachments.clear();
  LS.set('open', null);
  V.head.classList.add('hidden');
  V.composer.classList.add('hidden');
  V.empty.classList.remove('hidden');
  V.jump.classList.add('hidden');
  clear(V.msgs);
  app.renderList();
}

export function target(key) {
  const id = Number(key.slice(1));
  return key[0] === 'c' ? { chat: id } : { user: id };
}

export async function loadOlder(key) {
  const box = S.msgs.get(key);
  if (!box || box.loading || box.complete) return;
  box.loading = true;
  const before = box.list.length ? box.list[0].id : 0;
  try {
    const d = await request('history', { with: target(key), before_id: before, limit: 50 });
    box.list = mergeMessages(box.list, d.messages || []);
    box.complete = !!d.complete;
    const c = S.convs.get(key);
    if (c && d.peer_read) c.peerRead = Math.max(c.peerRead || 0, d.peer_read);
    if (d.read_marks && key[0] === 'c') setChatMarks(Number(key.slice(1)), d.read_marks);
  } catch (e) {
    console.warn('history', e);
  } finally {
    box.loading = false;
  }
}

async function onScroll() {
  updateJump();
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

// The jump button shows while the divider is above the visible part.
function updateJump() {
  const d = V.msgs.querySelector('.unread-divider');
  V.jump.classList.toggle('hidden', !d || d.offsetTop >= V.msgs.scrollTop);
}

function jumpToUnread() {
  const d = V.msgs.querySelector('.unread-divider');
  if (d) { d.scrollIntoView({ block: 'start' }); d.nextElementSibling?.querySelector('.bubble')?.focus(); }
  updateJump();
}

export function renderHead() {
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
  const label = key[0] === 'c' ? t('chatInfo') : t('openProfile', { name: nameOfConv(key) });
  V.infoBtn.setAttribute('aria-label', label);
  V.infoBtn.title = label;
  replace(V.headMain, h('button.head-btn', { type: 'button', onclick: () => app.openProfileFor(key), 'aria-label': nameOfConv(key) + ', ' + label },
    h('span.av-wrap', null, convAvatar(key, 'md')),
    h('span.head-text', null, h('span.head-name', null, nameOfConv(key)), sub)));
}

function status(m, c) {
  if (m.from !== S.me.id || m.kind === 'system') return null;
  if (!m.id) return h('span.tick.pending', { title: '…' }, icon('clock'));
  if (c && c.peerRead >= m.id) return h('span.tick.read', null, icon('checks'));
  if (c && c.peerDelivered >= m.id) return h('span.tick', null, icon('checks'));
  return h('span.tick', null, icon('check'));
}

export function renderMessages(stickBottom, focusId) {
  const key = S.open;
  const box = S.msgs.get(key);
  if (!box) return;
  const atBottom = V.msgs.scrollHeight - V.msgs.scrollTop - V.msgs.clientHeight < 80;
  const prevTop = V.msgs.scrollTop;
  const c = S.convs.get(key);
  const isChat = key[0] === 'c';
  const list = [...box.list, ...(box.pending || [])];
  // "Seen by" goes under the user's own latest message in a group chat.
  seenFor = 0;
  if (isChat) for (const m of box.list) if (m.from === S.me.id && !m.deleted && m.id > seenFor) seenFor = m.id;
  const days = groupMessages(list);
  const cut = divider && divider.key === key ? divider.id : 0;
  const out = [];
  if (box.complete) out.push(h('div.history-start', null, t('historyStart')));
  else if (box.loading) out.push(h('div.history-start', null, t('loadingHistory')));
  const now = Date.now();
  const runEl = (run, msgs, first) => {
    const mine = run.author === S.me.id;
    const author = S.users.get(run.author);
    const bubbles = msgs.map((m, i) => bubble(m, c, mine, isChat && !mine && i === 0 ? author : null, i === msgs.length - 1));
    return h('div.run' + (mine ? '.mine' : ''), null,
      !mine && isChat && first !== false ? h('span.run-av', { onclick: () => app.openProfile(run.author) }, avatar(run.author, author?.name, 'sm')) : null,
      h('div.run-body', null, bubbles));
  };
  const dividerEl = () => h('div.unread-divider', { role: 'separator', 'aria-label': t('newMessages') }, h('span', null, t('newMessages')));
  for (const day of days) {
    out.push(h('div.day', null, h('span', null, dayLabel(day.ts, now, lang, t))));
    for (const run of day.runs) {
      if (run.system) {
        for (const m of run.msgs) {
          if (m.id === cut) out.push(dividerEl());
          out.push(h('div.system', { dataset: { id: m.id } }, h('span', null, systemText(m))));
        }
        continue;
      }
      const i = cut ? run.msgs.findIndex((m) => m.id === cut) : -1;
      if (i < 0) { out.push(runEl(run, run.msgs)); continue; }
      if (i > 0) out.push(runEl(run, run.msgs.slice(0, i)));
      out.push(dividerEl());
      out.push(runEl(run, run.msgs.slice(i)));
    }
  }
  replace(V.msgs, out);
  if (focusId) {
    const el = V.msgs.querySelector(`[data-id="${Number(focusId)}"]`);
    if (el) { el.scrollIntoView({ block: 'center' }); el.classList.add('flash'); return; }
  }
  if (stickBottom === true || atBottom) V.msgs.scrollTop = V.msgs.scrollHeight;
  else V.msgs.scrollTop = prevTop;
  updateJump();
}

// mentionNames: every colleague's name and login, for marking @mentions
// (the reader's own marked apart); rebuilt when the company changes.
let mentionCache = { size: -1 };
function mentionNames() {
  if (mentionCache.size === S.users.size) return mentionCache;
  const names = [], me = [];
  for (const u of S.users.values()) {
    for (const n of [u.name, u.login]) {
      if (!n) continue;
      if (u.id === S.me.id) me.push(names.length);
      names.push(n);
    }
  }
  mentionCache = { size: S.users.size, names, me };
  return mentionCache;
}

// textOf is what a message says as its author wrote it: a rich message's
// text (BB-codes) rather than its plain-text fallback, file lines taken off.
function textOf(m) {
  return stripFileLines(m.rich ? (m.rich.text || '') : m.body, m.files);
}

// richOpts: how BB-code mentions of users ([user=<portal id>]) and chats
// open, and where images may load from.
function richOpts(m, text) {
  return {
    mentions: m.chat && text.includes('@') ? mentionNames() : null,
    origin: location.origin,
    onUser: (ext) => { const u = [...S.users.values()].find((x) => x.ext_id === String(ext)); if (u) app.openConv('u' + u.id); },
    onChat: (id) => { if (S.chats.has(id)) app.openConv('c' + id); },
  };
}

// pressButton: a command goes to the server (a keyboard-pressed event
// for the integration); client actions act here.
async function pressButton(m, i, b, node) {
  const action = String(b.action || '').toUpperCase();
  const value = String(b.action_value || '');
  if (action === 'PUT') { V.input.value = value; autoGrow(); V.input.focus(); return; }
  if (action === 'SEND') { V.input.value = value; submit(); return; }
  if (action === 'COPY') { try { await navigator.clipboard.writeText(value); toast(t('copied')); } catch (e) { toast(e); } return; }
  if (action === 'DIALOG') {
    const u = [...S.users.values()].find((x) => x.ext_id === value);
    if (u) app.openConv('u' + u.id);
    else if (/^chat\d+$/.test(value) && S.chats.has(Number(value.slice(4)))) app.openConv('c' + value.slice(4));
    return;
  }
  if (!b.command) return;
  node.disabled = true;
  try {
    await request('press', { message_id: m.id, button: i });
    node.classList.add('pressed');
  } catch (e) { toast(e); } finally { node.disabled = false; }
}

function bubble(m, c, mine, author, tail) {
  const body = h('div.text');
  const text = m.deleted ? '' : textOf(m);
  if (m.deleted) body.appendChild(h('em.deleted', null, t('deleted')));
  else renderRich(document, body, text, richOpts(m, text));
  const card = !m.deleted && m.rich?.attach?.blocks?.length ? renderAttach(document, m.rich.attach, richOpts(m, '')) : null;
  const keys = !m.deleted && m.id && m.rich?.keyboard?.length ? renderKeyboard(document, m.rich.keyboard, (i, b, node) => pressButton(m, i, b, node)) : null;
  if (keys) keys.setAttribute('aria-label', t('buttons'));
  const files = m.deleted ? null : renderFiles(m.files, t, lang, openImage);
  const meta = h('span.meta', null,
    m.edited && !m.deleted ? h('span.edited', null, t('edited')) : null,
    h('time', { datetime: new Date(m.time).toISOString(), title: new Date(m.time).toLocaleString(lang) }, formatTime(m.time, lang)),
    status(m, c));
  const live = !m.deleted && m.id && m.kind !== 'system';
  const more = live ? h('button.msg-more', { type: 'button', 'aria-label': t('messageActions'), title: t('messageActions'), 'aria-haspopup': 'menu', onclick: (e) => { e.stopPropagation(); msgMenu(e.currentTarget, m); } }, '⋯') : null;
  const reactions = live && m.reactions?.length ? h('div.reactions', null, m.reactions.map((r) => {
    const names = r.users.map((u) => (u === S.me.id ? t('you') : S.users.get(u)?.name || '…')).join(', ');
    return h('button.reaction' + (r.users.includes(S.me.id) ? '.mine' : ''), {
      type: 'button', title: names, 'aria-pressed': String(r.users.includes(S.me.id)),
      'aria-label': t('reactionBy', { emoji: r.emoji, n: r.users.length, names }),
      onclick: (e) => { e.stopPropagation(); toggleReaction(m, r.emoji); },
    }, r.emoji + ' ' + r.users.length);
  })) : null;
  return h('div.bubble' + (tail ? '.tail' : '') + (m.deleted ? '.gone' : '') + (files ? '.has-files' : '') + (files && !text ? '.only-files' : ''), { dataset: { id: m.id || '' }, tabindex: -1 },
    author ? h('div.author', { style: `color:${colorFor(author.id)}`, onclick: () => app.openProfile(author.id) }, author.name) : null,
    m.reply_to && !m.deleted ? quote(m) : null, files, text || m.deleted ? body : null, card, keys, reactions, meta, more,
    m.id && m.id === seenFor ? seenRow(m) : null);
}

// openImage shows an image full size in the overlay.
function openImage(f) {
  const url = safeFileURL(f.url);
  if (!url) return;
  showCard(h('div.viewer', { role: 'dialog', 'aria-modal': 'true', 'aria-label': t('imageViewer') + ': ' + f.name },
    closeBtn(),
    h('img', { src: url, alt: f.name }),
    h('div.viewer-bar', null, h('span.viewer-name', null, f.name), h('a.link', { href: url, download: f.name }, t('download', { name: '' }).trim()))), 'view', 'image');
}

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '🙏', '👀', '✅'];

// msgMenu: edit (one's own), reply, a reaction palette, delete (one's own).
function msgMenu(anchor, m) {
  document.querySelectorAll('.msg-menu').forEach((x) => x.remove());
  const mine = m.from === S.me.id;
  const menu = h('div.msg-menu', { role: 'menu', 'aria-label': t('messageActions'), onkeydown: menuKeys },
    mine ? h('button.menu-item', { type: 'button', role: 'menuitem', onclick: () => { menu.remove(); startEdit(m); } }, icon('edit', 'mi'), t('edit')) : null,
    h('button.menu-item.reply', { type: 'button', role: 'menuitem', onclick: () => { menu.remove(); startReply(m); } }, icon('reply', 'mi'), t('reply')),
    h('div.react-pick', { role: 'group', 'aria-label': t('react') },
      QUICK_REACTIONS.map((x) => h('button.react-opt', { type: 'button', role: 'menuitem', 'aria-label': t('react') + ' ' + x, title: t('react') + ' ' + x, onclick: () => { menu.remove(); toggleReaction(m, x); } }, x))),
    mine ? h('button.menu-item.danger', { type: 'button', role: 'menuitem', onclick: async () => { menu.remove(); if (confirm(t('deleteConfirm'))) { try { app.onMessage((await request('delete', { message_id: m.id })).message, true); } catch (e) { toast(e); } } } }, t('delete')) : null);
  anchor.parentElement.appendChild(menu);
  menu.querySelector('button').focus();
}

// menuKeys moves through a menu's buttons with the arrow keys; Escape
// closes it and gives the focus back to its button.
function menuKeys(e) {
  const items = [...e.currentTarget.querySelectorAll('button')];
  const i = items.indexOf(document.activeElement);
  if (e.key === 'ArrowDown' || e.key === 'ArrowRight') { e.preventDefault(); items[(i + 1) % items.length].focus(); }
  else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') { e.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
  else if (e.key === 'Escape') { e.stopPropagation(); const b = e.currentTarget.parentElement.querySelector('.msg-more'); e.currentTarget.remove(); b?.focus(); }
}

// onReactions shows everyone's reactions on a message now.
export function onReactions(id, reactions) {
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
    const d = await request('react', { message_id: m.id, reactions: next });
    onReactions(m.id, d.reactions);
  } catch (e) { toast(e); }
}

// Replies (XEP-0461): the composer remembers the message answered.
function startReply(m) {
  if (S.editing) cancelEdit();
  S.replying = m;
  V.editBar.classList.remove('hidden');
  replace(V.editBar, h('span.edit-label', null, t('replyTo') + ' ' + (S.users.get(m.from)?.name || '…')),
    h('span.edit-text', null, stripFileLines(m.body, m.files) || (m.files || []).map((f) => f.name).join(', ')),
    h('button.icon-btn', { type: 'button', onclick: cancelReply, 'aria-label': t('cancel') }, icon('close')));
  V.input.focus();
}

export function cancelReply() {
  S.replying = null;
  V.editBar.classList.add('hidden');
}

function findMessage(id) {
  for (const box of S.msgs.values()) {
    const m = box.list.find((x) => x.id === id);
    if (m) return m;
  }
  return null;
}

// quote shows the message a reply answers; activating it jumps there,
// loading older pages when it is not on screen yet.
function quote(m) {
  const q = findMessage(m.reply_to);
  const who = q ? (S.users.get(q.from)?.name || '…') : '';
  const text = !q ? t('earlierMessage') : q.deleted ? t('deleted') : (stripFileLines(q.body, q.files) || (q.files || []).map((f) => f.name).join(', '));
  const jump = async (e) => {
    e.stopPropagation();
    const key = S.open;
    const box = S.msgs.get(key);
    for (let i = 0; i < 20 && box && !box.list.some((x) => x.id === m.reply_to) && !box.complete; i++) await loadOlder(key);
    if (S.open === key) renderMessages(false, m.reply_to);
  };
  return h('div.quote', { role: 'button', tabindex: 0, 'aria-label': t('jumpToQuoted') + (who ? ': ' + who : ''), onclick: jump, onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); jump(e); } } },
    who ? h('span.quote-author', null, who) : null, h('span.quote-text', null, text));
}

function startEdit(m) {
  if (S.replying) cancelReply();
  S.editing = m;
  V.editBar.classList.remove('hidden');
  const text = textOf(m);
  replace(V.editBar, h('span.edit-label', null, t('editing')), h('span.edit-text', null, text), h('button.icon-btn', { type: 'button', onclick: cancelEdit, 'aria-label': t('cancel') }, icon('close')));
  V.input.value = text;
  autoGrow();
  V.input.focus();
}

export function cancelEdit() {
  S.editing = null;
  V.editBar.classList.add('hidden');
  V.input.value = LS.get('draft.' + S.open) || '';
  autoGrow();
}

export function markOpenRead() {
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
    request('read', { with: target(key), up_to: max }).catch(() => {});
  }
  if (had) app.renderList();
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
  V.mentions.update();
  saveDraft();
  if (!S.open || S.editing) return;
  const now = Date.now();
  if (now - typingSent > 4000 && V.input.value.trim()) {
    typingSent = now;
    conn.bridge.notify('typing', { to: target(S.open), state: 'composing' });
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => {
    if (typingSent) { typingSent = 0; conn.bridge.notify('typing', { to: target(S.open), state: 'paused' }); }
  }, 5000);
}

function onKey(e) {
  if (V.mentions.onKey(e)) return;
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
  if (!key) return;
  if (S.editing) {
    if (!body.trim()) return;
    const m = S.editing;
    cancelEdit();
    // Keep the file URL lines Jabber clients need.
    const src = m.rich ? (m.rich.text || '') : String(m.body || '');
    const tail = src.slice(textOf(m).length);
    if (body !== textOf(m)) {
      try { app.onMessage((await request('edit', { message_id: m.id, body: body + tail })).message, true); } catch (e) { toast(e); }
    }
    return;
  }
  if (!body.trim() && !attachments.count) return;
  V.sendBtn.disabled = true;
  let files = [];
  try {
    if (attachments.count) {
      files = await attachments.ready();
      if (!files.length && !body.trim()) return;
      attachments.take();
    }
  } finally { V.sendBtn.disabled = false; }
  if (S.open !== key) return;
  V.input.value = '';
  LS.set('draft.' + key, null);
  autoGrow();
  if (typingSent) { typingSent = 0; clearTimeout(typingTimer); }
  const replyTo = S.replying && S.open === key ? S.replying.id : 0;
  if (S.replying) cancelReply();
  const origin = newOriginId();
  const box = S.msgs.get(key) || { list: [], complete: true };
  S.msgs.set(key, box);
  const temp = { id: 0, origin_id: origin, from: S.me.id, body, time: Date.now(), kind: key[0] === 'c' ? 'groupchat' : 'chat', files: files.length ? files : undefined, reply_to: replyTo || undefined };
  box.pending = [...(box.pending || []), temp];
  renderMessages(true);
  try {
    const payload = { to: target(key), body, origin_id: origin };
    if (files.length) payload.files = files.map((f) => f.id);
    if (replyTo) payload.reply_to = replyTo;
    const d = await request('send', payload);
    box.pending = box.pending.filter((x) => x !== temp);
    if (d.message) app.onMessage(d.message, true);
    else renderMessages(true);
  } catch (e) {
    box.pending = box.pending.filter((x) => x !== temp);
    renderMessages(true);
    V.input.value = body;
    if (replyTo) { const q = findMessage(replyTo); if (q) startReply(q); }
    toast(e);
  }
}
