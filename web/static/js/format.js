// Pure helpers: no DOM, no network. Everything here is exported so the
// browser test can check it directly.

// shellQuote wraps s in single quotes for a POSIX shell; a single quote
// inside becomes '\'' (close, escaped quote, reopen).
export function shellQuote(s) {
  return "'" + String(s).replaceAll("'", "'\\''") + "'";
}

// Headers curl computes itself, or that would make it misbehave when copied
// (accept-encoding without --compressed prints gzip to the terminal).
const CURL_SKIP = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'accept-encoding', 'keep-alive', 'upgrade']);

// CURL_INLINE_MAX is the largest body buildCurl puts in curl's arguments:
// Linux refuses one argument over 128 KiB ("Argument list too long"). A
// larger body goes through printf, a shell builtin with no such limit, on
// curl's standard input.
const CURL_INLINE_MAX = 64 * 1024;

// buildCurl returns a shell command that sends the request, once:
// --globoff keeps [] and {} in the URL from being read as curl's ranges.
// headers: {name: [values]}, sent as given (an empty value as empty);
// bodyEncoding: "utf8" | "base64"; bodyFile, when set, names a file the
// body is read from instead. A body starting with "@" (which curl would
// read as a file name) or a large one is fed on standard input. With a
// body and no content-type (or expect) header, curl is told not to add its
// own.
export function buildCurl({ method = 'GET', url = '', headers = {}, body = '', bodyEncoding = 'utf8', bodyFile = '' }) {
  const parts = ['curl', '--globoff'];
  const m = String(method || 'GET').toUpperCase();
  const hasBody = !!(body || bodyFile);
  if (m === 'HEAD') parts.push('--head');
  else if (m !== 'GET' || hasBody) parts.push('-X ' + shellQuote(m));
  parts.push(shellQuote(url));
  const names = new Set();
  for (const [name, values] of sortedHeaders(headers)) {
    names.add(name.toLowerCase());
    if (CURL_SKIP.has(name.toLowerCase())) continue;
    // "name:" would tell curl to drop the header; "name;" sends it empty.
    for (const v of values) parts.push('-H ' + shellQuote(v === '' ? `${name};` : `${name}: ${v}`));
  }
  // Control characters other than tab and newline do not survive a
  // textarea (CR LF reads back as LF), a terminal's paste or a shell
  // string (NUL): such a body goes as base64, decoded on the fly.
  if (body && bodyEncoding !== 'base64' && /[\x00-\x08\x0b-\x1f\x7f]/.test(body)) {
    body = utf8Base64(body);
    bodyEncoding = 'base64';
  }
  let prefix = '';
  if (hasBody) {
    if (!names.has('content-type')) parts.push("-H 'content-type:'");
    if (!names.has('expect') && (bodyFile || body.length > 1024)) parts.push("-H 'expect:'");
    if (bodyFile) {
      parts.push('--data-binary ' + shellQuote('@' + bodyFile));
    } else if (bodyEncoding === 'base64') {
      // Binary bytes cannot sit in a shell string; decode them on the fly.
      prefix = 'printf %s ' + shellQuote(body) + ' | base64 -d | ';
      parts.push('--data-binary @-');
    } else if (body.startsWith('@') || byteLength(body) > CURL_INLINE_MAX) {
      prefix = 'printf %s ' + shellQuote(body) + ' | ';
      parts.push('--data-binary @-');
    } else {
      parts.push('--data-binary ' + shellQuote(body));
    }
  }
  return prefix + parts.join(' \\\n  ');
}

// utf8Base64 is the base64 of s's UTF-8 bytes.
function utf8Base64(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

// replayTarget is where a replay to the typed URL to goes, as the
// receiver's replay decides it (package replay): a URL without a path of
// its own takes path, one without a query takes query. Built as text, so
// the path and query stay as sent (the URL parser would re-escape them).
export function replayTarget(to, path = '', query = '') {
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(String(to));
  if (!m) return String(to);
  let [, origin, p, q = ''] = m;
  if ((p === '' || p === '/') && path) p = path;
  if ((q === '' || q === '?') && query) q = '?' + query;
  return origin + p + q;
}

// forwardTarget is where the tunnel's inspector replays to the typed URL
// to (tunnel.Client.target): to as typed when it has a path, else its
// origin and the endpoint's path, then the query as sent; to's own query
// is not kept.
export function forwardTarget(to, path = '', query = '') {
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)([^?#]*)/i.exec(String(to));
  if (!m) return String(to);
  let [, origin, p] = m;
  if ((p === '' || p === '/') && path && path !== '/') p = path;
  return origin + p + (query ? '?' + query : '');
}

// appendQuery adds a raw query to a URL, as the relay does for a GET.
export function appendQuery(url, query) {
  if (!query) return url;
  return url + (url.includes('?') ? '&' : '?') + query;
}

// normalizeHeaders accepts {name: [values]} or {name: value} and returns
// [[name, [values]]] sorted by name.
export function sortedHeaders(headers) {
  if (!headers || typeof headers !== 'object') return [];
  return Object.entries(headers)
    .map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : [String(v)]])
    .sort((a, b) => a[0].localeCompare(b[0]));
}

// redactValue mirrors web.RedactHeaders in Go: credentials hidden, an
// Authorization scheme kept.
export function redactValue(name, value, text) {
  const n = name.toLowerCase();
  if (n === 'authorization' || n === 'proxy-authorization') {
    const v = String(value).trim();
    const i = v.indexOf(' ');
    if (i > 0 && i <= 32 && /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(v.slice(0, i)) && v.slice(i + 1).trim() !== '') {
      return v.slice(0, i) + ' ' + text;
    }
  }
  return text;
}

// isRedacted says whether a header value shown is redacted: its name is a
// known credential, or the server redacted it by another rule (a name
// pattern, an endpoint's configured header), which ends it with text.
export function isRedacted(name, value, names, text) {
  return names.some((n) => n.toLowerCase() === name.toLowerCase()) || String(value).endsWith(text);
}

export function redactHeaders(headers, names, text) {
  const secret = new Set(names.map((n) => n.toLowerCase()));
  return sortedHeaders(headers).map(([k, vs]) => [k, secret.has(k.toLowerCase()) ? vs.map((v) => redactValue(k, v, text)) : vs]);
}

function headerValues(headers, name) {
  for (const [k, vs] of sortedHeaders(headers)) {
    if (k.toLowerCase() === name) return vs;
  }
  return [];
}

function base64urlDecode(s) {
  let b = s.replaceAll('-', '+').replaceAll('_', '/');
  while (b.length % 4) b += '=';
  const bin = atob(b);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

// decodeJWT reads a compact JWT's header and claims without verifying it:
// the server's verdict says whether it was valid.
export function decodeJWT(token) {
  const parts = String(token).trim().split('.');
  if (parts.length !== 3) return { error: 'not a JWT (want 3 dot-separated parts, got ' + parts.length + ')' };
  try {
    const header = JSON.parse(base64urlDecode(parts[0]));
    const claims = JSON.parse(base64urlDecode(parts[1]));
    if (typeof claims !== 'object' || claims === null) return { error: 'claims are not a JSON object' };
    return { header, claims };
  } catch (e) {
    return { error: 'cannot decode: ' + e.message };
  }
}

// tokensIn finds the JWTs a request carried: Authorization: Bearer and
// x-webio-token.
export function tokensIn(headers) {
  const out = [];
  for (const v of headerValues(headers, 'authorization')) {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(v);
    if (m) out.push({ source: 'authorization (Bearer)', ...decodeJWT(m[1]) });
  }
  for (const v of headerValues(headers, 'x-webio-token')) {
    out.push({ source: 'x-webio-token', ...decodeJWT(v) });
  }
  return out;
}

// bodyView decides how to show a body: pretty JSON, raw text, or base64
// bytes (noted as such).
export function bodyView(body, encoding) {
  if (body === undefined || body === null || body === '') return { kind: 'empty', text: '', note: 'no body' };
  if (encoding === 'base64') {
    let n = 0;
    try { n = atob(body).length; } catch { n = Math.floor(body.length * 3 / 4); }
    return { kind: 'base64', text: body, note: `binary, shown as base64 (${n.toLocaleString()} bytes)` };
  }
  const text = String(body);
  const t = text.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return { kind: 'json', text: JSON.stringify(JSON.parse(text), null, 2), note: `JSON, ${byteLength(text).toLocaleString()} bytes` };
    } catch { /* not JSON after all: shown raw below */ }
  }
  return { kind: 'text', text, note: `text, ${byteLength(text).toLocaleString()} bytes` };
}

function byteLength(s) { return new TextEncoder().encode(s).length; }

const pad = (n, w = 2) => String(n).padStart(w, '0');

// formatTime is the list's clock: local HH:MM:SS.mmm, with the date when it
// is not today.
export function formatTime(iso, now = new Date()) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  if (d.toDateString() === now.toDateString()) return t;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
}

// claimTime renders numeric date claims (iat, nbf, exp) readably.
export function claimValue(name, v) {
  if (['iat', 'nbf', 'exp', 'auth_time'].includes(name) && typeof v === 'number') {
    return `${v} (${new Date(v * 1000).toISOString()})`;
  }
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// JSON_TOKEN finds the tokens of JSON text: strings (a key when a colon
// follows), numbers, literals. Strings are matched first, so nothing
// inside one is taken for a number.
const JSON_TOKEN = /("(?:[^"\\\n]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;

// highlightJSON splits JSON text into [class, text] runs for syntax
// colouring ('' for punctuation and space). Joined, the runs are the text
// unchanged; the page sets each as text, never as HTML.
export function highlightJSON(text) {
  const out = [];
  let last = 0;
  for (const m of String(text).matchAll(JSON_TOKEN)) {
    if (m.index > last) out.push(['', text.slice(last, m.index)]);
    if (m[1] !== undefined) {
      out.push([m[2] ? 'j-key' : 'j-str', m[1]]);
      if (m[2]) out.push(['', m[2]]);
    } else if (m[3] !== undefined) {
      out.push(['j-num', m[3]]);
    } else {
      out.push([m[4] === 'null' ? 'j-null' : 'j-bool', m[4]]);
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(['', text.slice(last)]);
  return out;
}

// formatDuration is a duration in ms as people read it: 12 ms, 1.25 s, 2 min 5 s.
export function formatDuration(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60000) return `${(n / 1000).toFixed(n < 10000 ? 2 : 1)} s`;
  const s = Math.round(n / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

// relativeTime says how long after base iso was ("+5.00 s"), or before
// ("−1.00 s"); '' when either is not a time.
export function relativeTime(iso, base) {
  const a = Date.parse(iso);
  const b = Date.parse(base);
  if (Number.isNaN(a) || Number.isNaN(b)) return '';
  const d = a - b;
  return (d < 0 ? '−' : '+') + formatDuration(Math.abs(d));
}

// statusClass colours an HTTP status: ok for 2xx, warn for 3xx, bad for
// the rest (0: no answer at all).
export function statusClass(code) {
  const n = Number(code) || 0;
  if (n >= 200 && n < 300) return 'ok';
  if (n >= 300 && n < 400) return 'warn';
  return 'bad';
}

// SIGN_SCHEMES are the schemes a receiver's replay can be signed with
// (SPEC §3), in the receiver's order.
export const SIGN_SCHEMES = ['webio-token', 'jwt', 'standard'];

// schemesOf lists the schemes a request carried, judged by its headers as
// the receiver does (receiver.schemesOf): what a replay re-signs by
// default. Redacted values still say which headers were there.
export function schemesOf(headers) {
  const has = (name, test = (v) => v.trim() !== '') => headerValues(headers, name).some(test);
  const out = [];
  if (has('x-webio-token')) out.push('webio-token');
  if (has('authorization', (v) => /^\s*bearer\s+\S/i.test(v))) out.push('jwt');
  if (has('webhook-signature') || has('svix-signature')) out.push('standard');
  return out;
}

// replayOf is the id a request replays (its sidehook-replay-of header), or ''.
export function replayOf(headers) {
  for (const [k, vs] of sortedHeaders(headers)) {
    if (k.toLowerCase() === 'sidehook-replay-of' && vs.length) return vs[0];
  }
  return '';
}

// captureItem turns a capture as the receiver's API lists it into a
// dashboard item, as the server makes them for the websocket.
export function captureItem(c) {
  return {
    kind: 'capture', id: c.id, time: c.received_at, event: c.event, method: c.method, path: c.path,
    status: (c.verdict && c.verdict.status) || 'unverified', data: c,
  };
}
