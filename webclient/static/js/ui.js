// Small shared widgets: avatars, presence dots, chat colors, toasts and
// the overlay that holds a card (profile, chat info, dialogs, image viewer).
import { h, replace, icon } from './dom.js';
import { initials, colorFor, lastSeen } from './format.js';
import { S, V, t, lang } from './state.js';

// The safe chat colors (muc.Colors on the server, same order) and how
// they are drawn.
export const CHAT_COLORS = { RED: '#e5484d', GREEN: '#46a758', MINT: '#3fc1a5', LIGHT_BLUE: '#4fb3ea', DARK_BLUE: '#3e63dd', PURPLE: '#8e4ec6', AQUA: '#12a5b5', PINK: '#d6409f', LIME: '#8db600', BROWN: '#a07553', AZURE: '#0090ff', KHAKI: '#a39770', SAND: '#c2a26a', MARENGO: '#4c5c68', GRAY: '#8b8d98', GRAPHITE: '#3f4448' };
export function chatColor(c) { return CHAT_COLORS[c] || '#6b7c93'; }

export function avatar(id, name, size = '', color) {
  const cls = 'span.avatar' + (size ? '.' + size : '');
  const photo = photoURL(id);
  if (photo) {
    // A photo that cannot be had (an HR link that failed) falls back to the initials.
    const fallback = (e) => { const box = e.target.parentNode; if (box) { box.classList.remove('img', 'photo'); box.textContent = initials(name); } };
    return h(cls + '.img.photo', { style: `background:${color || colorFor(id)}`, 'aria-hidden': 'true' }, h('img', { src: photo, alt: '', loading: 'lazy', decoding: 'async', onerror: fallback }));
  }
  return h(cls, { style: `background:${color || colorFor(id)}`, 'aria-hidden': 'true' }, initials(name));
}

// photoURL is a colleague's photo, only in the server's own shape
// (/avatars/user/{id}?v=…), or null.
export function photoURL(id) {
  const p = S.users.get(id)?.photo;
  return typeof p === 'string' && /^\/avatars\/user\/\d+\?v=[0-9a-z]+$/.test(p) ? p : null;
}

export function chatAvatar(c, size) {
  const cls = 'span.avatar.chat' + (size ? '.' + size : '');
  if (c?.avatar && /^\/avatars\//.test(c.avatar)) {
    return h(cls + '.img', { style: `background:${chatColor(c.color)}`, 'aria-hidden': 'true' }, h('img', { src: c.avatar, alt: '' }));
  }
  return h(cls, { style: `background:${chatColor(c?.color)}`, 'aria-hidden': 'true' }, initials(c?.title || '#'));
}

export function convAvatar(key, size) {
  const id = Number(key.slice(1));
  if (key[0] === 'c') return chatAvatar(S.chats.get(id), size);
  return avatar(id, S.users.get(id)?.name, size);
}

export function presenceOf(id) {
  return S.presence.get(id) || { show: 'offline' };
}

export function dot(id) {
  return h('span.dot.' + presenceOf(id).show, { title: t(presenceOf(id).show) });
}

export function presenceText(id) {
  const p = presenceOf(id);
  if (p.show === 'offline') return lastSeen(p.last_seen, Date.now(), lang, t);
  return t(p.show) + (p.status ? ' · ' + p.status : '');
}

// errorText turns a bridge or HTTP error into a sentence in the user's language.
export function errorText(e) {
  const code = e && e.code;
  if (code && t('err_' + code) !== 'err_' + code) return t('err_' + code);
  return (e && e.message) || t('error');
}

export function toast(e, cls = '') {
  const el = h('div.toast' + cls, { role: 'alert' }, typeof e === 'string' ? e : errorText(e));
  document.body.appendChild(el);
  setTimeout(() => el.remove(), 4000);
  return el;
}

// showCard puts a card in the overlay; kind and id say what it shows, so
// live updates can redraw the right one.
let lastFocus = null;
export function showCard(card, kind, id) {
  if (V.profile.classList.contains('hidden')) lastFocus = document.activeElement;
  // A live redraw keeps the focus on the same control (by class, within
  // the same member row), so keyboard and screen-reader users keep their place.
  const prev = V.profile.contains(document.activeElement) ? document.activeElement : null;
  const cls = prev ? prev.classList[prev.classList.length - 1] : '';
  const row = prev?.closest('[data-user]')?.dataset.user;
  delete V.profile.dataset.user;
  delete V.profile.dataset.chat;
  delete V.profile.dataset.view;
  if (kind) V.profile.dataset[kind] = String(id ?? '');
  replace(V.profile, card);
  V.profile.classList.remove('hidden');
  if (!card.contains(document.activeElement)) {
    let f = null;
    if (cls) f = (row ? card.querySelector(`[data-user="${Number(row)}"] .${cls}`) : null) || card.querySelector('.' + cls);
    (f || card.querySelector('[autofocus]') || card.querySelector('.close'))?.focus();
  }
}

export function closeCard() {
  if (V.profile.classList.contains('hidden')) return;
  V.profile.classList.add('hidden');
  delete V.profile.dataset.user; delete V.profile.dataset.chat; delete V.profile.dataset.view;
  if (lastFocus && document.contains(lastFocus)) lastFocus.focus();
  lastFocus = null;
}

export function closeBtn() {
  return h('button.icon-btn.close', { type: 'button', onclick: closeCard, 'aria-label': t('close'), title: t('close') }, icon('close'));
}

// fileButton is a file picker drawn as a button: the browser's own
// "Choose file / No file chosen" control is visually hidden inside a
// label that looks like a button, so a click or the keyboard (the input
// keeps the focus, shown on the label) opens the file chooser. name is the
// input's accessible name (default: the label); onFile gets the File.
export function fileButton(label, accept, onFile, cls = '', name = label) {
  const input = h('input.visually-hidden', { type: 'file', accept, 'aria-label': name,
    onchange: () => { const f = input.files[0]; input.value = ''; if (f) onFile(f); } });
  return h('label.btn-secondary.file-btn' + cls, null, h('span', { 'aria-hidden': 'true' }, label), input);
}
