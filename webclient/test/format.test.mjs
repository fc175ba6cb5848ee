import test from 'node:test';
import assert from 'node:assert/strict';
import { initials, colorFor, groupMessages, dayLabel, lastSeen, sameDay } from '../static/js/format.js';
import { makeT } from '../static/js/i18n.js';

test('initials of Cyrillic and Latin names', () => {
  assert.equal(initials('Иван Иванов'), 'ИИ');
  assert.equal(initials('alice'), 'A');
  assert.equal(initials('Anna Maria Smith'), 'AS');
  assert.equal(initials('  '), '?');
});

test('colorFor is stable', () => {
  assert.equal(colorFor(7), colorFor(7));
  assert.notEqual(colorFor(1), colorFor(2));
});

test('groupMessages splits by day, author and pause', () => {
  const d = new Date(2026, 0, 10, 12, 0).getTime();
  const msgs = [
    { id: 1, from: 1, time: d },
    { id: 2, from: 1, time: d + 60000 },
    { id: 3, from: 2, time: d + 120000 },
    { id: 4, from: 2, time: d + 20 * 60000 },
    { id: 5, kind: 'system', from: 0, time: d + 21 * 60000 },
    { id: 6, from: 2, time: d + 86400000 },
  ];
  const days = groupMessages(msgs);
  assert.equal(days.length, 2);
  assert.deepEqual(days[0].runs.map((r) => r.msgs.map((m) => m.id)), [[1, 2], [3], [4], [5]]);
  assert.equal(days[0].runs[3].system, true);
  assert.deepEqual(days[1].runs.map((r) => r.msgs.map((m) => m.id)), [[6]]);
});

test('dayLabel and lastSeen', () => {
  const t = makeT('en');
  const now = new Date(2026, 2, 15, 10, 0).getTime();
  assert.equal(dayLabel(now - 3600000, now, 'en', t), 'Today');
  assert.equal(dayLabel(new Date(2026, 2, 14, 23, 0).getTime(), now, 'en', t), 'Yesterday');
  assert.match(dayLabel(new Date(2026, 2, 1).getTime(), now, 'en', t), /1 March/);
  assert.equal(lastSeen(now - 5 * 60000, now, 'en', t), 'last seen 5 min ago');
  assert.equal(lastSeen(0, now, 'en', t), 'offline');
  assert.ok(sameDay(now, now + 1000));
});
