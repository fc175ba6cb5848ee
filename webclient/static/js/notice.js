// System messages the server writes carry a typed event (message.event:
// {type, actor, users, title, fields}) beside an English body for Jabber clients; the
// browser renders the event in the reader's language. An unknown type or
// a name it cannot find keeps the server's text.

export function noticeText(ev, nameOf, t) {
  if (!ev || typeof ev.type !== 'string') return null;
  const who = (id) => nameOf(id) || null;
  const list = (ids) => {
    const names = (ids || []).map(who);
    return names.length && names.every(Boolean) ? names.join(', ') : null;
  };
  switch (ev.type) {
    case 'joined': { const names = list(ev.users); return names && t('noticeJoined', { names }); }
    case 'left': { const names = list(ev.users); return names && t('noticeLeft', { names }); }
    case 'added': case 'removed': {
      const names = list(ev.users), actor = who(ev.actor);
      if (!names || !actor) return null;
      return t(ev.type === 'added' ? 'noticeAdded' : 'noticeRemoved', { actor, names });
    }
    case 'closed': {
      if (!ev.actor) return t('noticeClosed');
      const actor = who(ev.actor);
      return actor && t('noticeClosedBy', { actor });
    }
    case 'created': case 'renamed': {
      if (typeof ev.title !== 'string' || !ev.title) return null;
      const base = ev.type === 'created' ? 'noticeCreated' : 'noticeRenamed';
      if (!ev.actor) return t(base, { title: ev.title });
      const actor = who(ev.actor);
      return actor && t(base + 'By', { actor, title: ev.title });
    }
    case 'changed': {
      const known = ['description', 'color', 'avatar'];
      const fields = Array.isArray(ev.fields) ? ev.fields : [];
      if (!fields.length || !fields.every((f) => known.includes(f))) return null;
      const what = fields.map((f) => t('noticeField_' + f)).join(', ');
      if (!ev.actor) return t('noticeChanged', { what });
      const actor = who(ev.actor);
      return actor && t('noticeChangedBy', { actor, what });
    }
    default: return null;
  }
}
