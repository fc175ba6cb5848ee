// The "New chat" dialog and the member picker it shares with "Add
// members": colleagues picked from the company tree or by search.
import { h, replace, icon } from './dom.js';
import { S, t, app, request } from './state.js';
import { CHAT_COLORS, chatColor, avatar, dot, showCard, closeCard, closeBtn, errorText, fileButton } from './ui.js';

// memberPicker lists the company as a tree of departments (native
// <details>, so keyboard and screen readers know it) with a checkbox per
// colleague; typing in its search box lists the matching people flat.
export function memberPicker(exclude = new Set()) {
  const selected = new Set();
  const chips = h('div.chips', { 'aria-live': 'polite' });
  const list = h('div.picker-list');
  const search = h('input.picker-search', { type: 'search', placeholder: t('searchPeople'), 'aria-label': t('searchPeople'), oninput: draw });
  const row = (u) => h('label.pick-row', null,
    h('input', { type: 'checkbox', checked: selected.has(u.id), value: u.id, onchange: (e) => { if (e.target.checked) selected.add(u.id); else selected.delete(u.id); drawChips(); syncBoxes(u.id, e.target.checked); } }),
    h('span.av-wrap', null, avatar(u.id, u.name, 'sm'), dot(u.id)),
    h('span.pick-name', null, u.name, u.title ? h('span.pick-title', null, u.title) : null));
  function syncBoxes(id, on) {
    for (const b of list.querySelectorAll(`input[value="${Number(id)}"]`)) b.checked = on;
  }
  function drawChips() {
    replace(chips, [...selected].map((id) => h('button.chip', { type: 'button', 'aria-label': t('removeFromList', { name: S.users.get(id)?.name || '' }), onclick: () => { selected.delete(id); drawChips(); syncBoxes(id, false); } },
      S.users.get(id)?.name || String(id), icon('close'))));
  }
  function draw() {
    const q = search.value.trim().toLowerCase();
    const people = [...S.users.values()].filter((u) => u.id !== S.me.id && !exclude.has(u.id) && u.active !== false);
    if (q) {
      const hits = people.filter((u) => [u.name, u.login, u.title].some((s) => String(s || '').toLowerCase().includes(q))).slice(0, 50);
      replace(list, hits.length ? hits.map(row) : h('div.list-empty', null, t('nothingFound')));
      return;
    }
    const byDept = new Map();
    for (const u of people) {
      const d = (u.departments || [])[0] || 0;
      if (!byDept.has(d)) byDept.set(d, []);
      byDept.get(d).push(u);
    }
    const kids = new Map();
    for (const d of S.depts) {
      const k = d.parent_id || 0;
      if (!kids.has(k)) kids.set(k, []);
      kids.get(k).push(d);
    }
    const walk = (parent, depth) => (kids.get(parent) || []).map((d) => {
      const ppl = (byDept.get(d.id) || []).sort((a, b) => a.name.localeCompare(b.name));
      const sub = walk(d.id, depth + 1);
      if (!ppl.length && !sub.length) return null;
      return h('details.pick-dept', { open: depth === 0 }, h('summary', null, d.name), ppl.map(row), sub);
    });
    replace(list, walk(0, 0), (byDept.get(0) || []).map(row));
  }
  draw();
  return { el: h('div.picker', null, search, chips, list), selected };
}

// colorPicker: a radio group of the safe colors.
export function colorPicker(current) {
  const name = 'color' + Math.random().toString(36).slice(2, 8);
  const group = h('div.colors', { role: 'radiogroup', 'aria-label': t('color') },
    Object.keys(CHAT_COLORS).map((c) => h('label.swatch', { style: `background:${chatColor(c)}`, title: t('color_' + c) },
      h('input', { type: 'radio', name, value: c, checked: c === current, 'aria-label': t('color_' + c) }))));
  return { el: group, value: () => group.querySelector('input:checked')?.value || '' };
}

// readAvatar turns an image file into a small square JPEG data: URL that
// fits a bridge frame.
export function readAvatar(file) {
  return new Promise((resolve, reject) => {
    if (!/^image\//.test(file.type)) { reject(Object.assign(new Error('invalid_avatar'), { code: 'invalid_avatar' })); return; }
    const r = new FileReader();
    r.onerror = () => reject(r.error);
    r.onload = () => {
      const img = new Image();
      img.onerror = () => reject(Object.assign(new Error('invalid_avatar'), { code: 'invalid_avatar' }));
      img.onload = () => {
        const n = 128;
        const c = document.createElement('canvas');
        c.width = n; c.height = n;
        const s = Math.min(img.width, img.height);
        c.getContext('2d').drawImage(img, (img.width - s) / 2, (img.height - s) / 2, s, s, 0, 0, n, n);
        resolve(c.toDataURL('image/jpeg', 0.85));
      };
      img.src = r.result;
    };
    r.readAsDataURL(file);
  });
}

// avatarInput is a labelled file button that keeps the chosen image as a data: URL.
export function avatarInput() {
  const state = { data: null };
  const preview = h('span.avatar-preview');
  const pick = fileButton(t('chooseFile'), 'image/png,image/jpeg,image/gif,image/webp', async (f) => {
    try {
      state.data = await readAvatar(f);
      replace(preview, h('img', { src: state.data, alt: '' }));
    } catch (e) { state.data = null; replace(preview, errorText(e)); }
  }, '.avatar-pick', t('chatAvatar'));
  state.el = h('div.field-row', null, h('span.field-label', null, t('chatAvatar')), pick, preview);
  return state;
}

export function openNewChat() {
  const title = h('input', { name: 'title', required: true, maxlength: 255, autofocus: true, 'aria-label': t('chatTitle'), placeholder: t('chatTitle') });
  const desc = h('textarea', { name: 'description', rows: 2, 'aria-label': t('chatDescription'), placeholder: t('chatDescription') });
  const colors = colorPicker('AZURE');
  const closed = h('input', { type: 'checkbox', name: 'closed' });
  const av = avatarInput();
  const picker = memberPicker();
  const err = h('div.form-error', { role: 'alert' });
  const btn = h('button.btn-primary', { type: 'submit' }, t('createChat'));
  const form = h('form.dialog-form', {
    onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = '';
      btn.disabled = true;
      try {
        const payload = { title: title.value.trim(), description: desc.value.trim(), color: colors.value(), chat_type: closed.checked ? 'closed' : 'open', users: [...picker.selected] };
        if (av.data) payload.avatar = av.data;
        const d = await request('chat_create', payload);
        S.chats.set(d.chat.id, d.chat);
        closeCard();
        app.setTab('chats');
        app.openConv('c' + d.chat.id);
      } catch (x) {
        err.textContent = errorText(x);
        if (x.code === 'empty_title' || x.code === 'title_too_long') title.focus();
      } finally { btn.disabled = false; }
    },
  },
  h('h2', null, t('newChat')),
  title, desc,
  h('div.field-row', null, h('span.field-label', null, t('color')), colors.el),
  h('label.check-row', null, closed, h('span', null, t('closedChat'), h('span.hint', null, t('closedChatHint')))),
  av.el,
  h('div.field-label', null, t('membersPick')),
  picker.el,
  err,
  h('div.dialog-actions', null, h('button.btn-secondary', { type: 'button', onclick: closeCard }, t('cancel')), btn));
  showCard(h('div.profile-card.dialog', { role: 'dialog', 'aria-modal': 'true', 'aria-label': t('newChat') }, closeBtn(), form), 'view', 'new-chat');
}

// openBrowse lists open chats (and the user's closed ones), searchable,
// with a Join button for those the user is not in.
export function openBrowse() {
  const q = h('input', { type: 'search', autofocus: true, placeholder: t('searchChats'), 'aria-label': t('searchChats'), oninput: () => { clearTimeout(timer); timer = setTimeout(load, 200); } });
  const list = h('div.browse-list', { 'aria-live': 'polite' });
  let timer = null, seq = 0;
  async function load() {
    const my = ++seq;
    try {
      const d = await request('chats_find', { text: q.value.trim(), limit: 50 });
      if (my !== seq) return;
      const rows = (d.chats || []).map((c) => h('div.browse-row', null,
        h('span.browse-main', null, h('span.row-name', null, c.title), h('span.row-preview', null, c.description || t('members', { n: c.members }))),
        c.member
          ? h('button.btn-secondary', { type: 'button', onclick: () => { closeCard(); app.openConv('c' + c.id); } }, t('openChat'))
          : h('button.btn-primary.join', { type: 'button', 'aria-label': t('joinChat') + ': ' + c.title, onclick: async (e) => {
            e.currentTarget.disabled = true;
            try {
              const r = await request('chat_join', { chat: c.id });
              S.chats.set(r.chat.id, r.chat);
              closeCard();
              app.setTab('chats');
              app.openConv('c' + r.chat.id);
            } catch (x) { e.target.disabled = false; app.toast(x); }
          } }, t('joinChat'))));
      replace(list, rows.length ? rows : h('div.list-empty', null, t('nothingFound')));
    } catch (x) { replace(list, h('div.form-error', { role: 'alert' }, errorText(x))); }
  }
  load();
  showCard(h('div.profile-card.dialog', { role: 'dialog', 'aria-modal': 'true', 'aria-label': t('browseChats') }, closeBtn(),
    h('div.dialog-form', null, h('h2', null, t('browseChats')), q, list)), 'view', 'browse');
}
