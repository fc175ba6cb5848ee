import test from 'node:test';
import assert from 'node:assert/strict';
import { escapeHTML, tokenize, safeHref, snippetParts } from '../static/js/text.js';

test('escapeHTML escapes every markup character', () => {
  assert.equal(escapeHTML(`<script>alert("x")</script> & 'q'`), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;');
  assert.equal(escapeHTML(null), '');
});

test('tokenize keeps markup as text', () => {
  const toks = tokenize('<b>bold</b> <img src=x onerror=alert(1)>');
  assert.deepEqual(toks, [{ t: 'text', v: '<b>bold</b> <img src=x onerror=alert(1)>' }]);
});

test('tokenize links http(s) and www only', () => {
  const toks = tokenize('see https://example.com/a?b=1, javascript:alert(1) and www.test.org.');
  assert.deepEqual(toks, [
    { t: 'text', v: 'see ' },
    { t: 'link', v: 'https://example.com/a?b=1', href: 'https://example.com/a?b=1' },
    { t: 'text', v: ', javascript:alert(1) and ' },
    { t: 'link', v: 'www.test.org', href: 'https://www.test.org/' },
    { t: 'text', v: '.' },
  ]);
});

test('tokenize keeps balanced parentheses and splits lines', () => {
  const toks = tokenize('(https://en.wikipedia.org/wiki/X_(y))\nnext');
  assert.deepEqual(toks, [
    { t: 'text', v: '(' },
    { t: 'link', v: 'https://en.wikipedia.org/wiki/X_(y)', href: 'https://en.wikipedia.org/wiki/X_(y)' },
    { t: 'text', v: ')' },
    { t: 'br' },
    { t: 'text', v: 'next' },
  ]);
});

test('safeHref refuses other schemes', () => {
  for (const bad of ['javascript:alert(1)', 'data:text/html,x', 'vbscript:x', 'file:///etc/passwd', '']) {
    assert.equal(safeHref(bad), '', bad);
  }
  assert.equal(safeHref('http://a.b/'), 'http://a.b/');
});

test('snippetParts reads only <mark> and unescapes the rest', () => {
  assert.deepEqual(snippetParts('a &lt;b&gt; <mark>сообщение</mark> &amp; <i>x</i>'), [
    { text: 'a <b> ', mark: false },
    { text: 'сообщение', mark: true },
    { text: ' & <i>x</i>', mark: false },
  ]);
});

test('splitMentions marks @names and @logins of members only', async () => {
  const { splitMentions } = await import('../static/js/text.js');
  const names = ['Мария Петрова', 'petrova', 'Иван Иванов', 'ivanov', 'Ivan'];
  assert.deepEqual(splitMentions('@Мария Петрова, посмотрите', names), [{ text: '@Мария Петрова', mention: 0 }, { text: ', посмотрите', mention: -1 }]);
  assert.deepEqual(splitMentions('cc @ivanov and @Ivan.', names), [{ text: 'cc ', mention: -1 }, { text: '@ivanov', mention: 3 }, { text: ' and ', mention: -1 }, { text: '@Ivan', mention: 4 }, { text: '.', mention: -1 }]);
  // Not inside words or e-mail addresses, not a longer word, not an unknown name.
  assert.deepEqual(splitMentions('mail ivan@ivanov.ru', names), [{ text: 'mail ivan@ivanov.ru', mention: -1 }]);
  assert.deepEqual(splitMentions('@Ivanka @nobody', names), [{ text: '@Ivanka @nobody', mention: -1 }]);
  assert.deepEqual(splitMentions('<b>@ivanov</b>', names), [{ text: '<b>', mention: -1 }, { text: '@ivanov', mention: 3 }, { text: '</b>', mention: -1 }]);
});
