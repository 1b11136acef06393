// ItemStore holds at most max items, oldest dropped first, upserted by ID.
// Items are kept oldest → newest so the usual arrival (a newer item) is a
// push, not an O(n) insert at the front.

import { formatDuration, formatTime, replayOf, sortedHeaders } from './format.js';

let seq = 0;

export class ItemStore {
  constructor(max) {
    this.max = max;
    this.items = []; // ascending by (time, id)
    this.byId = new Map();
    this.events = new Set();
    this.statuses = new Set();
    this.version = 0;
  }

  get size() { return this.items.length; }

  // upsert adds or replaces items; it returns how many were new.
  upsert(list) {
    let added = 0;
    for (const raw of list) {
      if (!raw || typeof raw.id !== 'string' || raw.id === '') continue;
      const it = prepare(raw);
      const old = this.byId.get(it.id);
      if (old) {
        it.seq = old.seq;
        // Updates keep their place: a delivery's time is its event's.
        const i = this.indexOf(old);
        if (i >= 0) this.items[i] = it;
      } else {
        it.seq = ++seq;
        this.insert(it);
        added++;
      }
      this.byId.set(it.id, it);
      if (it.event) this.events.add(it.event);
      if (it.status) this.statuses.add(it.status);
    }
    const over = this.items.length - this.max;
    if (over > 0) {
      for (const gone of this.items.splice(0, over)) this.byId.delete(gone.id);
    }
    this.version++;
    return added;
  }

  get(id) { return this.byId.get(id); }

  // forgetGone drops the items a snapshot (the server's newest items)
  // shows the server no longer has: those newer than its oldest that it
  // lacks, or every one it lacks when it is the server's whole store
  // (whole: shorter than a full snapshot). Captures cleared, or a server
  // that kept them in memory restarted, would otherwise stay listed, and
  // a replay of one would find nothing.
  forgetGone(snapshot, whole) {
    const ids = new Set(snapshot.map((it) => it && it.id));
    // Strictly newer, and compared in milliseconds: items that share the
    // oldest one's time may have been cut from the snapshot, not deleted.
    const since = whole ? -Infinity : Math.min(...snapshot.map((it) => Date.parse(it && it.time) || 0));
    const keep = this.items.filter((it) => ids.has(it.id) || it.ts <= since);
    if (keep.length === this.items.length) return 0;
    const gone = this.items.length - keep.length;
    this.items = keep;
    this.byId = new Map(keep.map((it) => [it.id, it]));
    this.version++;
    return gone;
  }

  // oldest is the oldest item held, the cursor for loading older ones.
  oldest() { return this.items[0]; }

  clear() {
    this.items = [];
    this.byId.clear();
    this.events.clear();
    this.statuses.clear();
    this.version++;
  }

  insert(it) {
    const a = this.items;
    if (a.length === 0 || cmp(a[a.length - 1], it) <= 0) {
      a.push(it);
      return;
    }
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(a[mid], it) <= 0) lo = mid + 1; else hi = mid;
    }
    a.splice(lo, 0, it);
  }

  indexOf(it) {
    const a = this.items;
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(a[mid], it) < 0) lo = mid + 1; else hi = mid;
    }
    for (let i = lo; i < a.length && cmp(a[i], it) === 0; i++) {
      if (a[i].id === it.id) return i;
    }
    return a.findIndex((x) => x.id === it.id);
  }

  // filter returns matching items newest first.
  filter(pred) {
    const out = [];
    for (let i = this.items.length - 1; i >= 0; i--) {
      if (pred(this.items[i])) out.push(this.items[i]);
    }
    return out;
  }
}

function cmp(a, b) {
  if (a.ts !== b.ts) return a.ts - b.ts;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

// queryText is a capture's query as URL text. A query that was not UTF-8
// comes as base64 (query_encoding), the way a body does; its bytes outside
// printable ASCII are shown percent-escaped, as a URL carries them.
function queryText(d) {
  if (d.query_encoding !== 'base64') return typeof d.query === 'string' ? d.query : '';
  let bin;
  try {
    bin = atob(d.query || '');
  } catch {
    return '';
  }
  let out = '';
  for (let i = 0; i < bin.length; i++) {
    const c = bin.charCodeAt(i);
    out += c < 0x21 || c > 0x7e ? '%' + c.toString(16).toUpperCase().padStart(2, '0') : bin[i];
  }
  return out;
}

// prepare adds what the list needs often: a numeric time and one lower-case
// string to search (bounded, so 10,000 items stay cheap to filter).
function prepare(raw) {
  const it = { ...raw };
  it.ts = Date.parse(it.time) || 0;
  it.displayTime = formatTime(it.time);
  const d = it.data && typeof it.data === 'object' ? it.data : {};
  it.replayOf = replayOf(d.headers || (d.event && d.event.headers));
  if (Array.isArray(d.attempts)) {
    // A delivery: its endpoint and attempts, and the last attempt's time.
    it.endpoint = d.endpoint || '';
    it.attemptCount = d.attempts.length;
    const last = d.attempts[d.attempts.length - 1];
    it.durationMs = last && last.latency_ms !== undefined ? Number(last.latency_ms) : undefined;
  } else if (d.response && typeof d.response === 'object') {
    if (d.response.duration_ms !== undefined) it.durationMs = Number(d.response.duration_ms);
    // A capture's answer: its status, 0 when none was sent (a fault, a
    // connection cut), and why.
    it.answer = { status: Number(d.response.status) || 0, why: d.response.fault || d.response.error || '' };
  }
  it.displayDuration = it.durationMs === undefined ? '' : formatDuration(it.durationMs);
  it.query = queryText(d);
  const body = typeof d.body === 'string' ? d.body.slice(0, 2048) : '';
  // The headers too: a receiver's request is found by the relay's
  // sidehook-delivery id, an x-request-id, a header's name.
  const headers = sortedHeaders(d.headers).map(([k, vs]) => `${k}: ${vs.join(', ')}`).join('\n').slice(0, 1024);
  it.haystack = [it.id, it.event, it.method, it.path, it.status, it.answer && it.answer.status ? 'http ' + it.answer.status : '', it.query, d.webhook_id, d.event_id, d.endpoint, d.url,
    d.verdict && d.verdict.reason, headers, body].filter(Boolean).join('\n').toLowerCase();
  return it;
}
