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
