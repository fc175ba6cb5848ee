// Per-chat mute, kept in this browser (localStorage): a muted
// conversation still counts unread messages but makes no sound, desktop
// notification or title counter.
const KEY = 'vestnik.muted';

function load() {
  try { return new Set(JSON.parse(localStorage.getItem(KEY) || '[]')); } catch { return new Set(); }
}

export function isMuted(key) { return load().has(key); }

export function setMuted(key, on) {
  const s = load();
  if (on) s.add(key); else s.delete(key);
  try { localStorage.setItem(KEY, JSON.stringify([...s])); } catch { /* private mode */ }
}
