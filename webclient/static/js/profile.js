// A colleague's card: presence, title, departments, manager, contacts,
// and buttons to write to them or read the whole correspondence.
import { h } from './dom.js';
import { S, V, t, app, request } from './state.js';
import { avatar, dot, presenceText, showCard, closeCard, closeBtn, fileButton, photoURL, toast } from './ui.js';

export async function openProfile(id) {
  V.statusMenu.classList.add('hidden');
  if (S.users.has(id)) renderProfile(id);
  try {
    const d = await request('profile', { user: id });
    S.users.set(id, { ...S.users.get(id), ...d.user });
    if (d.presence) S.presence.set(id, d.presence);
  } catch { /* show what we have */ }
  // Still the profile the user asked for, and not closed meanwhile?
  if (V.profile.dataset.user === String(id)) renderProfile(id);
}

export function profileShown(id) { return V.profile.dataset.user === String(id); }

export function renderProfile(id) {
  const u = S.users.get(id);
  if (!u) return;
  const mgr = u.manager_id ? S.users.get(u.manager_id) : null;
  const depts = (u.departments || []).map((d) => S.depts.find((x) => x.id === d)?.name).filter(Boolean);
  const field = (label, value) => (value ? h('div.field', null, h('span.field-label', null, label), h('span.field-value', null, value)) : null);
  showCard(h('div.profile-card', { role: 'dialog', 'aria-modal': 'true', 'aria-label': t('profile') + ': ' + u.name },
    closeBtn(),
    h('div.profile-top', null,
      avatar(id, u.name, 'xl'),
      h('h2', null, u.name),
      h('div.profile-presence', null, dot(id), presenceText(id))),
    h('div.fields', null,
      field(t('title'), u.title),
      field(t('department'), depts.join(', ')),
      mgr ? h('div.field', null, h('span.field-label', null, t('manager')), h('button.link', { type: 'button', onclick: () => openProfile(mgr.id) }, mgr.name)) : null,
      field(t('email'), u.email),
      field(t('login'), u.jid || u.login)),
    id === S.me.id ? h('div.profile-actions.photo-actions', null,
      fileButton(t('changePhoto'), 'image/png,image/jpeg,image/gif', changePhoto, '.change-photo'),
      photoURL(id) ? h('button.btn-secondary.remove-photo', { type: 'button', onclick: () => changePhoto(null) }, t('removePhoto')) : null) : null,
    id !== S.me.id ? h('div.profile-actions', null,
      h('button.btn-primary', { type: 'button', onclick: () => { closeCard(); app.setTab('chats'); app.openConv('u' + id); } }, t('writeTo')),
      h('button.btn-secondary', { type: 'button', onclick: () => { closeCard(); app.showCorrespondence(id); } }, t('showCorrespondence'))) : null), 'user', id);
}

// changePhoto uploads the user's new photo (PUT /photo; the server
// resizes it and tells every browser), or removes it (null).
async function changePhoto(file) {
  if (file && (!/^image\/(png|jpeg|gif)$/.test(file.type))) { toast(t('err_not_image')); return; }
  if (file && file.size > 10 << 20) { toast(t('err_photo_too_large')); return; }
  try {
    const r = await fetch('/photo', { method: file ? 'PUT' : 'DELETE', credentials: 'same-origin', headers: file ? { 'Content-Type': file.type } : {}, body: file || undefined });
    const d = await r.json().catch(() => ({}));
    if (!r.ok) { toast(d.error || { code: 'error' }); return; }
    const u = S.users.get(S.me.id);
    if (u) S.users.set(S.me.id, { ...u, photo: d.photo || undefined });
    S.me = { ...S.me, photo: d.photo || undefined };
    renderProfile(S.me.id);
  } catch (e) { toast(e); }
}
