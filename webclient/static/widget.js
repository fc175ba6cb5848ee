// Vestnik widget for any portal page (docs/bridge.md, "/widget.js"):
//   <script src="https://chat.example.com/widget.js" async
//           data-login-endpoint="/vestnik-login"></script>
// The portal's origin must be in `vestnik serve --widget-origins`. Sign-in
// comes from the portal: data-login-endpoint is a URL of the portal (POSTed
// with the portal's own cookie) answering {"url": one-time login link},
// i.e. the answer of POST /api/v1/users/{id}/login-token; data-login-url
// may give such a link directly. The link is exchanged once for a widget
// credential kept in this origin's localStorage: no third-party cookie.
// The tabs of one browser share one WebSocket: the tab holding a Web Lock
// is the leader, owns the socket and relays over a BroadcastChannel; when
// it closes another tab takes over. Without those APIs each tab connects.
(function () {
  'use strict';
  var me = document.currentScript;
  if (!me || window.__vestnikWidget) return;
  window.__vestnikWidget = true;
  var base = new URL(me.src).origin;
  var cfg = me.dataset || {};
  var KEY = 'vestnik-widget ' + base;
  var ru = /^(ru|uk|be|kk)\b/i.test(cfg.lang || navigator.language || '');
  var T = ru
    ? { title: 'Вестник', open: 'Открыть мессенджер', unread: 'непрочитанных', notes: 'Уведомления', none: 'Нет новых уведомлений', login: 'Войти в Вестник', note: 'Уведомление', mention: 'упоминание', reply: 'Ответ', send: 'Отправить', close: 'Закрыть', sent: 'Отправлено', failed: 'Не отправлено', logout: 'Выйти из виджета', messages: 'Непрочитанных сообщений', more: 'Подробнее', actions: 'Ответ на уведомление', chosen: 'Выбрано' }
    : { title: 'Vestnik', open: 'Open messenger', unread: 'unread', notes: 'Notifications', none: 'No new notifications', login: 'Sign in to Vestnik', note: 'Notification', mention: 'mention', reply: 'Reply', send: 'Send', close: 'Close', sent: 'Sent', failed: 'Not sent', logout: 'Sign out of the widget', messages: 'Unread messages', more: 'Details', actions: 'Answer the notification', chosen: 'Chosen' };

  // ---- view (every tab) ----
  var host = document.createElement('div');
  host.style.cssText = 'position:fixed;right:20px;bottom:20px;z-index:2147483000';
  var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
  var style = document.createElement('style');
  style.textContent = [
    ':host{all:initial}*{box-sizing:border-box;font:14px/1.4 system-ui,sans-serif}',
    '.b{width:56px;height:56px;border-radius:50%;background:#3b82c4;border:0;cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;position:relative;margin-left:auto}',
    '.b svg{width:28px;height:28px;fill:#fff}',
    '.c{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#e5484d;color:#fff;font-weight:700;font-size:12px;line-height:16px;text-align:center;padding:0 5px;border:2px solid #fff}',
    '.p,.q{width:320px;max-width:calc(100vw - 40px);background:#fff;color:#1b1f24;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.2);overflow:hidden;margin-bottom:10px}',
    '.h{padding:10px 14px;font-weight:600;border-bottom:1px solid #e6e8eb;display:flex;gap:8px;align-items:center}',
    '.h span{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}',
    '.n,.t{padding:10px 14px;border-bottom:1px solid #f0f1f3;overflow-wrap:anywhere;white-space:pre-wrap}',
    '.m{padding:10px 14px;color:#707a86}',
    'form{display:flex;gap:6px;padding:8px 10px}input{flex:1;min-width:0;padding:6px 8px;border:1px solid #c9ced4;border-radius:8px}',
    'button.k,a.o,button.o{background:none;border:0;color:#2f6fab;font-weight:600;cursor:pointer;text-decoration:none;padding:6px 8px}',
    'button.x{background:none;border:0;cursor:pointer;font-size:18px;line-height:1;color:#707a86;padding:0 4px}',
    '.f{display:flex;justify-content:space-between;padding:4px 6px}',
    '.a{display:flex;flex-wrap:wrap;gap:6px;padding:8px 14px 0}.a button{border:1px solid #2f6fab;border-radius:8px;background:#fff;color:#2f6fab;font-weight:600;padding:4px 10px;cursor:pointer}',
    '.a button[aria-pressed=true]{background:#2f6fab;color:#fff}.a button:disabled{cursor:default}.a button:disabled:not([aria-pressed=true]){opacity:.5}',
    '[hidden]{display:none!important}',
  ].join('');
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function button(cls, text, label, fn) {
    var b = el('button', cls, text);
    b.type = 'button';
    if (label) b.setAttribute('aria-label', label);
    b.addEventListener('click', fn);
    return b;
  }
  var pops = el('div');
  pops.setAttribute('role', 'log');
  pops.setAttribute('aria-live', 'polite');
  pops.setAttribute('aria-label', T.title);
  var panel = el('div', 'p');
  panel.hidden = true;
  panel.id = 'vestnik-panel';
  var btn = el('button', 'b');
  btn.type = 'button';
  btn.setAttribute('aria-expanded', 'false');
  btn.setAttribute('aria-controls', panel.id);
  btn.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M20 2H4a2 2 0 00-2 2v18l4-4h14a2 2 0 002-2V4a2 2 0 00-2-2z"/></svg>'; // constant markup, no user data
  var count = el('span', 'c');
  count.hidden = true;
  count.setAttribute('aria-hidden', 'true');
  btn.appendChild(count);
  root.appendChild(style);
  root.appendChild(pops);
  root.appendChild(panel);
  root.appendChild(btn);
  btn.addEventListener('click', function () {
    panel.hidden = !panel.hidden;
    btn.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) request({ t: 'refresh' });
  });

  var S = { user: null, msgs: 0, notes: 0, list: [] }; // what the leader knows
  function render(s) {
    S = s;
    var n = (s.msgs || 0) + (s.notes || 0);
    count.hidden = !n;
    count.textContent = n > 99 ? '99+' : String(n);
    btn.setAttribute('aria-label', T.title + (n ? ': ' + n + ' ' + T.unread : ''));
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    if (!s.user) {
      if (cfg.loginEndpoint) panel.appendChild(button('o', T.login, null, function () { request({ t: 'signin' }); }));
      else {
        var a0 = el('a', 'o', T.login);
        a0.href = base + '/';
        a0.target = '_blank';
        a0.rel = 'noopener';
        panel.appendChild(a0);
      }
      return;
    }
    var h = el('div', 'h');
    h.appendChild(el('span', '', T.title + ' · ' + s.user.name));
    panel.appendChild(h);
    if (s.msgs) panel.appendChild(el('div', 'm', T.messages + ': ' + s.msgs));
    var notes = s.list || [];
    if (!notes.length) panel.appendChild(el('div', 'm', T.none));
    notes.slice(0, 5).forEach(function (x) { panel.appendChild(el('div', 'n', x.text)); });
    var f = el('div', 'f');
    f.appendChild(button('o', T.open, null, openMessenger));
    f.appendChild(button('k', T.logout, null, function () { request({ t: 'logout' }); }));
    panel.appendChild(f);
  }

  // A pop-up: a personal message (with a reply field) or a notification.
  function popup(p) {
    if (pops.querySelector('[data-k="' + p.k + '"]')) return;
    var card = el('div', 'q');
    card.setAttribute('data-k', p.k);
    card.setAttribute('role', 'group');
    var who = p.kind === 'msg' ? p.name : p.sender ? T.note + ' · ' + p.sender : T.note;
    card.setAttribute('aria-label', T.title + ': ' + who);
    var h = el('div', 'h');
    h.appendChild(el('span', '', who));
    h.appendChild(button('x', '×', T.close + ': ' + who, function () { request({ t: 'close', k: p.k }); }));
    card.appendChild(h);
    card.appendChild(el('div', 't', p.text));
    if (p.buttons && p.buttons.length) card.appendChild(noteButtons(p));
    var foot = el('div', 'f');
    if (p.kind === 'msg') {
      var form = el('form');
      var input = el('input');
      input.setAttribute('aria-label', T.reply + ': ' + p.name);
      input.placeholder = T.reply + '…';
      input.maxLength = 4000;
      var send = el('button', 'k', T.send);
      send.type = 'submit';
      form.appendChild(input);
      form.appendChild(send);
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        var body = input.value.trim();
        if (!body) return;
        send.disabled = true;
        call({ type: 'send', to: p.to, body: body, origin_id: 'wg' + Math.random().toString(36).slice(2) }).then(function (f) {
          if (f.type !== 'ack') throw new Error(f.code);
          request({ t: 'close', k: p.k });
          return call({ type: 'read', with: p.to, up_to: p.id }).then(function () { request({ t: 'refresh' }); });
        }).catch(function () {
          send.disabled = false;
          send.textContent = T.failed + ' · ' + T.send;
        });
      });
      card.appendChild(form);
    } else if (/^https?:\/\//i.test(p.link || '')) {
      var a = el('a', 'o', T.more);
      a.href = p.link;
      a.target = '_blank';
      a.rel = 'noopener';
      foot.appendChild(a);
    }
    foot.appendChild(button('o', T.open, null, openMessenger));
    card.appendChild(foot);
    pops.appendChild(card);
    while (pops.children.length > 3) pops.removeChild(pops.firstChild);
  }

  // A notification's buttons: pressing one answers it through the bridge
  // (notification_action, as the messenger's bell does); the chosen one
  // stays marked and the others are disabled.
  function noteButtons(p) {
    var g = el('div', 'a');
    g.setAttribute('role', 'group');
    g.setAttribute('aria-label', T.actions);
    var mark = function (answer) {
      Array.prototype.forEach.call(g.children, function (b, i) {
        var chosen = p.buttons[i].value === answer;
        b.disabled = !!answer;
        b.setAttribute('aria-pressed', String(chosen));
        b.setAttribute('aria-label', chosen ? T.chosen + ': ' + p.buttons[i].title : p.buttons[i].title);
      });
    };
    p.buttons.forEach(function (b) {
      g.appendChild(button('', b.title, b.title, function () {
        call({ type: 'notification_action', notification_id: p.nid, answer: b.value }).then(function (f) {
          if (f.type !== 'ack' && f.code !== 'answered') throw new Error(f.code);
          mark(b.value);
          request({ t: 'refresh' });
        }).catch(function () { /* left as it was: press again */ });
      }));
    });
    mark(p.answer || '');
    return g;
  }

  // The full messenger, signed in through a fresh one-time link. The
  // window opens at once (popup blockers want the click) and goes on.
  function openMessenger() {
    var w = window.open('', '_blank');
    if (w) w.opener = null;
    var go = function (u) { if (w) w.location.href = u; else window.open(u, '_blank', 'noopener'); };
    if (!S.user) return go(base + '/');
    call({ type: 'login_link' }).then(function (f) { go(f.type === 'ack' ? f.data.url : base + '/'); }, function () { go(base + '/'); });
  }

  // ---- between tabs ----
  var chan = window.BroadcastChannel && navigator.locks ? new BroadcastChannel(KEY) : null;
  var leader = false;
  var waiting = {};
  var seq = 0;
  var tab = Math.random().toString(36).slice(2, 8);
  // show applies what the leader says, in every tab.
  function show(m) {
    if (m.t === 'state') render(m.s);
    else if (m.t === 'pop') popup(m.p);
    else if (m.t === 'done') {
      var c = pops.querySelector('[data-k="' + m.k + '"]');
      if (c) c.remove();
    } else if (m.t === 'res' && waiting[m.id]) {
      waiting[m.id](m.f);
      delete waiting[m.id];
    }
  }
  function emit(m) {
    show(m);
    if (chan) chan.postMessage(m);
  }
  // request asks the leader (this tab or another) to do something.
  function request(m) {
    if (leader) lead(m);
    else if (chan) chan.postMessage(m);
  }
  // call sends a frame over the shared socket; it resolves with the
  // server's answer (an ack or an error frame).
  function call(f) {
    var id = 'w' + tab + (++seq);
    return new Promise(function (ok, fail) {
      waiting[id] = ok;
      setTimeout(function () { if (waiting[id]) { delete waiting[id]; fail(new Error('timeout')); } }, 15000);
      request({ t: 'cmd', id: id, f: f });
    });
  }
  if (chan) {
    chan.onmessage = function (e) {
      if (leader) lead(e.data);
      else show(e.data);
    };
  }

  // ---- the leader: one socket for the browser ----
  var ws = null;
  var pending = {};
  var names = {};
  var delay = 1000;
  var timer = 0;
  function lead(m) {
    if (m.t === 'cmd') {
      if (ws && ws.readyState === 1 && S.user) {
        pending[m.id] = 1;
        m.f.id = m.id;
        ws.send(JSON.stringify(m.f));
      } else emit({ t: 'res', id: m.id, f: { type: 'error', code: 'disconnected' } });
    } else if (m.t === 'hi') emit({ t: 'state', s: S });
    else if (m.t === 'refresh') refresh();
    else if (m.t === 'close') emit({ t: 'done', k: m.k });
    else if (m.t === 'logout') logout();
    else if (m.t === 'signin') { tried = 0; store(null); signIn(); }
  }
  function stored() {
    try { return JSON.parse(localStorage.getItem(KEY) || 'null'); } catch (e) { return null; }
  }
  function store(v) {
    try { if (v) localStorage.setItem(KEY, JSON.stringify(v)); else localStorage.removeItem(KEY); } catch (e) { /* storage blocked: memory only */ }
    mem = v;
  }
  var mem = null;
  function credential() {
    var c = stored() || mem;
    return c && c.token ? c : null;
  }

  function send(f) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(f)); }
  function own(f) { // a frame the leader asked for itself
    var id = 'l' + (++seq);
    return new Promise(function (ok) { waiting[id] = ok; pending[id] = 1; f.id = id; send(f); });
  }
  function refresh() {
    if (!S.user) return emit({ t: 'state', s: S });
    own({ type: 'widget_state' }).then(function (f) {
      if (f.type !== 'ack') return;
      S = { user: S.user, msgs: f.data.unread_messages, notes: f.data.unread_notifications, list: f.data.notifications || [] };
      emit({ t: 'state', s: S });
    });
  }
  function nameOf(id) {
    if (names[id]) return Promise.resolve(names[id]);
    return own({ type: 'profile', user: id }).then(function (f) {
      return (names[id] = f.type === 'ack' ? f.data.user.name : '#' + id);
    });
  }
  function frame(f) {
    if (f.id && pending[f.id]) {
      delete pending[f.id];
      if (waiting[f.id]) show({ t: 'res', id: f.id, f: f });
      else emit({ t: 'res', id: f.id, f: f });
      return;
    }
    if (f.type === 'ack' && f.id === 'hello') {
      S.user = f.data.user;
      delay = 1000;
      refresh();
    } else if (f.type === 'message' && !f.replay) {
      var m = f.message;
      if (!S.user || m.from === S.user.id || m.deleted) return;
      if (m.kind === 'groupchat') {
        recent.push(m); // a mention's notification names one of these
        if (recent.length > 20) recent.shift();
        return;
      }
      if (m.kind !== 'chat') return;
      S.msgs++;
      emit({ t: 'state', s: S });
      nameOf(m.from).then(function (n) {
        emit({ t: 'pop', p: { k: 'm' + m.id, kind: 'msg', id: m.id, to: { user: m.from }, name: n, text: m.body } });
      });
    } else if (f.type === 'notification') {
      var x = f.notification;
      S.notes++;
      S.list = [x].concat(S.list || []).slice(0, 5);
      emit({ t: 'state', s: S });
      notePop(x);
    }
  }
  // A mention's notification names its chat and message (chat,
  // message_id): its pop-up shows the message (when this tab saw it) and
  // answers in that chat. Any other notification shows its sender and
  // buttons.
  var recent = [];
  function notePop(x) {
    var k = 'n' + (x.id || x.time);
    var who = x.sender ? nameOf(x.sender) : Promise.resolve('');
    who.then(function (n) {
      if (x.chat && x.message_id) {
        var m = recent.filter(function (r) { return r.id === x.message_id; }).pop();
        return emit({ t: 'pop', p: { k: k, kind: 'msg', id: x.message_id, to: { chat: x.chat }, name: (n || T.note) + ' · ' + T.mention, text: m ? m.body : x.text } });
      }
      emit({ t: 'pop', p: { k: k, kind: 'note', text: x.text, link: x.link, sender: n, nid: x.id, buttons: x.buttons || [], answer: x.answer || '' } });
    });
  }
  function connect() {
    clearTimeout(timer);
    var c = credential();
    if (!c) return signIn();
    ws = new WebSocket(base.replace(/^http/, 'ws') + '/ws', ['vestnik.widget', 'vestnik.token.' + c.token]);
    ws.onopen = function () { send({ type: 'hello', id: 'hello', last_id: 0 }); };
    ws.onmessage = function (e) {
      try { frame(JSON.parse(e.data)); } catch (err) { /* a frame we do not read */ }
    };
    ws.onclose = function (e) {
      ws = null;
      for (var id in pending) show({ t: 'res', id: id, f: { type: 'error', code: 'disconnected' } });
      pending = {};
      if (e.code === 4001) {
        if (credential()) store(null); // revoked or expired: ask the portal again
        S = { user: null };
        emit({ t: 'state', s: S });
        return signIn();
      }
      timer = setTimeout(connect, delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 30000);
    };
  }
  var tried = 0;
  function signIn() {
    var c = stored() || mem;
    if (Date.now() - tried < 60000 || (c && c.out)) return fallback();
    tried = Date.now();
    var link = cfg.loginUrl;
    cfg.loginUrl = ''; // a link works once
    var p = link ? Promise.resolve(link) : cfg.loginEndpoint
      ? fetch(cfg.loginEndpoint, { method: 'POST', credentials: 'same-origin' }).then(function (r) { return r.ok ? r.json() : {}; }).then(function (j) { return j.url; })
      : Promise.resolve('');
    p.then(function (u) {
      if (!u) throw new Error('no login link');
      return fetch(base + '/widget/session', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ login: u }) });
    }).then(function (r) {
      if (!r.ok) throw new Error('sign-in refused');
      return r.json();
    }).then(function (j) {
      store({ token: j.token });
      connect();
    }).catch(fallback);
  }
  // Not signed in: a portal on the same site still sends the session
  // cookie, so the counts come from /widget/state now and then.
  function fallback() {
    fetch(base + '/widget/state', { credentials: 'include' })
      .then(function (r) { return r.ok ? r.json() : { user: null }; })
      .then(function (s) {
        S = { user: s.user, msgs: s.unread_messages, notes: s.unread_notifications, list: s.notifications || [], cookie: true };
        emit({ t: 'state', s: S });
      })
      .catch(function () {})
      .then(function () { timer = setTimeout(credential() ? connect : signIn, 60000); });
  }
  function logout() {
    var c = credential();
    store({ out: true }); // stays signed out until "Sign in" is pressed
    tried = Date.now();
    if (c) fetch(base + '/widget/session', { method: 'DELETE', headers: { Authorization: 'Bearer ' + c.token } }).catch(function () {});
  }
  function becomeLeader() {
    leader = true;
    connect();
    // Reads made elsewhere (the messenger, a Jabber client) lower the
    // counts: ask again now and then.
    setInterval(function () { if (ws && ws.readyState === 1 && S.user) refresh(); }, 60000);
  }

  (document.body ? Promise.resolve() : new Promise(function (r) { document.addEventListener('DOMContentLoaded', r); }))
    .then(function () {
      document.body.appendChild(host);
      render(S);
      if (chan && navigator.locks) {
        // The lock is held while the tab lives; the next tab in line
        // becomes the leader when it closes.
        navigator.locks.request(KEY, function () { return new Promise(becomeLeader); });
        chan.postMessage({ t: 'hi' });
      } else becomeLeader();
    });
})();
