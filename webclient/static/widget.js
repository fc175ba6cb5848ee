// Vestnik widget: <script src="https://chat.example.com/widget.js" async></script>
// on any portal page shows a floating badge with the employee's unread
// messages and notifications. It asks GET /widget/state with the session
// cookie (credentials: 'include'): the portal must be same-site with
// Vestnik and listed in its widget origins (see docs/bridge.md).
(function () {
  'use strict';
  var me = document.currentScript;
  if (!me || window.__vestnikWidget) return;
  window.__vestnikWidget = true;
  var base = new URL(me.src).origin;
  var ru = /^(ru|uk|be|kk)\b/i.test(navigator.language || '');
  var T = ru
    ? { title: 'Вестник', open: 'Открыть мессенджер', messages: 'Непрочитанных сообщений', notes: 'Уведомления', none: 'Нет новых уведомлений', login: 'Войти в Вестник' }
    : { title: 'Vestnik', open: 'Open messenger', messages: 'Unread messages', notes: 'Notifications', none: 'No new notifications', login: 'Sign in to Vestnik' };

  var host = document.createElement('div');
  host.style.cssText = 'position:fixed;right:20px;bottom:20px;z-index:2147483000';
  var root = host.attachShadow ? host.attachShadow({ mode: 'closed' }) : host;
  var style = document.createElement('style');
  style.textContent = [
    '.b{width:56px;height:56px;border-radius:50%;background:#3b82c4;color:#fff;border:0;cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;position:relative}',
    '.b svg{width:28px;height:28px;fill:#fff}',
    '.c{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#e5484d;color:#fff;font:700 12px/20px system-ui,sans-serif;text-align:center;padding:0 5px;border:2px solid #fff}',
    '.p{position:absolute;right:0;bottom:68px;width:300px;max-width:calc(100vw - 40px);background:#fff;color:#1b1f24;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.2);font:14px/1.4 system-ui,sans-serif;overflow:hidden}',
    '.h{padding:12px 14px;font-weight:600;border-bottom:1px solid #e6e8eb}',
    '.n{padding:10px 14px;border-bottom:1px solid #f0f1f3;overflow-wrap:anywhere}',
    '.m{padding:10px 14px;color:#707a86}',
    '.o{display:block;padding:12px 14px;text-align:center;color:#2f6fab;font-weight:600;text-decoration:none}',
    '[hidden]{display:none!important}',
  ].join('');
  var btn = document.createElement('button');
  btn.className = 'b';
  btn.setAttribute('aria-label', T.title);
  btn.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M20 2H4a2 2 0 00-2 2v18l4-4h14a2 2 0 002-2V4a2 2 0 00-2-2z"/></svg>';
  var count = document.createElement('span');
  count.className = 'c';
  count.hidden = true;
  btn.appendChild(count);
  var panel = document.createElement('div');
  panel.className = 'p';
  panel.hidden = true;
  root.appendChild(style);
  root.appendChild(panel);
  root.appendChild(btn);
  btn.addEventListener('click', function () { panel.hidden = !panel.hidden; });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  function render(s) {
    var n = (s.unread_messages || 0) + (s.unread_notifications || 0);
    count.hidden = !n;
    count.textContent = n > 99 ? '99+' : String(n);
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    if (!s.user) {
      var a0 = el('a', 'o', T.login);
      a0.href = base + '/';
      a0.target = '_blank';
      a0.rel = 'noopener';
      panel.appendChild(a0);
      return;
    }
    panel.appendChild(el('div', 'h', T.title + ' · ' + s.user.name));
    if (s.unread_messages) panel.appendChild(el('div', 'm', T.messages + ': ' + s.unread_messages));
    var notes = s.notifications || [];
    if (!notes.length) panel.appendChild(el('div', 'm', T.none));
    notes.slice(0, 5).forEach(function (x) { panel.appendChild(el('div', 'n', x.text)); });
    var a = el('a', 'o', T.open);
    a.href = base + '/';
    a.target = '_blank';
    a.rel = 'noopener';
    panel.appendChild(a);
  }

  function poll() {
    fetch(base + '/widget/state', { credentials: 'include' })
      .then(function (r) { return r.ok ? r.json() : { user: null }; })
      .then(render)
      .catch(function () {})
      .then(function () { setTimeout(poll, document.hidden ? 120000 : 30000); });
  }
  (document.body ? Promise.resolve() : new Promise(function (r) { document.addEventListener('DOMContentLoaded', r); }))
    .then(function () { document.body.appendChild(host); poll(); });
})();
