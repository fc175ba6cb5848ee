import test from 'node:test';
import assert from 'node:assert/strict';
import { mentionQuery, matchMembers } from '../static/js/mention.js';

test('mentionQuery finds the @text typed before the caret', () => {
  assert.deepEqual(mentionQuery('Привет, @Ива'), { q: 'Ива', start: 8 });
  assert.deepEqual(mentionQuery('@'), { q: '', start: 0 });
  assert.equal(mentionQuery('mail ivan@corp'), null);
  assert.equal(mentionQuery('@Иван Иванов, привет'), null);
});

test('matchMembers matches any word of the name or the login', () => {
  const users = [{ id: 1, name: 'Иван Иванов', login: 'ivanov' }, { id: 2, name: 'Мария Петрова', login: 'petrova' }, { id: 3, name: 'Alice Johnson', login: 'alice' }];
  assert.deepEqual(matchMembers(users, 'пет').map((u) => u.id), [2]);
  assert.deepEqual(matchMembers(users, 'iva').map((u) => u.id), [1]);
  assert.deepEqual(matchMembers(users, 'john').map((u) => u.id), [3]);
  assert.deepEqual(matchMembers(users, '').map((u) => u.id), [1, 2, 3]);
  assert.deepEqual(matchMembers(users, 'zz'), []);
});
