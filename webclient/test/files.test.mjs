import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stripFileLines, formatSize, safeFileURL, isImage } from '../static/js/files.js';

test('stripFileLines drops the capability URL lines, one per file', () => {
  const files = [{ id: 1 }, { id: 2 }];
  const body = 'Смотрите макет\nhttps://chat.example/upload/AbC123/%D0%BC.png\nhttps://chat.example/upload/x9/report.pdf';
  assert.equal(stripFileLines(body, files), 'Смотрите макет');
  assert.equal(stripFileLines('https://chat.example/upload/s/a.png', [{ id: 1 }]), '');
  // Only as many lines as files, only upload URLs, only at the end.
  assert.equal(stripFileLines('see https://x.example/upload/a/b\nhttps://x.example/upload/c/d', [{ id: 1 }]), 'see https://x.example/upload/a/b');
  assert.equal(stripFileLines('https://portal.example/reports/42', [{ id: 1 }]), 'https://portal.example/reports/42');
  assert.equal(stripFileLines('text\nhttps://x.example/upload/a/b', []), 'text\nhttps://x.example/upload/a/b');
  assert.equal(stripFileLines(undefined, null), '');
});

test('formatSize', () => {
  assert.equal(formatSize(512), '512\u00a0B');
  assert.equal(formatSize(48213), '47\u00a0KB');
  assert.equal(formatSize(3.4 * 1024 * 1024), '3.4\u00a0MB');
  assert.equal(formatSize(3.4 * 1024 * 1024, 'ru'), '3,4\u00a0МБ');
});

test('only the server\'s own file paths are used', () => {
  assert.equal(safeFileURL('/files/7'), '/files/7');
  assert.equal(safeFileURL('/files/7/thumb'), '/files/7/thumb');
  assert.equal(safeFileURL('javascript:alert(1)'), '');
  assert.equal(safeFileURL('https://evil.example/files/7'), '');
  assert.equal(safeFileURL('/files/7/../../logout'), '');
  assert.ok(isImage({ content_type: 'image/png', thumb_url: '/files/7/thumb' }));
  assert.ok(!isImage({ content_type: 'image/png' }));
  assert.ok(!isImage({ content_type: 'application/pdf', thumb_url: '/files/7/thumb' }));
});
