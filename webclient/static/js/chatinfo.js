// The chat info panel: the chat's id, description and members with
// presence and roles; for members: add people (with or without the earlier
// history), leave, mute; for the owner: edit and remove members. It is
// redrawn live when a chat_changed event names the chat.
import { h, replace, icon } from './dom.js';
import { S, V, t, app, request } from './state.js';
import { chatAvatar, avatar, dot, presenceText, showCard, closeCard, closeBtn, errorText } from './ui.js';
import { memberPicker, colorPicker, avatarInput } from './chatform.js';
import { isMuted, setMuted } from './mute.js';

let mode = 'view'; // view | edit | add: an open form is not redrawn under the user

export async function openChatInfo(id, force) {
  if (!force && V.profile.dataset.chat === String(id) && mode !== 'view') return;
  if (V.profile.dataset.chat !== String(id)) mode = 'view';
  const c = S.chats.get(id);
  if (c) draw(c);
  try {
    const d = await request('chat_info', { chat: id });
    S.chats.set(id, { ...S.chats.get(id), ...d.chat });
  } catch { /* show what we have */ }
  if (V.profile.dataset.chat === String(id) && S.chats.has(id)) draw(S.chats.get(id));
}

export function chatInfoShown(id) { return V.profile.dataset.chat === String(id); }

function draw(c) {
  if (mode !== 'view' && V.profile.dataset.chat === String(c.id)) return;
  const isOwner = c.owner === S.me.id;
  const members = (c.member_list || []).map((m) => {
    const u = S.users.get(m.user);
    const name = u?.name || String(m.user);
    return h('li.member', { dataset: { user: m.user } },
      h('button.member-main', { type: 'button', onclick: () => app.openProfile(m.user) },
        h('span.av-wrap', null, avatar(m.user, name, 'sm'), dot(m.user)),
        h('span.member-text', null, h('span.member-name', null, name, m.user === S.me.id ? ' (' + t('you') + ')' : ''), h('span.member-sub', null, presenceText(m.user)))),
      m.role === 'owner' ? h('span.role', null, t('roleOwner')) : null,
      isOwner && m.user !== S.me.id ? h('button.icon-btn.remove-member', { type: 'button', 'aria-label': t('removeMember', { name }), title: t('removeMember', { name }), onclick: () => removeMember(c, m.user, name) }, icon('close')) : null);
  });
  const muted = isMuted('c' + c.id);
  const card = h('div.profile-card.chat-info', { role: 'dialog', 'aria-modal': 'true', 'aria-label': t('chatInfo') },
    closeBtn(),
    h('div.profile-top', null, chatAvatar(c, 'xl'), h('h2', null, c.title),
      h('div.profile-presence', null, (c.type === 'closed' ? t('closedChat') : t('openChat_')) + ' · ' + t('members', { n: c.members || members.length }))),
    h('div.fields', null,
      c.description ? h('div.field', null, h('span.field-label', null, t('chatDescription')), h('span.field-value.chat-desc', null, c.description)) : null,
      h('div.field', null, h('span.field-label', null, t('chatId')), h('span.field-value.chat-id', null, String(c.id))),
      c.jid ? h('div.field', null, h('span.field-label', null, 'XMPP'), h('span.field-value', null, c.jid)) : null),
    h('div.info-actions', null,
      isOwner ? h('button.btn-secondary.edit-chat', { type: 'button', onclick: () => editForm(c) }, icon('edit', 'mi'), t('editChat')) : null,
      h('button.btn-secondary.add-members', { type: 'button', onclick: () => addForm(c) }, icon('add', 'mi'), t('addMembers')),
      h('button.btn-secondary.mute', { type: 'button', 'aria-pressed': String(muted), onclick: () => { setMuted('c' + c.id, !muted); draw(S.chats.get(c.id) || c); app.renderList(); } },
        icon(muted ? 'bell' : 'belloff', 'mi'), muted ? t('unmute') : t('mute'))),
    h('section.members', { 'aria-label': t('membersTitle') },
      h('h3', null, t('membersTitle'), ' · ', String(c.members || members.length)),
      h('ul.member-list', null, members)),
    h('div.profile-actions', null, h('button.btn-secondary.leave-chat', { type: 'button', onclick: () => leaveChat(c.id) }, t('leaveChat'))));
  showCard(card, 'chat', c.id);
}

async function removeMember(c, user, name) {
  if (!confirm(t('removeConfirm', { name, title: c.title }))) return;
  try {
    await request('chat_remove', { chat: c.id, user });
    openChatInfo(c.id, true);
  } catch (e) { app.toast(e); }
}

export async function leaveChat(id) {
  const c = S.chats.get(id);
  if (!c || !confirm(t('leaveConfirm', { title: c.title }))) return;
  try {
    await request('chat_leave', { chat: id });
    app.onChatChanged({ chat: { id, member: false } });
  } catch (e) { app.toast(e); }
}

function formCard(c, label, body) {
  return h('div.profile-card.dialog', { role: 'dialog', 'aria-modal': 'true', 'aria-label': label }, closeBtn(), body);
}

function back(c) { mode = 'view'; openChatInfo(c.id, true); }

function editForm(c) {
  mode = 'edit';
  const title = h('input', { name: 'title', value: c.title, required: true, maxlength: 255, autofocus: true, 'aria-label': t('chatTitle') });
  const desc = h('textarea', { name: 'description', rows: 3, 'aria-label': t('chatDescription') });
  desc.value = c.description || '';
  const colors = colorPicker(c.color);
  const closed = h('input', { type: 'checkbox', checked: c.type === 'closed' });
  const av = avatarInput();
  const dropAv = h('input', { type: 'checkbox' });
  const err = h('div.form-error', { role: 'alert' });
  const form = h('form.dialog-form', {
    onsubmit: async (e) => {
      e.preventDefault();
      const p = { chat: c.id };
      if (title.value.trim() !== c.title) p.title = title.value.trim();
      if (desc.value.trim() !== (c.description || '')) p.description = desc.value.trim();
      if (colors.value() && colors.value() !== c.color) p.color = colors.value();
      const type = closed.checked ? 'closed' : 'open';
      if (type !== c.type) p.chat_type = type;
      if (av.data) p.avatar = av.data; else if (dropAv.checked) p.avatar = '';
      try {
        if (Object.keys(p).length > 1) {
          const d = await request('chat_edit', p);
          S.chats.set(c.id, { ...S.chats.get(c.id), ...d.chat });
          app.renderList(); app.renderHead();
        }
        back(c);
      } catch (x) { err.textContent = errorText(x); }
    },
  },
  h('h2', null, t('editChat')),
  h('label.field-row', null, h('span.field-label', null, t('chatTitle')), title),
  h('label.field-row', null, h('span.field-label', null, t('chatDescription')), desc),
  h('div.field-row', null, h('span.field-label', null, t('color')), colors.el),
  h('label.check-row', null, closed, h('span', null, t('closedChat'))),
  av.el,
  c.avatar ? h('label.check-row', null, dropAv, h('span', null, t('removeAvatar'))) : null,
  err,
  h('div.dialog-actions', null, h('button.btn-secondary', { type: 'button', onclick: () => back(c) }, t('cancel')), h('button.btn-primary', { type: 'submit' }, t('save'))));
  showCard(formCard(c, t('editChat'), form), 'chat', c.id);
}

function addForm(c) {
  mode = 'add';
  const picker = memberPicker(new Set((c.member_list || []).map((m) => m.user)));
  const history = h('input', { type: 'checkbox', checked: true, name: 'history' });
  const err = h('div.form-error', { role: 'alert' });
  const form = h('form.dialog-form', {
    onsubmit: async (e) => {
      e.preventDefault();
      if (!picker.selected.size) { err.textContent = t('pickSomeone'); return; }
      try {
        await request('chat_add', { chat: c.id, users: [...picker.selected], hide_history: !history.checked });
        back(c);
      } catch (x) { err.textContent = errorText(x); }
    },
  },
  h('h2', null, t('addMembers'), ': ', c.title),
  picker.el,
  h('label.check-row', null, history, h('span', null, t('showHistory'))),
  err,
  h('div.dialog-actions', null, h('button.btn-secondary', { type: 'button', onclick: () => back(c) }, t('cancel')), h('button.btn-primary', { type: 'submit' }, t('add'))));
  showCard(formCard(c, t('addMembers'), form), 'chat', c.id);
}

export function resetChatInfo() { mode = 'view'; }
