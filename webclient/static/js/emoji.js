// The composer's emoji picker: a compact set in a grid of buttons.
// Keyboard: the arrow keys move between emoji, Home and End jump, Enter or
// Space inserts, Escape closes and returns to the text field.
import { h, replace, icon } from './dom.js';

export const EMOJI = [
  '😀', '😂', '🙂', '😉', '😍', '😘', '😎', '🤔',
  '😅', '😢', '😭', '😡', '👍', '👎', '👌', '👏',
  '🙏', '💪', '🤝', '👋', '🙌', '🤷', '👀', '✅',
  '❌', '⚠️', '❗', '❓', '🔥', '🎉', '💯', '❤️',
  '💡', '📌', '📎', '📅', '⏰', '☕', '🍕', '🚀',
];
const COLS = 8;

// insertText puts text at the selection of a value: the new value and
// where the caret goes.
export function insertText(value, start, end, text) {
  const s = Math.max(0, Math.min(start ?? value.length, value.length));
  const e = Math.max(s, Math.min(end ?? s, value.length));
  return { value: value.slice(0, s) + text + value.slice(e), caret: s + text.length };
}

// gridMove is the index focus moves to from i on a key, -1 for other keys.
export function gridMove(i, key, n, cols = COLS) {
  switch (key) {
    case 'ArrowRight': return Math.min(n - 1, i + 1);
    case 'ArrowLeft': return Math.max(0, i - 1);
    case 'ArrowDown': return i + cols < n ? i + cols : i;
    case 'ArrowUp': return i - cols >= 0 ? i - cols : i;
    case 'Home': return 0;
    case 'End': return n - 1;
    default: return -1;
  }
}

export class EmojiPicker {
  // input is the textarea; t translates; onInsert runs after an insert.
  constructor(input, t, onInsert) {
    this.input = input;
    this.onInsert = onInsert;
    this.panel = h('div.emoji-panel.hidden', { role: 'dialog', 'aria-label': t('emoji') });
    this.button = h('button.icon-btn.emoji-btn', {
      type: 'button', 'aria-label': t('emoji'), title: t('emoji'), 'aria-haspopup': 'dialog', 'aria-expanded': 'false',
      onclick: () => (this.open ? this.close(true) : this.show()),
    }, icon('smile'));
    const buttons = EMOJI.map((e, i) => h('button.emoji', {
      type: 'button', tabindex: i === 0 ? 0 : -1, dataset: { i },
      onclick: () => this.insert(e),
      onkeydown: (ev) => {
        if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); this.close(true); return; }
        const j = gridMove(i, ev.key, EMOJI.length);
        if (j < 0) return;
        ev.preventDefault();
        this.focusAt(j);
      },
    }, e));
    this.buttons = buttons;
    replace(this.panel, h('div.emoji-grid', null, buttons));
    this.open = false;
    document.addEventListener('click', (e) => {
      if (this.open && !this.panel.contains(e.target) && !this.button.contains(e.target)) this.close(false);
    });
  }

  focusAt(j) {
    this.buttons.forEach((b, k) => { b.tabIndex = k === j ? 0 : -1; });
    this.buttons[j].focus();
  }

  show() {
    this.open = true;
    this.panel.classList.remove('hidden');
    this.button.setAttribute('aria-expanded', 'true');
    this.focusAt(0);
  }

  close(refocus) {
    this.open = false;
    this.panel.classList.add('hidden');
    this.button.setAttribute('aria-expanded', 'false');
    if (refocus) this.input.focus();
  }

  insert(e) {
    const r = insertText(this.input.value, this.input.selectionStart, this.input.selectionEnd, e);
    this.input.value = r.value;
    this.close(true);
    this.input.setSelectionRange(r.caret, r.caret);
    this.onInsert?.();
  }
}
