import { API } from './api.js';
import { Live } from './conn.js';
import { Detail } from './detail.js';
import { VirtualList } from './list.js';
import { ItemStore } from './store.js';
import { captureItem, formatTime, highlightJSON } from './format.js';
import { h } from './dom.js';

const cfg = JSON.parse(document.getElementById('sidehook-config').textContent);
const relay = cfg.role === 'relay';
const $ = (id) => document.getElementById(id);

function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}
const token = readCookie(cfg.tokenCookie);

const statusLabel = (it) => it.status || (relay ? '—' : 'unverified');

const store = new ItemStore(cfg.maxItems);
const api = new API({ role: cfg.role, token });
const detail = new Detail($('detail'), { cfg, api, statusLabel });
const list = new VirtualList($('list'), {
  rowHeight: 30,
  statusLabel,
  onSelect: (it) => detail.show(it, { selected: true }),
  onNearEnd: () => loadOlder(),
  // The inspector's status is already the local app's answer.
  showAnswer: cfg.role === 'receiver',
});

// Older items, a page at a time, when the list is scrolled to its end
// (receiver: GET /_sidehook/requests?cursor=…; relay:
// GET /_sidehook/deliveries?before=…). A filter is applied to those too,
// so a filter matching nothing loaded still finds the older ones it
// matches; but a filter matching little would page through everything, so
// while filtered the page searches FILTERED_PAGES pages at a time, then
// asks before going further back.
const FILTERED_PAGES = 10;
const more = $('list-more');
let olderState = 'idle'; // idle | loading | paused (filtered, or failed: asks first) | done
let filteredPages = FILTERED_PAGES;
let snapshotSeen = false;
const fmt = (n) => n.toLocaleString();
const noun = (n) => (relay ? (n === 1 ? 'delivery' : 'deliveries') : (n === 1 ? 'request' : 'requests'));
async function loadOlder() {
  if (olderState !== 'idle' || !snapshotSeen || store.size === 0) return;
  if (store.size >= cfg.maxItems) {
    // Older ones would push out the ones just loaded, and load again.
    olderState = 'done';
    more.textContent = `This page holds the newest ${fmt(cfg.maxItems)} ${noun(2)}; older ones are on the server (${relay ? 'GET /v1/deliveries' : 'GET /_sidehook/requests'}).`;
    return;
  }
  const filtered = filtering();
  if (filtered) {
    if (filteredPages <= 0) {
      olderState = 'paused';
      more.replaceChildren(`Searched the newest ${fmt(store.size)} ${noun(store.size)}. `,
        h('button', { type: 'button', class: 'small', id: 'search-older', text: 'Search older', onclick: () => resume(FILTERED_PAGES) }));
      return;
    }
    filteredPages--;
  }
  olderState = 'loading';
  more.textContent = relay ? 'Loading older deliveries…' : 'Loading older requests…';
  try {
    let next;
    if (relay) {
      const { items, more: hasMore } = await api.olderDeliveries(store.oldest().time);
      pending.push(...items);
      // The bound is inclusive: a page of nothing new ends the paging too.
      next = hasMore && items.some((it) => !store.get(it.id));
    } else {
      const { captures, next: cursor } = await api.older(store.oldest().id);
      pending.push(...captures.map(captureItem));
      next = !!cursor;
    }
    olderState = next ? 'idle' : 'done';
    more.textContent = next ? '' : (relay ? 'All deliveries loaded.' : 'All requests loaded.');
    schedule();
  } catch (e) {
    // Paused, not done: the server may be restarting; the user can ask
    // again rather than reload the page. The page was not searched.
    if (filtered) filteredPages++;
    olderState = 'paused';
    more.replaceChildren(`Could not load older items: ${e.message}. `,
      h('button', { type: 'button', class: 'small', id: 'load-older-again', text: 'Try again', onclick: () => resume(filteredPages) }));
  }
}

// resume goes on loading older items after a pause, with pages more to
// search while filtered.
function resume(pages) {
  if (olderState !== 'paused') return;
  filteredPages = pages;
  olderState = 'idle';
  more.textContent = '';
  loadOlder();
}

// Filters.
const fEvent = $('f-event');
const fStatus = $('f-status');
const fText = $('f-text');
// -1: the built-in event types are offered before any item arrives.
let knownEvents = -1;
let textTimer = 0;
// A new filter gets its own pages of older items to search.
function filtersChanged() {
  filteredPages = FILTERED_PAGES;
  if (olderState === 'paused') {
    olderState = 'idle';
    more.textContent = '';
  }
  schedule();
}
fEvent.addEventListener('change', filtersChanged);
fStatus.addEventListener('change', filtersChanged);
fText.addEventListener('input', () => { clearTimeout(textTimer); textTimer = setTimeout(filtersChanged, 120); });
$('filters').addEventListener('reset', () => setTimeout(filtersChanged));
$('filters').addEventListener('submit', (e) => e.preventDefault());

function filtering() {
  return fEvent.value !== '' || fStatus.value !== '' || fText.value.trim() !== '';
}

function predicate() {
  const ev = fEvent.value;
  const st = fStatus.value;
  const words = fText.value.toLowerCase().split(/\s+/).filter(Boolean);
  return (it) => (!ev || it.event === ev || (ev === '(none)' && !it.event))
    && (!st || it.status === st)
    && words.every((w) => it.haystack.includes(w));
}

function syncEventOptions() {
  if (store.events.size === knownEvents) return;
  knownEvents = store.events.size;
  const cur = fEvent.value;
  const opts = [...new Set([...(cfg.events || []), ...store.events])].sort();
  fEvent.replaceChildren(new Option('All events', ''), ...opts.map((e) => new Option(e, e)));
  fEvent.value = cur;
}

// A status the items carry that the list of options lacks (the tunnel
// inspector's answers, "200", "500", "error") is added, so every row can
// be filtered to.
const fixedStatuses = [...fStatus.options];
let knownStatuses = 0;
function syncStatusOptions() {
  if (store.statuses.size === knownStatuses) return;
  knownStatuses = store.statuses.size;
  const cur = fStatus.value;
  const have = new Set(fixedStatuses.map((o) => o.value));
  const more = [...store.statuses].filter((st) => !have.has(st)).sort();
  fStatus.replaceChildren(...fixedStatuses, ...more.map((st) => new Option(st, st)));
  fStatus.value = cur;
}

// Incoming items are applied once per frame, however fast they come.
let pending = [];
let frame = 0;
function schedule() {
  if (frame) return;
  frame = requestAnimationFrame(apply);
}

function apply() {
  frame = 0;
  if (pending.length) {
    const batch = pending;
    pending = [];
    store.upsert(batch);
  }
  syncEventOptions();
  syncStatusOptions();
  const shown = store.filter(predicate());
  list.setItems(shown);
  const sel = detail.item && store.get(detail.item.id);
  if (sel && sel !== detail.item) detail.show(sel);
  $('counts').textContent = shown.length === store.size
    ? `${fmt(store.size)} ${noun(store.size)}`
    : `${fmt(shown.length)} of ${fmt(store.size)} shown`;
  const empty = $('list-empty');
  empty.hidden = shown.length > 0;
  empty.textContent = store.size === 0
    ? (relay ? 'No deliveries yet. Send an event (POST /v1/events) and it shows up here.'
      // The inspector serves nothing but this page: what it lists comes
      // from the relay, through the tunnel.
      : cfg.role === 'inspector' ? 'Waiting for deliveries. Send an event to the relay and each request forwarded to your app shows up here.'
      : `Waiting for requests. Send one to ${location.origin}/anything and it shows up here.`)
    : olderState === 'done' ? 'Nothing matches these filters.'
      : `Nothing matches these filters in the newest ${fmt(store.size)} ${noun(store.size)}.`;
}

// Notices.
function notice(text) {
  $('notice-text').textContent = text;
  $('notice').hidden = false;
}
$('notice-close').addEventListener('click', () => { $('notice').hidden = true; });

// Connection status.
const connEl = $('conn');
const connText = $('conn-text');
const reconnect = $('reconnect');
function onState(s) {
  connEl.dataset.state = s.state;
  reconnect.hidden = s.state !== 'reconnecting';
  switch (s.state) {
    case 'connecting': connText.textContent = 'Connecting…'; break;
    case 'live': connText.textContent = 'Live'; break;
    case 'reconnecting':
      connText.textContent = s.inMs !== undefined
        ? `Reconnecting in ${Math.ceil(s.inMs / 1000)} s (attempt ${s.attempt})`
        : `Reconnecting (attempt ${s.attempt})…`;
      break;
    case 'unauthorized':
      connText.textContent = 'Not signed in';
      notice(relay ? 'This dashboard needs an API key: reload the page to sign in.' : 'This dashboard needs the admin token: reload the page to sign in.');
      break;
  }
}

// forgetAll empties the list and the detail pane: the server deleted
// every item, and has nothing older either.
function forgetAll() {
  pending = [];
  store.clear();
  knownEvents = -1;
  knownStatuses = -1;
  detail.empty();
  olderState = 'done';
  more.textContent = '';
  schedule();
}

let snapshotFailed = false;
function onMessage(msg) {
  switch (msg.type) {
    case 'snapshot': {
      snapshotSeen = true;
      const items = Array.isArray(msg.items) ? msg.items : [];
      const whole = items.length < cfg.snapshotSize;
      if (whole && olderState === 'idle') olderState = 'done';
      // Merged, not replaced: after a reconnect or a drop the page keeps
      // what it had and takes the newest state of the newest items; only
      // what the server has lost since is forgotten, once what came
      // before the snapshot is in.
      if (pending.length) {
        store.upsert(pending);
        pending = [];
      }
      // After an error the snapshot lacks what the server could not read,
      // which is not gone.
      if (!snapshotFailed && store.forgetGone(items, whole) && detail.item && !store.get(detail.item.id)) {
        detail.setResult('warn', `This ${relay ? 'delivery' : 'request'} is no longer on the server: it was deleted, or the server restarted without keeping it.`);
      }
      snapshotFailed = false;
      pending.push(...items);
      schedule();
      break;
    }
    case 'item':
      if (msg.item) pending.push(msg.item);
      schedule();
      break;
    case 'dropped':
      notice(`This tab fell behind and the server skipped ${Number(msg.count).toLocaleString()} update${msg.count === 1 ? '' : 's'}; the newest ${cfg.snapshotSize} items were reloaded.`);
      break;
    case 'cleared': {
      // Another tab's Clear, or a test suite's reset between its tests:
      // what this tab holds is gone from the server.
      forgetAll();
      const at = formatTime(msg.time).replace(/\.\d+$/, '');
      notice(msg.by === 'reset' ? `Cleared by a reset at ${at}.` : `Cleared at ${at}: every ${noun(1)} was deleted.`);
      break;
    }
    case 'error':
      // The server says so before the snapshot it could not fill.
      snapshotFailed = true;
      notice('Server: ' + msg.error);
      break;
  }
}

const live = new Live({ path: cfg.wsPath, token, onMessage, onState });
reconnect.addEventListener('click', () => live.now());
live.start();
schedule();

// Receiver tools: exports, the rules in force, clearing every capture.
if (cfg.role === 'receiver') {
  for (const [id, name] of [['export-ndjson', 'sidehook-requests.ndjson'], ['export-har', 'sidehook-requests.har']]) {
    const a = $(id);
    a.addEventListener('click', (e) => {
      if (!token) return; // the plain link works without a token
      e.preventDefault();
      api.download(a.getAttribute('href'), name).catch((err) => notice('Export failed: ' + err.message));
    });
  }
  const dialog = $('rules-dialog');
  $('rules-close').addEventListener('click', () => dialog.close());
  $('show-rules').addEventListener('click', async () => {
    const pre = $('rules-text');
    pre.replaceChildren('Loading…');
    dialog.showModal();
    try {
      const r = await api.rules();
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const rules = r.json && Array.isArray(r.json.rules) ? r.json.rules : [];
      const text = rules.length ? JSON.stringify(rules, null, 2) : '[]';
      pre.replaceChildren(...highlightJSON(text).map(([cls, t]) => (cls ? h('span', { class: cls, text: t }) : t)));
      if (!rules.length) pre.append('\n\nNo rules: every request gets the default answer (200, or 401 when a verification fails).');
    } catch (e) {
      pre.replaceChildren('Could not load the rules: ' + e.message);
    }
  });
  const clearBtn = $('clear-all');
  let armed = 0;
  clearBtn.addEventListener('click', async () => {
    // Two clicks, so a stray one loses nothing.
    if (!armed) {
      clearBtn.textContent = 'Click again to delete all';
      armed = setTimeout(() => { armed = 0; clearBtn.textContent = 'Clear'; }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = 0;
    clearBtn.textContent = 'Clear';
    try {
      const r = await api.clear();
      if (!r.ok) throw new Error(`HTTP ${r.status}${r.json && r.json.reason ? ': ' + r.json.reason : ''}`);
      forgetAll();
    } catch (e) {
      notice('Clear failed: ' + e.message);
    }
  });
}

// The relay's connected tunnel clients, refreshed every few seconds: who is
// listening on a laptop right now, and how much is in flight to each.
let showTunnels = async () => {};
if (relay) {
  const strip = $('tunnels');
  showTunnels = async () => {
    try {
      const ts = await api.tunnels();
      strip.replaceChildren(...(ts.length ? [h('span', { class: 'label', text: 'Tunnels:' })] : []),
        ...ts.map((t) => h('span', { class: 'tunnel', title: `${t.org} · since ${new Date(t.since).toLocaleString()}`,
          // On relays sharing a NATS store, which of them holds it.
          text: `${t.name} (${t.remote_addr}, ${t.in_flight} in flight${t.relay ? `, on relay ${t.relay}` : ''})` })));
    } catch { /* the list is a hint: a failed poll leaves the last one */ }
  };
  showTunnels();
  setInterval(showTunnels, 3000);
}

// For the browser test and for curious developers in the console.
window.sidehook = { store, list, detail, live, config: cfg, showTunnels };
