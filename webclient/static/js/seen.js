// Read state from the bridge: "read" (the signed-in user read a
// conversation on another device or door: its unread count drops) and
// "seen" (a member's read mark in a group chat moved), and the "seen by"
// line under the user's own latest message in a group chat, with the
// names one click away.
import { h } from './dom.js';
import { S, t, app, request } from './state.js';
import { renderMessages } from './conversation.js';

const marks = new Map(); // chat id -> Map(user id -> last message read)
let openList = 0; // the message whose names are shown

// setChatMarks takes the read marks a chat's history page carries.
export function setChatMarks(chatId, obj) {
  const m = new Map();
  for (const [u, id] of Object.entries(obj || {})) m.set(Number(u), Number(id));
  marks.set(chatId, m);
}

// onSeen: member f.user has read chat f.chat up to f.up_to.
export function onSeen(f) {
  if (f.user === S.me.id) return;
  let m = marks.get(f.chat);
  if (!m) { m = new Map(); marks.set(f.chat, m); }
  if ((m.get(f.user) || 0) >= f.up_to) return;
  m.set(f.user, f.up_to);
  if (S.open === 'c' + f.chat) renderMessages(false);
}

// onRead: the user read a conversation elsewhere (another tab, a Jabber
// client, the portal): take the mark and recount.
export async function onRead(f) {
  const w = f.with || {};
  const key = w.chat ? 'c' + w.chat : 'u' + w.user;
  const c = S.convs.get(key);
  if (!c || (c.read || 0) >= f.up_to) return;
  c.read = f.up_to;
  if (!c.last || f.up_to >= c.last.id) c.unread = 0;
  else {
    try {
      const d = await request('conversations');
      const x = (d.conversations || []).find((y) => y.key === key);
      if (x) c.unread = x.unread;
    } catch (e) { console.warn('conversations', e); }
  }
  app.renderList();
}

// seenBy lists the members other than the user who have read message m.
export function seenBy(m) {
  const out = [];
  for (const [u, id] of marks.get(m.chat) || []) if (u !== S.me.id && u !== m.from && id >= m.id) out.push(u);
  return out;
}

// seenRow is the "seen by N" line under message m (null when nobody has).
export function seenRow(m) {
  const who = seenBy(m);
  if (!who.length) return null;
  const names = who.map((u) => S.users.get(u)?.name || '…');
  const shown = openList === m.id;
  const btn = h('button.seen-by', {
    type: 'button', 'aria-expanded': String(shown),
    'aria-label': t('seenByNames', { n: who.length, names: names.join(', ') }), title: names.join(', '),
    onclick: (e) => { e.stopPropagation(); openList = shown ? 0 : m.id; renderMessages(false); },
  }, t('seenBy', { n: who.length }));
  return h('div.seen', null, btn,
    shown ? h('ul.seen-list', { 'aria-label': t('seenByTitle') }, names.map((n) => h('li', null, n))) : null);
}
