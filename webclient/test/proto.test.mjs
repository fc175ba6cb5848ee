import test from 'node:test';
import assert from 'node:assert/strict';
import { Bridge, mergeMessages, convKey, newOriginId } from '../static/js/proto.js';

// FakeSocket is an in-memory WebSocket the tests drive: they play the server.
class FakeSocket {
  static all = [];
  constructor(url) { this.url = url; this.sent = []; this.closed = false; FakeSocket.all.push(this); }
  send(s) { this.sent.push(JSON.parse(s)); }
  close() { this.closed = true; }
  open() { this.onopen(); }
  recv(f) { this.onmessage({ data: JSON.stringify(f) }); }
  drop(code = 1006) { this.onclose({ code }); }
}

function setup() {
  FakeSocket.all = [];
  const events = [], states = [], timers = [];
  const b = new Bridge({
    url: 'ws://x/ws', WebSocket: FakeSocket, onEvent: (f) => events.push(f), onState: (s) => states.push(s),
    setTimeout: (f) => { timers.push(f); return timers.length; }, clearTimeout: () => {}, random: () => 0.5,
  });
  return { b, events, states, timers };
}

function hello(ws, lastId) {
  ws.open();
  const h = ws.sent.at(-1);
  assert.equal(h.type, 'hello');
  assert.equal(h.last_id, lastId);
  ws.recv({ type: 'ack', id: h.id, data: { presence: { show: 'dnd', status: '' } } });
  return h;
}

test('hello, synced, request and ack', async () => {
  const { b, events, states } = setup();
  b.connect();
  const ws = FakeSocket.all[0];
  hello(ws, 0);
  ws.recv({ type: 'synced' });
  assert.equal(b.state, 'ready');
  assert.deepEqual(states, ['connecting', 'ready']);
  // The hello's answer reaches the app (the remembered presence), then synced.
  assert.deepEqual(events[0], { type: 'hello', data: { presence: { show: 'dnd', status: '' } } });
  assert.equal(events[1].type, 'synced');
  const p = b.request('contacts');
  const f = ws.sent.at(-1);
  assert.equal(f.type, 'contacts');
  ws.recv({ type: 'ack', id: f.id, data: { users: [1] } });
  assert.deepEqual(await p, { users: [1] });
  const p2 = b.request('profile', { user: 9 });
  ws.recv({ type: 'error', id: ws.sent.at(-1).id, code: 'not_found', message: 'no' });
  await assert.rejects(p2, (e) => e.code === 'not_found');
});

test('resume sends the last message id and replays without duplicates', async () => {
  const { b, events, timers } = setup();
  b.connect();
  let ws = FakeSocket.all[0];
  hello(ws, 0);
  ws.recv({ type: 'synced' });
  ws.recv({ type: 'message', message: { id: 41, from: 2, to: 1, body: 'a' } });
  ws.recv({ type: 'message', message: { id: 42, from: 2, to: 1, body: 'b' } });
  // A send in flight when the connection drops.
  const sent = b.request('send', { to: { user: 2 }, body: 'hi', origin_id: 'o1' });
  const lost = b.request('contacts');
  ws.drop();
  await assert.rejects(lost, (e) => e.code === 'disconnected');
  assert.equal(b.state, 'reconnecting');
  // A send made while offline.
  const later = b.request('send', { to: { user: 2 }, body: 'later', origin_id: 'o2' });
  timers.shift()();
  ws = FakeSocket.all[1];
  hello(ws, 42);
  // The server stored o1 before the drop: the replay brings it back.
  ws.recv({ type: 'message', replay: true, message: { id: 43, from: 1, to: 2, body: 'hi', origin_id: 'o1' } });
  ws.recv({ type: 'synced' });
  assert.deepEqual(await sent, { replayed: true });
  const resent = ws.sent.filter((f) => f.type === 'send');
  assert.deepEqual(resent.map((f) => f.origin_id), ['o2'], 'only the unsent message goes out again');
  ws.recv({ type: 'ack', id: resent[0].id, data: { message: { id: 44, from: 1, to: 2, body: 'later', origin_id: 'o2' } } });
  assert.equal((await later).message.id, 44);
  assert.equal(b.lastId, 44);
  assert.equal(events.filter((e) => e.type === 'message').length, 3);
});

test('a fresh client resumes from the head the server names', () => {
  const { b, timers } = setup();
  b.connect();
  let ws = FakeSocket.all[0];
  ws.open();
  ws.recv({ type: 'ack', id: ws.sent[0].id, data: { head: 500 } });
  ws.recv({ type: 'synced' });
  ws.drop();
  timers.shift()();
  ws = FakeSocket.all[1];
  ws.open();
  assert.equal(ws.sent[0].last_id, 500);
});

test('unauthorized close stops reconnecting', () => {
  const { b, timers, states } = setup();
  b.connect();
  FakeSocket.all[0].drop(4001);
  assert.equal(states.at(-1), 'unauthorized');
  assert.equal(timers.length, 0);
});

test('backoff grows and is capped', () => {
  const { b, timers } = setup();
  b.connect();
  for (let i = 0; i < 12; i++) {
    FakeSocket.all.at(-1).drop();
    timers.shift()();
  }
  assert.equal(b.attempt, 12);
  assert.equal(FakeSocket.all.length, 13);
});

test('mergeMessages dedupes and applies edits', () => {
  const l = mergeMessages([{ id: 2, body: 'b' }, { id: 1, body: 'a' }], [{ id: 2, body: 'B', edited: true }, { id: 3, body: 'c' }]);
  assert.deepEqual(l.map((m) => m.id), [1, 2, 3]);
  assert.equal(l[1].body, 'B');
});

test('convKey and origin ids', () => {
  assert.equal(convKey({ from: 1, to: 2 }, 1), 'u2');
  assert.equal(convKey({ from: 2, to: 1 }, 1), 'u2');
  assert.equal(convKey({ chat: 7, from: 2 }, 1), 'c7');
  assert.notEqual(newOriginId(), newOriginId());
});
