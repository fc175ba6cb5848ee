// Shared state of the running app: the language, the store (S), the
// layout's elements (V), localStorage, and `app`, where app.js plugs in the
// operations views call (openConv, renderList, …), so view modules need
// not import app.js.
import { makeT, pickLang } from './i18n.js';

export const lang = pickLang(globalThis.navigator?.languages || [globalThis.navigator?.language]);
export const t = makeT(lang);

export const LS = {
  get(k) { try { return localStorage.getItem('vestnik.' + k); } catch { return null; } },
  set(k, v) { try { if (v == null || v === '') localStorage.removeItem('vestnik.' + k); else localStorage.setItem('vestnik.' + k, v); } catch { /* private mode */ } },
};

export const S = {
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

// V holds the layout's long-lived elements.
export const V = {};

// app: operations of app.js the views call; filled in by app.js.
export const app = {};

// bridge returns the connection (set once the user is signed in).
export const conn = { bridge: null };
export function request(type, payload) { return conn.bridge.request(type, payload); }
