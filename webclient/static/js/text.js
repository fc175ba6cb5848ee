// The one path for user text: everything a user wrote becomes DOM text
// nodes (textContent), never markup. escapeHTML exists for the few places
// that build strings (widget badge titles); links are made only for
// http(s) URLs and open with rel="noopener noreferrer".

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHTML(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
}

const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"'`]+/gi;
const TRAIL_RE = /[.,;:!?'"»)\]]+$/;

// safeHref returns a normalized http(s) URL or '' when the text is not one.
export function safeHref(raw) {
  let s = String(raw || '').trim();
  if (/^www\./i.test(s)) s = 'https://' + s;
  let u;
  try { u = new URL(s); } catch { return ''; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return '';
  return u.href;
}

// tokenize splits a message body into text, link and line-break tokens.
export function tokenize(body) {
  const out = [];
  const lines = String(body ?? '').split('\n');
  lines.forEach((line, i) => {
    if (i > 0) out.push({ t: 'br' });
    let last = 0;
    for (const m of line.matchAll(URL_RE)) {
      let url = m[0];
      // Keep a closing parenthesis that balances one inside the URL.
      let trail = (url.match(TRAIL_RE) || [''])[0];
      if (trail.startsWith(')') && (url.split('(').length - 1) > (url.split(')').length - 1 - trail.split(')').length + 1)) {
        trail = trail.slice(1);
      }
      url = url.slice(0, url.length - trail.length);
      const href = safeHref(url);
      if (!href) continue;
      if (m.index > last) out.push({ t: 'text', v: line.slice(last, m.index) });
      out.push({ t: 'link', v: url, href });
      last = m.index + url.length;
    }
    if (last < line.length) out.push({ t: 'text', v: line.slice(last) });
  });
  return out;
}

// splitMentions cuts a text into plain parts and @mentions of the given
// names (full names or logins), longest first, case-insensitive:
// [{text, mention}] where mention is the matched name's index or -1.
export function splitMentions(text, names) {
  const list = (names || []).map((n, i) => ({ n: String(n || ''), i })).filter((x) => x.n).sort((a, b) => b.n.length - a.n.length);
  const out = [];
  const s = String(text ?? '');
  let last = 0;
  for (let at = s.indexOf('@'); at >= 0; at = s.indexOf('@', at + 1)) {
    if (at < last || (at > 0 && /[\p{L}\p{N}_.]/u.test(s[at - 1]))) continue;
    const rest = s.slice(at + 1).toLowerCase();
    const hit = list.find((x) => rest.startsWith(x.n.toLowerCase()) && !/[\p{L}\p{N}_]/u.test(rest[x.n.length] || ''));
    if (!hit) continue;
    if (at > last) out.push({ text: s.slice(last, at), mention: -1 });
    out.push({ text: s.slice(at, at + 1 + hit.n.length), mention: hit.i });
    last = at + 1 + hit.n.length;
  }
  if (last < s.length) out.push({ text: s.slice(last), mention: -1 });
  return out;
}

// renderBody appends a message body to parent as text nodes and safe
// links; mentions ({names, me}: names to mark, and which of them are the
// reader) become <span class="mention">, text only.
export function renderBody(doc, parent, body, mentions) {
  for (const tok of tokenize(body)) {
    if (tok.t === 'text' && mentions?.names?.length) {
      for (const p of splitMentions(tok.v, mentions.names)) {
        if (p.mention < 0) { parent.appendChild(doc.createTextNode(p.text)); continue; }
        const el = doc.createElement('span');
        el.className = mentions.me?.includes(p.mention) ? 'mention me' : 'mention';
        el.textContent = p.text;
        parent.appendChild(el);
      }
    } else if (tok.t === 'text') parent.appendChild(doc.createTextNode(tok.v));
    else if (tok.t === 'br') parent.appendChild(doc.createElement('br'));
    else {
      const a = doc.createElement('a');
      a.href = tok.href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = tok.v;
      parent.appendChild(a);
    }
  }
  return parent;
}

// snippetParts parses a search snippet (HTML-escaped text with <mark>…</mark>)
// into [{text, mark}] without ever interpreting other markup.
export function snippetParts(snippet) {
  const parts = [];
  const re = /<mark>([\s\S]*?)<\/mark>/g;
  let last = 0;
  const s = String(snippet ?? '');
  for (const m of s.matchAll(re)) {
    if (m.index > last) parts.push({ text: unescapeHTML(s.slice(last, m.index)), mark: false });
    parts.push({ text: unescapeHTML(m[1]), mark: true });
    last = m.index + m[0].length;
  }
  if (last < s.length) parts.push({ text: unescapeHTML(s.slice(last)), mark: false });
  return parts;
}

export function unescapeHTML(s) {
  return String(s).replace(/&(amp|lt|gt|quot|#39);/g, (m, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]);
}
