// Desktop notifications and their sound. Settings are kept in this
// browser: desktop notifications on unless turned off, the sound off
// unless turned on (an office is quiet by default; turning it on is the
// click that lets the browser play it). A muted chat alerts only for a
// mention of the reader; do-not-disturb silences both, mentions included.

const KEY = 'vestnik.alerts';

export function loadSettings(storage = globalThis.localStorage) {
  let s = {};
  try { s = JSON.parse(storage?.getItem(KEY) || '{}') || {}; } catch { /* defaults */ }
  return { desktop: s.desktop !== false, sound: s.sound === true };
}

export function saveSettings(s, storage = globalThis.localStorage) {
  try { storage?.setItem(KEY, JSON.stringify({ desktop: !!s.desktop, sound: !!s.sound })); } catch { /* private mode */ }
}

// decide says how to alert about a message or notification that arrived
// while the page was hidden: {notify, sound}.
export function decide({ settings, muted = false, mentioned = false, dnd = false }) {
  if (dnd || (muted && !mentioned)) return { notify: false, sound: false };
  return { notify: !!settings.desktop, sound: !!settings.sound };
}

// Sound: a short two-tone chime made with Web Audio (no audio file). The
// context is made on a user gesture (unlock), so the browser allows it.
let ctx = null;

export function unlockSound() {
  const AC = globalThis.AudioContext || globalThis.webkitAudioContext;
  if (!AC) return;
  try {
    if (!ctx) ctx = new AC();
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
  } catch { ctx = null; }
}

export function chime() {
  if (!ctx || ctx.state !== 'running') return false;
  const start = ctx.currentTime;
  for (const [i, freq] of [880, 1175].entries()) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    const t0 = start + i * 0.12;
    osc.type = 'sine';
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0);
    gain.gain.exponentialRampToValueAtTime(0.2, t0 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.25);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t0);
    osc.stop(t0 + 0.3);
  }
  return true;
}
