import test from 'node:test';
import assert from 'node:assert/strict';
import { noticeText } from '../static/js/notice.js';
import { IdleWatch } from '../static/js/idle.js';
import { decide, loadSettings, saveSettings } from '../static/js/alerts.js';
import { insertText, gridMove, EMOJI } from '../static/js/emoji.js';
import { makeT } from '../static/js/i18n.js';

const names = new Map([[1, 'Иван Иванов'], [2, 'Alice Johnson'], [3, 'Мария Петрова']]);
const nameOf = (id) => names.get(id);

test('system notices are rendered in the reader\'s language', () => {
  const ru = makeT('ru'), en = makeT('en');
  assert.equal(noticeText({ type: 'added', actor: 1, users: [2, 3] }, nameOf, ru), 'Иван Иванов добавил(а) в чат: Alice Johnson, Мария Петрова');
  assert.equal(noticeText({ type: 'added', actor: 1, users: [2] }, nameOf, en), 'Иван Иванов added Alice Johnson');
  assert.equal(noticeText({ type: 'joined', users: [2] }, nameOf, ru), 'Alice Johnson вступил(а) в чат');
  assert.equal(noticeText({ type: 'left', users: [3] }, nameOf, ru), 'Мария Петрова покинул(а) чат');
  assert.equal(noticeText({ type: 'removed', actor: 1, users: [3] }, nameOf, ru), 'Иван Иванов исключил(а) из чата: Мария Петрова');
  assert.equal(noticeText({ type: 'closed' }, nameOf, ru), 'Чат закрыт');
  assert.equal(noticeText({ type: 'closed', actor: 1 }, nameOf, en), 'Иван Иванов closed the chat');
  assert.equal(noticeText({ type: 'created', actor: 1, title: 'Релиз' }, nameOf, ru), 'Иван Иванов создал(а) чат «Релиз»');
  assert.equal(noticeText({ type: 'created', title: 'Release' }, nameOf, en), 'The chat “Release” was created');
  assert.equal(noticeText({ type: 'renamed', actor: 2, title: 'Релиз 2' }, nameOf, en), 'Alice Johnson renamed the chat to “Релиз 2”');
  assert.equal(noticeText({ type: 'renamed', title: 'Q3' }, nameOf, ru), 'Чат переименован в «Q3»');
  assert.equal(noticeText({ type: 'changed', actor: 1, fields: ['description', 'color'] }, nameOf, ru), 'Иван Иванов изменил(а) в чате: описание, цвет');
  assert.equal(noticeText({ type: 'changed', actor: 1, fields: ['avatar'] }, nameOf, en), 'Иван Иванов changed the chat’s picture');
  assert.equal(noticeText({ type: 'changed', fields: ['color'] }, nameOf, en), 'The chat’s color changed');
  assert.equal(noticeText({ type: 'changed', actor: 1, fields: ['secret'] }, nameOf, en), null);
  // Unknown types and names keep the server's text (null).
  assert.equal(noticeText({ type: 'frobbed', actor: 1 }, nameOf, ru), null);
  assert.equal(noticeText({ type: 'renamed', actor: 1 }, nameOf, ru), null);
  assert.equal(noticeText({ type: 'added', actor: 9, users: [2] }, nameOf, ru), null);
  assert.equal(noticeText({ type: 'left', users: [] }, nameOf, ru), null);
  assert.equal(noticeText(null, nameOf, ru), null);
  // A name is text, not markup: it comes back as given.
  names.set(4, '<b>x</b>');
  assert.equal(noticeText({ type: 'joined', users: [4] }, nameOf, en), '<b>x</b> joined the chat');
});

test('idle: away after the idle time, back on input, never over dnd', () => {
  let now = 0;
  const sent = [];
  const w = new IdleWatch({ idleMs: 1000, now: () => now, send: (s) => sent.push(s) });
  now = 999; w.tick();
  assert.deepEqual(sent, []);
  now = 1000; w.tick(); w.tick();
  assert.deepEqual(sent, ['away']);
  now = 1500; w.activity(); w.activity();
  assert.deepEqual(sent, ['away', 'online']);
  w.choose('dnd');
  now = 99999; w.tick();
  assert.deepEqual(sent, ['away', 'online'], 'dnd is not overridden');
  w.activity();
  assert.deepEqual(sent, ['away', 'online']);
  w.choose('online');
  now += 1000; w.tick();
  assert.deepEqual(sent, ['away', 'online', 'away']);
  // Choosing a status while auto-away ends the automatic state.
  w.choose('dnd'); w.activity();
  assert.deepEqual(sent, ['away', 'online', 'away']);
});

test('alerts: mute, mentions, dnd and the settings', () => {
  const mem = new Map();
  const storage = { getItem: (k) => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, v) };
  const s = loadSettings(storage);
  assert.deepEqual(s, { desktop: true, sound: false }, 'defaults: desktop on, sound off');
  assert.deepEqual(decide({ settings: s }), { notify: true, sound: false });
  assert.deepEqual(decide({ settings: s, muted: true }), { notify: false, sound: false });
  assert.deepEqual(decide({ settings: s, muted: true, mentioned: true }), { notify: true, sound: false });
  saveSettings({ desktop: true, sound: true }, storage);
  const on = loadSettings(storage);
  assert.deepEqual(decide({ settings: on, muted: true, mentioned: true }), { notify: true, sound: true });
  assert.deepEqual(decide({ settings: on, dnd: true }), { notify: false, sound: false });
  assert.deepEqual(decide({ settings: on, dnd: true, mentioned: true }), { notify: false, sound: false });
  saveSettings({ desktop: false, sound: true }, storage);
  assert.deepEqual(decide({ settings: loadSettings(storage) }), { notify: false, sound: true });
  mem.set('vestnik.alerts', '{broken');
  assert.deepEqual(loadSettings(storage), { desktop: true, sound: false });
});

test('emoji: insert at the caret, move in the grid', () => {
  assert.deepEqual(insertText('Привет мир', 7, 7, '👍'), { value: 'Привет 👍мир', caret: 9 });
  assert.deepEqual(insertText('abc', 1, 2, '🎉'), { value: 'a🎉c', caret: 3 });
  assert.deepEqual(insertText('abc', undefined, undefined, '!'), { value: 'abc!', caret: 4 });
  const n = EMOJI.length;
  assert.equal(gridMove(0, 'ArrowLeft', n), 0);
  assert.equal(gridMove(0, 'ArrowRight', n), 1);
  assert.equal(gridMove(0, 'ArrowDown', n), 8);
  assert.equal(gridMove(3, 'ArrowUp', n), 3);
  assert.equal(gridMove(5, 'End', n), n - 1);
  assert.equal(gridMove(n - 1, 'ArrowRight', n), n - 1);
  assert.equal(gridMove(2, 'a', n), -1);
  assert.equal(new Set(EMOJI).size, n, 'no emoji twice');
});
