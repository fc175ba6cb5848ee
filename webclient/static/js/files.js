// Files in messages: the pure helpers (sizes, which body lines are the
// files' capability URLs), the upload with progress and cancel, and how
// a message's files are drawn (image previews that open full size, cards
// for other files).
import { h, icon } from './dom.js';

// stripFileLines removes from a message body the capability URL lines the
// server appended for Jabber clients (one per file, at the end), so the
// browser shows the files themselves instead.
export function stripFileLines(body, files) {
  const lines = String(body ?? '').split('\n');
  let n = (files || []).length;
  while (n > 0 && lines.length) {
    const last = lines[lines.length - 1].trim();
    if (!/^https?:\/\/\S+\/upload\/\S+$/i.test(last)) break;
    lines.pop();
    n--;
  }
  return lines.join('\n').replace(/\s+$/, '');
}

// formatSize: 512 B, 48 KB, 3.4 MB, 1.2 GB.
export function formatSize(n, lang = 'en') {
  const units = lang === 'ru' ? ['Б', 'КБ', 'МБ', 'ГБ'] : ['B', 'KB', 'MB', 'GB'];
  let v = Number(n) || 0, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  const s = i === 0 || v >= 10 ? String(Math.round(v)) : v.toFixed(1);
  return (lang === 'ru' ? s.replace('.', ',') : s) + '\u00a0' + units[i];
}

// safeFileURL accepts only the server's own file paths.
export function safeFileURL(u) {
  return /^\/files\/\d+(\/thumb)?$/.test(String(u || '')) ? u : '';
}

export function isImage(f) {
  return !!(f && safeFileURL(f.thumb_url) && /^image\//.test(f.content_type || ''));
}

// upload posts one file to /files with the session cookie. It returns
// {promise, abort}; the promise resolves with the stored File or rejects
// with an error carrying the server's code (file_too_large,
// quota_exceeded, …) or 'aborted'.
export function upload(file, onProgress, XHR = globalThis.XMLHttpRequest) {
  const xhr = new XHR();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', '/files');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress?.(e.loaded / e.total); };
    xhr.onload = () => {
      const body = xhr.response || {};
      if (xhr.status === 201 && body.file) { resolve(body.file); return; }
      const code = body.error?.code || (xhr.status === 413 ? 'file_too_large' : 'upload_failed');
      reject(Object.assign(new Error(body.error?.message || code), { code }));
    };
    xhr.onerror = () => reject(Object.assign(new Error('upload_failed'), { code: 'upload_failed' }));
    xhr.onabort = () => reject(Object.assign(new Error('aborted'), { code: 'aborted' }));
    const fd = new FormData();
    fd.append('file', file, file.name || 'file');
    xhr.send(fd);
  });
  return { promise, abort: () => xhr.abort() };
}

// renderFiles draws a message's files; onOpen(file) shows an image full size.
export function renderFiles(files, t, lang, onOpen) {
  const out = [];
  for (const f of files || []) {
    const url = safeFileURL(f.url);
    if (!url) continue;
    if (isImage(f)) {
      out.push(h('button.file-image', { type: 'button', onclick: () => onOpen(f), 'aria-label': t('openImage', { name: f.name }), title: f.name },
        h('img', { src: f.thumb_url, alt: f.name, loading: 'lazy' })));
    } else {
      out.push(h('div.file-card', null,
        h('span.file-icon', null, icon('file')),
        h('span.file-main', null, h('span.file-name', null, f.name), h('span.file-size', null, formatSize(f.size, lang))),
        h('a.icon-btn.file-dl', { href: url, download: f.name, 'aria-label': t('download', { name: f.name }), title: t('download', { name: f.name }) }, icon('download'))));
    }
  }
  return out.length ? h('div.files', null, out) : null;
}
