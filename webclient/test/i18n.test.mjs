import test from 'node:test';
import assert from 'node:assert/strict';
import { pickLang, makeT, dictionaries } from '../static/js/i18n.js';

test('pickLang follows the browser languages', () => {
  assert.equal(pickLang(['ru-RU', 'en']), 'ru');
  assert.equal(pickLang(['de-DE', 'en-US']), 'en');
  assert.equal(pickLang(['uk']), 'ru');
  assert.equal(pickLang(['fr']), 'en');
  assert.equal(pickLang([]), 'en');
});

test('makeT substitutes variables and falls back to English', () => {
  const ru = makeT('ru');
  assert.equal(ru('members', { n: 5 }), 'участников: 5');
  assert.equal(makeT('en')('typingIn', { name: 'Ann' }), 'Ann is typing…');
  assert.equal(ru('no-such-key'), 'no-such-key');
});

test('both dictionaries have the same keys', () => {
  assert.deepEqual(Object.keys(dictionaries.ru).sort(), Object.keys(dictionaries.en).sort());
});

test('the controls carry the names the issue asks for, in both languages', () => {
  const ru = makeT('ru'), en = makeT('en');
  const want = {
    newChat: ['Новый чат', 'New chat'], attachFile: ['Прикрепить файл', 'Attach file'],
    membersTitle: ['Участники', 'Members'], leaveChat: ['Покинуть чат', 'Leave chat'],
    mute: ['Отключить уведомления', 'Mute'],
  };
  for (const [k, [r, e]] of Object.entries(want)) {
    assert.equal(ru(k), r, k);
    assert.equal(en(k), e, k);
  }
  for (const d of [dictionaries.ru, dictionaries.en]) {
    for (const [k, v] of Object.entries(d)) assert.ok(typeof v === 'string' && v.length > 0, k);
  }
});
