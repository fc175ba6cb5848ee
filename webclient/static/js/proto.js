// The bridge connection: typed JSON frames over one WebSocket, replies
// matched by id, automatic reconnection with backoff, and resume: on every
// (re)connect the client says hello with the highest message id it has and
// the server replays what it missed before "synced". Sends made while
// offline wait in an outbox and go out after the replay, skipping any
// whose origin_id the replay showed was already stored.

export class Bridge {
  // opts: {url, WebSocket, onEvent(frame), onState(state), setTimeout, clearTimeout, random}
  constructor(opts) {
    this.o = opts;
    this.ws = null;
    this.seq = 0;
    this.pending = new Map(); // id -> {resolve, reject, frame}
    this.outbox = []; // send frames not yet acknowledged
    this.lastId = opts.lastId || 0;
    this.attempt = 0;
    this.state = 'idle';
    this.closed = false;
    this.seenOrigins = new Set();
    this.timer = null;
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.o.onState?.(s);
  }

  connect() {
    this.closed = false;
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new this.o.WebSocket(this.o.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (ev) => this.onFrame(ws, ev.data);
    ws.onclose = (ev) => this.onClose(ws, ev);
    ws.onerror = () => {};
  }

  close() {
    this.closed = true;
    (this.o.clearTimeout || clearTimeout)(this.timer);
    if (this.ws) this.ws.close();
    this.ws = null;
    this.setState('closed');
  }

  onOpen(ws) {
    if (ws !== this.ws) return;
    this.seenOrigins.clear();
    this.raw({ type: 'hello', id: this.nextId(), last_id: this.lastId }, true);
  }

  onClose(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    // Commands other than sends fail now; sends stay in the outbox.
    for (const [id, p] of this.pending) {
      if (p.frame.type === 'send') continue;
      p.reject(Object.assign(new Error('disconnected'), { code: 'disconnected' }));
      this.pending.delete(id);
    }
    if (ev && (ev.code === 4001 || ev.code === 4003)) {
      this.setState('unauthorized');
      this.closed = true;
      return;
    }
    if (!this.closed) this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.setState('reconnecting');
    const base = Math.min(30000, 500 * 2 ** Math.min(this.attempt, 6));
    const delay = base / 2 + (this.o.random ? this.o.random() : Math.random()) * base / 2;
    this.attempt++;
    this.timer = (this.o.setTimeout || setTimeout)(() => this.connect(), delay);
  }

  nextId() { return 'c' + (++this.seq); }

  raw(frame, force) {
    if (!this.ws || (!force && this.state !== 'ready')) return false;
    try { this.ws.send(JSON.stringify(frame)); return true; } catch { return false; }
  }

  onFrame(ws, data) {
    if (ws !== this.ws) return;
    let f;
    try { f = JSON.parse(data); } catch { return; }
    if (!f || typeof f.type !== 'string') return;
    if (f.type === 'message' && f.message) {
      this.noteMessage(f.message);
    }
    if (f.type === 'synced') {
      this.attempt = 0;
      this.setState('ready');
      this.o.onEvent?.(f);
      this.flushOutbox();
      return;
    }
    if ((f.type === 'ack' || f.type === 'error') && f.id && this.pending.has(f.id)) {
      const p = this.pending.get(f.id);
      this.pending.delete(f.id);
      if (p.frame.type === 'send') this.outbox = this.outbox.filter((x) => x !== p.frame);
      if (f.type === 'ack') {
        if (f.data?.message) this.noteMessage(f.data.message);
        p.resolve(f.data || {});
      } else p.reject(Object.assign(new Error(f.message || f.code), { code: f.code }));
      return;
    }
    if (f.type === 'ack') {
      // The hello's ack: a client that has seen nothing resumes from the
      // archive's head next time (what is older is history).
      if (f.data && f.data.head > this.lastId && this.lastId === 0) this.lastId = f.data.head;
      this.o.onEvent?.({ type: 'hello', data: f.data || {} });
      return;
    }
    this.o.onEvent?.(f);
  }

  noteMessage(m) {
    if (m.id > this.lastId) this.lastId = m.id;
    if (m.origin_id) this.seenOrigins.add(m.origin_id);
  }

  flushOutbox() {
    const keep = [];
    for (const f of this.outbox) {
      const p = this.findPending(f);
      if (this.seenOrigins.has(f.origin_id)) {
        // Stored before the connection dropped: the replay brought it.
        if (p) { this.pending.delete(f.id); p.resolve({ replayed: true }); }
        continue;
      }
      keep.push(f);
    }
    this.outbox = keep;
    for (const f of this.outbox) this.raw(f);
  }

  findPending(frame) {
    const p = this.pending.get(frame.id);
    return p && p.frame === frame ? p : null;
  }

  // request sends a command and resolves with the ack's data.
  request(type, payload = {}) {
    const frame = { ...payload, type, id: this.nextId() };
    return new Promise((resolve, reject) => {
      this.pending.set(frame.id, { resolve, reject, frame });
      if (type === 'send') {
        this.outbox.push(frame);
        this.raw(frame);
        return;
      }
      if (!this.raw(frame)) {
        this.pending.delete(frame.id);
        reject(Object.assign(new Error('disconnected'), { code: 'disconnected' }));
      }
    });
  }

  // notify sends a command whose reply nobody waits for (typing).
  notify(type, payload = {}) {
    this.raw({ ...payload, type });
  }
}

// newOriginId makes a client-chosen id for a message (XEP-0359 origin-id).
export function newOriginId(rand = Math.random) {
  let s = '';
  for (let i = 0; i < 4; i++) s += Math.floor(rand() * 0x100000000).toString(36);
  return 'w' + Date.now().toString(36) + s;
}

// mergeMessages inserts messages into a list sorted by id, replacing ones
// with the same id (edits) and never duplicating.
export function mergeMessages(list, incoming) {
  const byId = new Map(list.map((m) => [m.id, m]));
  for (const m of incoming) {
    const old = byId.get(m.id);
    byId.set(m.id, old ? { ...old, ...m } : m);
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

// convKey names a conversation: "u<id>" for a person, "c<id>" for a chat.
export function convKey(m, me) {
  if (m.chat) return 'c' + m.chat;
  return 'u' + (m.from === me ? m.to : m.from);
}
