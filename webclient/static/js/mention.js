// @mention autocomplete in the composer of a chat: typing "@" and a few
// letters lists the chat's members (a listbox under the textarea's
// control: arrows move, Enter or Tab picks, Escape closes).
import { h, replace } from './dom.js';
import { S, t, request } from './state.js';
import { avatar } from './ui.js';

// mentionQuery returns the "@text" being typed right before the caret, or null.
export function mentionQuery(before) {
  const m = /(^|[\s(«"])@([\p{L}\p{N}_.-]{0,30})$/u.exec(before);
  return m ? { q: m[2], start: before.length - m[2].length - 1 } : null;
}

// matchMembers: members whose name (any word) or login starts with q.
export function matchMembers(users, q, limit = 6) {
  const s = q.toLowerCase();
  return users.filter((u) => !s || String(u.login || '').toLowerCase().startsWith(s) ||
    String(u.name || '').toLowerCase().split(/\s+/).some((w) => w.startsWith(s)) ||
    String(u.name || '').toLowerCase().startsWith(s)).slice(0, limit);
}

export class MentionBox {
  constructor(input) {
    this.input = input;
    this.items = [];
    this.sel = 0;
    this.el = h('div.mention-list.hidden', { role: 'listbox', id: 'mention-list', 'aria-label': t('mentionSomeone') });
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-controls', 'mention-list');
    input.setAttribute('aria-expanded', 'false');
    this.loading = new Set();
  }

  members(chatId) {
    const c = S.chats.get(chatId);
    if (c?.member_list) return c.member_list.map((m) => S.users.get(m.user)).filter((u) => u && u.id !== S.me.id);
    if (!this.loading.has(chatId)) {
      this.loading.add(chatId);
      request('chat_info', { chat: chatId }).then((d) => {
        S.chats.set(chatId, { ...S.chats.get(chatId), ...d.chat });
        this.update();
      }).catch(() => {}).finally(() => this.loading.delete(chatId));
    }
    return [];
  }

  update() {
    const key = S.open;
    const before = this.input.value.slice(0, this.input.selectionStart);
    const q = key && key[0] === 'c' ? mentionQuery(before) : null;
    this.items = q ? matchMembers(this.members(Number(key.slice(1))), q.q) : [];
    this.q = q;
    if (this.sel >= this.items.length) this.sel = 0;
    this.draw();
  }

  draw() {
    const open = this.items.length > 0;
    this.el.classList.toggle('hidden', !open);
    this.input.setAttribute('aria-expanded', String(open));
    if (!open) { this.input.removeAttribute('aria-activedescendant'); replace(this.el); return; }
    replace(this.el, this.items.map((u, i) => h('div.mention-opt' + (i === this.sel ? '.on' : ''), {
      role: 'option', id: 'mention-opt-' + i, 'aria-selected': String(i === this.sel),
      onmousedown: (e) => { e.preventDefault(); this.pick(i); },
    }, avatar(u.id, u.name, 'sm'), h('span', null, u.name), h('span.mention-login', null, '@' + (u.login || '')))));
    this.input.setAttribute('aria-activedescendant', 'mention-opt-' + this.sel);
  }

  close() { this.items = []; this.draw(); }

  pick(i) {
    const u = this.items[i];
    if (!u || !this.q) return;
    const v = this.input.value;
    const end = this.input.selectionStart;
    const ins = '@' + u.name + ' ';
    this.input.value = v.slice(0, this.q.start) + ins + v.slice(end);
    const at = this.q.start + ins.length;
    this.input.setSelectionRange(at, at);
    this.close();
    this.input.dispatchEvent(new Event('input'));
  }

  // onKey handles the keys of an open list; true when it took the key.
  onKey(e) {
    if (!this.items.length) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      this.sel = (this.sel + (e.key === 'ArrowDown' ? 1 : this.items.length - 1)) % this.items.length;
      this.draw();
    } else if (e.key === 'Enter' || e.key === 'Tab') this.pick(this.sel);
    else if (e.key === 'Escape') this.close();
    else return false;
    e.preventDefault();
    e.stopPropagation();
    return true;
  }
}
