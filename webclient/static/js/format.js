// Pure formatting helpers: times, days, initials, avatar colors.

function startOfDay(ts) {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function sameDay(a, b) { return startOfDay(a) === startOfDay(b); }

export function formatTime(ts, lang) {
  return new Date(ts).toLocaleTimeString(lang === 'ru' ? 'ru-RU' : 'en-GB', { hour: '2-digit', minute: '2-digit' });
}

// dayLabel: "Today", "Yesterday", "12 March" or "12 March 2024".
export function dayLabel(ts, now, lang, t) {
  const d0 = startOfDay(now);
  const d = startOfDay(ts);
  if (d === d0) return t('today');
  const y = new Date(d0);
  y.setDate(y.getDate() - 1);
  if (d === y.getTime()) return t('yesterday');
  const opts = { day: 'numeric', month: 'long' };
  if (new Date(ts).getFullYear() !== new Date(now).getFullYear()) opts.year = 'numeric';
  return new Date(ts).toLocaleDateString(lang === 'ru' ? 'ru-RU' : 'en-GB', opts);
}

// shortStamp is the time shown in the conversation list.
export function shortStamp(ts, now, lang) {
  if (sameDay(ts, now)) return formatTime(ts, lang);
  const opts = { day: 'numeric', month: 'short' };
  if (new Date(ts).getFullYear() !== new Date(now).getFullYear()) opts.year = '2-digit';
  return new Date(ts).toLocaleDateString(lang === 'ru' ? 'ru-RU' : 'en-GB', opts);
}

export function lastSeen(ts, now, lang, t) {
  if (!ts) return t('offline');
  const diff = now - ts;
  if (diff < 60000) return t('lastSeen', { when: t('justNow') });
  if (diff < 3600000) return t('lastSeen', { when: t('minutesAgo', { n: Math.floor(diff / 60000) }) });
  const when = sameDay(ts, now) ? formatTime(ts, lang) : t('at', { day: dayLabel(ts, now, lang, t), time: formatTime(ts, lang) });
  return t('lastSeen', { when });
}

export function initials(name) {
  const parts = String(name || '').trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return '?';
  const first = [...parts[0]][0] || '';
  const second = parts.length > 1 ? [...parts[parts.length - 1]][0] || '' : '';
  return (first + second).toUpperCase();
}

const PALETTE = ['#e17076', '#7bc862', '#65aadd', '#a695e7', '#ee7aae', '#6ec9cb', '#faa774', '#5f9ccf'];

export function colorFor(id) {
  const n = Math.abs(Number(id) || 0);
  return PALETTE[n % PALETTE.length];
}

// groupMessages splits messages (sorted by id) into day sections of runs by
// the same author within 5 minutes.
export function groupMessages(msgs) {
  const days = [];
  let day = null, run = null;
  for (const m of msgs) {
    if (!day || !sameDay(day.ts, m.time)) {
      day = { ts: m.time, runs: [] };
      days.push(day);
      run = null;
    }
    const author = m.kind === 'system' ? 0 : m.from;
    if (!run || run.author !== author || m.kind === 'system' || m.time - run.last > 5 * 60000) {
      run = { author, system: m.kind === 'system', msgs: [], last: m.time };
      day.runs.push(run);
    }
    run.msgs.push(m);
    run.last = m.time;
  }
  return days;
}
