// Attachments in the composer: files picked with the button, dropped on
// the conversation or pasted (screenshots) start uploading at once, each
// with a progress bar and a cancel button; the message goes out with the
// uploaded files' ids once they are all stored.
import { h, replace, icon } from './dom.js';
import { t, lang } from './state.js';
import { upload, formatSize } from './files.js';
import { errorText } from './ui.js';

const MAX_FILES = 10; // per message (bridge limit)

export class Attachments {
  constructor() {
    this.items = []; // {file, name, progress, state: uploading|done|failed, stored, up}
    this.el = h('div.attachments.hidden', { 'aria-live': 'polite', 'aria-label': t('attachments') });
    this.input = h('input.hidden', { type: 'file', multiple: true, tabindex: -1, 'aria-hidden': 'true', onchange: () => { this.add([...this.input.files]); this.input.value = ''; } });
    this.button = h('button.icon-btn.attach', { type: 'button', 'aria-label': t('attachFile'), title: t('attachFile'), onclick: () => this.input.click() }, icon('attach'));
  }

  add(files) {
    for (const file of files) {
      if (this.items.length >= MAX_FILES) break;
      const it = { file, name: file.name || 'image.png', progress: 0, state: 'uploading', stored: null, error: null };
      const named = file.name ? file : new File([file], it.name, { type: file.type });
      it.up = upload(named, (p) => { it.progress = p; this.drawItem(it); });
      it.done = it.up.promise.then((f) => { it.state = 'done'; it.stored = f; this.draw(); },
        (e) => {
          if (e.code === 'aborted') { this.remove(it); return; }
          it.state = 'failed'; it.error = errorText(e); this.draw();
        });
      this.items.push(it);
    }
    this.draw();
  }

  remove(it) {
    if (it.state === 'uploading') it.up.abort();
    this.items = this.items.filter((x) => x !== it);
    this.draw();
  }

  clear() { for (const it of [...this.items]) this.remove(it); }

  get busy() { return this.items.some((x) => x.state === 'uploading'); }
  get count() { return this.items.length; }

  // ready waits for uploads in flight and returns the stored files' ids
  // (failed ones stay in the tray with their error).
  async ready() {
    await Promise.all(this.items.map((x) => x.done));
    return this.items.filter((x) => x.state === 'done').map((x) => x.stored);
  }

  // take empties the tray of the stored files (after a send).
  take() { this.items = this.items.filter((x) => x.state !== 'done'); this.draw(); }

  drawItem(it) {
    const bar = it.node?.querySelector('progress');
    if (bar) bar.value = it.progress;
  }

  draw() {
    this.el.classList.toggle('hidden', !this.items.length);
    replace(this.el, this.items.map((it) => {
      it.node = h('div.attachment.' + it.state, null,
        h('span.att-icon', null, icon('file')),
        h('span.att-main', null,
          h('span.att-name', null, it.name),
          it.state === 'failed' ? h('span.att-error', { role: 'alert' }, it.error)
            : it.state === 'uploading' ? h('progress', { max: 1, value: it.progress, 'aria-label': t('uploading', { name: it.name }) })
              : h('span.att-size', null, formatSize(it.file.size, lang))),
        h('button.icon-btn.att-cancel', { type: 'button', 'aria-label': (it.state === 'uploading' ? t('cancelUpload') : t('removeFile')) + ': ' + it.name, title: it.state === 'uploading' ? t('cancelUpload') : t('removeFile'), onclick: () => this.remove(it) }, icon('close')));
      return it.node;
    }));
  }
}

// wireDrop makes el accept dropped files.
export function wireDrop(el, onFiles) {
  let depth = 0;
  const has = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  el.addEventListener('dragenter', (e) => { if (!has(e)) return; e.preventDefault(); depth++; el.classList.add('dropping'); });
  el.addEventListener('dragover', (e) => { if (has(e)) e.preventDefault(); });
  el.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; el.classList.remove('dropping'); } });
  el.addEventListener('drop', (e) => {
    depth = 0; el.classList.remove('dropping');
    if (!has(e)) return;
    e.preventDefault();
    onFiles([...e.dataTransfer.files]);
  });
}

// pastedFiles returns the files of a paste event (a screenshot, copied files).
export function pastedFiles(e) {
  const out = [];
  for (const item of e.clipboardData?.items || []) {
    if (item.kind === 'file') { const f = item.getAsFile(); if (f) out.push(f); }
  }
  return out;
}
