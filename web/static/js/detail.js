import { h } from './dom.js';
import { bodyView, buildCurl, claimValue, redactHeaders, tokensIn } from './format.js';

const RETRYABLE = new Set(['failed', 'dead']);

// Detail shows one item and its actions. Re-showing the same item (a live
// update) refreshes what is shown but keeps what the user typed.
export class Detail {
  constructor(root, { cfg, api, statusLabel }) {
    this.root = root;
    this.cfg = cfg;
    this.api = api;
    this.statusLabel = statusLabel;
    this.item = null;
    this.empty();
  }

  empty() {
    this.item = null;
    this.root.replaceChildren(h('div', { class: 'empty' },
      h('p', { text: this.cfg.role === 'relay'
        ? 'Select a delivery to see its attempts, headers and body.'
        : 'Select a request to see its headers, body and verdict.' }),
      h('p', { class: 'hint', text: 'Keyboard: focus the list, then ↑ ↓ PgUp PgDn Home End.' })));
  }

  show(item) {
    const same = this.item && this.item.id === item.id;
    this.item = item;
    if (!same) this.build();
    this.refresh();
  }

  data() {
    const d = this.item.data;
    return d && typeof d === 'object' ? d : {};
  }

  // request returns what was sent: method, URL, headers, body.
  request() {
    const it = this.item;
    const d = this.data();
    const ev = d.event && typeof d.event === 'object' ? d.event : {};
    const body = typeof d.body === 'string' ? d.body : (typeof ev.body === 'string' ? ev.body : '');
    const bodyEncoding = d.body_encoding || ev.body_encoding || 'utf8';
    const headers = d.headers || ev.headers || {};
    let url;
    if (it.kind === 'delivery') {
      url = d.url || d.endpoint_url || '';
    } else {
      url = location.origin + (it.path || '/') + (d.query ? '?' + d.query : '');
    }
    // body_preview: the server sent only the first bytes of a large body
    // (body_size is the whole); a replay still sends all of it.
    const preview = d.body_preview === true || ev.body_preview === true;
    const bodySize = Number(d.body_size ?? ev.body_size) || 0;
    return { method: it.method || d.method || 'POST', url, headers, body, bodyEncoding, preview, bodySize };
  }

  build() {
    const relay = this.cfg.role === 'relay';
    const req = this.request();
    this.head = h('div', { class: 'detail-head' });

    this.to = h('input', { id: 'replay-to', name: 'to', type: 'text', inputmode: 'url', spellcheck: 'false', autocomplete: 'off',
      placeholder: relay ? 'empty: the endpoint it was delivered to' : 'empty: the original target' });
    this.bodyEdit = h('textarea', { id: 'replay-body', name: 'body', rows: '8', spellcheck: 'false' });
    const binary = req.bodyEncoding === 'base64';
    const fixed = binary || req.preview;
    this.bodyEdit.value = fixed ? '' : req.body;
    this.bodyEdit.disabled = fixed;
    this.result = h('div', { class: 'result', role: 'status', 'aria-live': 'polite' });
    this.curl = h('textarea', { class: 'curl', readonly: true, rows: '5', 'aria-label': 'curl command', hidden: true });
    this.replayBtn = h('button', { type: 'submit', class: 'primary', text: 'Replay' });
    this.curlBtn = h('button', { type: 'button', text: 'Copy as curl', onclick: () => this.copyCurl() });
    this.retryBtn = relay ? h('button', { type: 'button', text: 'Retry', onclick: () => this.retry() }) : null;

    const form = h('form', { class: 'replay', 'aria-label': 'Replay', onsubmit: (e) => { e.preventDefault(); this.replay(); } },
      h('div', { class: 'field' },
        h('label', { for: 'replay-to', text: 'Target URL' }),
        this.to),
      h('details', { class: 'edit-body' },
        h('summary', { text: 'Edit body before replaying' }),
        h('label', { for: 'replay-body', text: 'Body to send' }),
        this.bodyEdit,
        h('p', { class: 'hint', text: binary
          ? 'This body is binary: it is replayed unchanged.'
          : req.preview
            ? 'This body is too large to edit here: it is replayed unchanged.'
            : 'Unchanged, the original bytes are sent. Replays are re-signed and carry sidehook-replay-of.' })),
      h('div', { class: 'buttons' }, this.replayBtn, this.curlBtn, this.retryBtn));

    this.info = h('div', { class: 'info' });
    this.root.replaceChildren(this.head, h('section', { class: 'actions', 'aria-label': 'Actions' }, form, this.result, this.curl), this.info);
  }

  refresh() {
    const it = this.item;
    const d = this.data();
    const req = this.request();
    const relay = it.kind === 'delivery';

    const meta = [];
    const add = (k, v) => { if (v !== undefined && v !== null && v !== '') meta.push(h('dt', { text: k }), h('dd', { text: String(v) })); };
    add('ID', it.id);
    add(relay ? 'Created' : 'Received', it.time);
    add('Event', it.event);
    if (relay) {
      add('Event ID', d.event_id);
      add('Endpoint', d.endpoint);
      add('URL', d.url || d.endpoint_url);
      add('Next attempt', d.next_attempt_at);
    } else {
      add('Webhook ID', d.webhook_id);
      add('Remote', d.remote_addr);
      add('Duplicate of', d.duplicate_of);
    }
    const target = relay ? (req.url || it.path || '') : (it.path || '/') + (d.query ? '?' + d.query : '');
    this.head.replaceChildren(
      h('h2', { class: 'title' },
        h('span', { class: 'method', text: it.method || '' }), ' ',
        h('span', { class: 'target', text: target, title: target })),
      h('span', { class: 'chip big s-' + (it.status || 'none'), text: this.statusLabel(it) }),
      h('dl', { class: 'meta' }, meta));

    if (this.retryBtn) {
      const ok = RETRYABLE.has(it.status);
      this.retryBtn.hidden = !ok;
    }

    const sections = [];
    if (!relay) sections.push(this.verdictSection(d));
    if (!relay) sections.push(this.answerSection(d.response));
    if (relay) sections.push(this.attemptsSection(d));
    sections.push(this.headersSection(req.headers));
    sections.push(this.tokensSection(req.headers, d));
    sections.push(this.bodySection(req));
    this.info.replaceChildren(...sections.filter(Boolean));
  }

  verdictSection(d) {
    const v = d.verdict || {};
    const r = d.response || {};
    const rows = [];
    const add = (k, val, cls) => { if (val !== undefined && val !== null && val !== '') rows.push(h('dt', { text: k }), h('dd', { class: cls, text: String(val) })); };
    add('Verdict', v.status || 'unverified');
    add('Scheme', v.scheme);
    add('Reason', v.reason, 'reason');
    if (r.status) add('Answered', r.status + (r.rule ? ` (rule ${r.rule})` : ''));
    return h('section', { class: 'block' }, h('h3', { text: 'Verdict' }), h('dl', { class: 'kv' }, rows));
  }

  // answerSection shows what the app answered when the server kept it
  // (the tunnel's inspector does; the receiver's own answer has no body).
  answerSection(r) {
    if (!r || (r.body === undefined && r.headers === undefined && !r.error)) return null;
    const rows = [];
    const add = (k, val, cls) => { if (val !== undefined && val !== null && val !== '') rows.push(h('dt', { text: k }), h('dd', { class: cls, text: String(val) })); };
    add('Status', r.status || 'no answer');
    if (r.duration_ms !== undefined) add('Duration', `${r.duration_ms} ms`);
    add('Error', r.error, 'reason');
    const out = [h('h3', { text: 'Answer' }), h('dl', { class: 'kv' }, rows)];
    if (r.headers && Object.keys(r.headers).length) out.push(this.headersSection(r.headers));
    if (r.body) {
      const v = bodyView(r.body, r.body_encoding || 'utf8');
      out.push(h('h4', {}, 'Body ', h('span', { class: 'note', text: r.truncated ? 'first 64 KiB only' : v.note })),
        h('pre', { class: 'code body ' + v.kind, tabindex: '0', 'aria-label': 'Answer body', text: v.text }));
    }
    return h('section', { class: 'block' }, out);
  }

  attemptsSection(d) {
    const attempts = Array.isArray(d.attempts) ? d.attempts : [];
    const list = h('ol', { class: 'timeline' });
    for (const a of attempts) {
      const code = Number(a.status) || 0;
      const ok = code >= 200 && code < 300;
      const head = h('div', { class: 'att-head' },
        h('span', { class: 'att-n', text: '#' + (a.n ?? '?') }),
        h('span', { class: 'att-status ' + (ok ? 'ok' : 'bad'), text: code ? 'HTTP ' + code : 'no response' }),
        h('span', { class: 'att-lat', text: a.latency_ms !== undefined ? `${a.latency_ms} ms` : '' }),
        h('time', { class: 'att-time', text: a.at || '', datetime: a.at || undefined }));
      const li = h('li', { class: ok ? 'ok' : 'bad' }, head);
      if (a.error) li.append(h('p', { class: 'att-error', text: a.error }));
      if (a.response) {
        li.append(h('details', {}, h('summary', { text: 'Response body' }), h('pre', { class: 'code', text: bodyView(a.response, 'utf8').text })));
      }
      list.append(li);
    }
    const children = [h('h3', { text: `Attempts (${attempts.length})` })];
    children.push(attempts.length ? list : h('p', { class: 'hint', text: 'No attempt yet.' }));
    if (d.next_attempt_at && (this.item.status === 'failed' || this.item.status === 'pending')) {
      children.push(h('p', { class: 'hint', text: 'Next attempt at ' + d.next_attempt_at }));
    }
    return h('section', { class: 'block' }, children);
  }

  headersSection(headers) {
    const rows = redactHeaders(headers, this.cfg.redact, this.cfg.redactedText);
    const secret = new Set(this.cfg.redact);
    const table = h('table', { class: 'headers' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Header' }), h('th', { scope: 'col', text: 'Value' }))),
      h('tbody', {}, rows.flatMap(([k, vs]) => vs.map((v) =>
        h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { class: secret.has(k.toLowerCase()) ? 'redacted' : '', text: v }))))));
    return h('section', { class: 'block' }, h('h3', { text: `Headers (${rows.length})` }), rows.length ? table : h('p', { class: 'hint', text: 'none' }));
  }

  tokensSection(headers, d) {
    const toks = tokensIn(headers);
    const out = [h('h3', { text: 'Token claims' })];
    for (const t of toks) {
      out.push(h('h4', { text: t.source }));
      if (t.error) { out.push(h('p', { class: 'warn', text: t.error })); continue; }
      const hdr = Object.entries(t.header || {}).map(([k, v]) => `${k} ${claimValue(k, v)}`).join(' · ');
      out.push(h('p', { class: 'hint', text: hdr }));
      out.push(this.claimsTable(t.claims));
    }
    const vc = d.verdict && d.verdict.claims;
    if (!toks.length && vc && typeof vc === 'object' && Object.keys(vc).length) {
      out.push(h('h4', { text: 'from the verdict' }), this.claimsTable(vc));
    }
    if (out.length === 1) return null;
    out.push(h('p', { class: 'hint', text: 'Decoded in your browser, not verified: the verdict says whether the signature held.' }));
    return h('section', { class: 'block' }, out);
  }

  claimsTable(claims) {
    return h('table', { class: 'claims' }, h('tbody', {}, Object.entries(claims).map(([k, v]) =>
      h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { text: claimValue(k, v) })))));
  }

  bodySection(req) {
    const v = bodyView(req.body, req.bodyEncoding);
    // A cut body is not valid JSON: say why it shows raw.
    const note = req.preview ? `first part only, of ${req.bodySize.toLocaleString()} bytes: replay sends them all` : v.note;
    return h('section', { class: 'block' },
      h('h3', {}, 'Body ', h('span', { class: 'note', text: note })),
      v.kind === 'empty' ? null : h('pre', { class: 'code body ' + v.kind, tabindex: '0', 'aria-label': 'Body', text: v.text }));
  }

  setResult(ok, text) {
    this.result.className = 'result ' + (ok ? 'ok' : 'bad');
    this.result.textContent = text;
  }

  async replay() {
    const req = this.request();
    const to = this.to.value.trim();
    const edited = !this.bodyEdit.disabled && this.bodyEdit.value !== req.body;
    const btn = this.replayBtn;
    btn.disabled = true;
    this.setResult(true, 'Replaying…');
    try {
      const r = await this.api.replay(this.item, to, edited ? this.bodyEdit.value : undefined);
      this.setResult(r.ok, `Replay ${r.ok ? 'sent' : 'failed'}: HTTP ${r.status}${r.text ? '\n' + r.text : ''}`);
    } catch (e) {
      this.setResult(false, 'Replay failed: ' + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  async retry() {
    const btn = this.retryBtn;
    btn.disabled = true;
    this.setResult(true, 'Retrying…');
    try {
      const r = await this.api.retry(this.item);
      this.setResult(r.ok, `Retry ${r.ok ? 'scheduled' : 'failed'}: HTTP ${r.status}${r.text ? '\n' + r.text : ''}`);
    } catch (e) {
      this.setResult(false, 'Retry failed: ' + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  async copyCurl() {
    const req = this.request();
    if (!req.url) {
      this.setResult(false, 'This item has no URL to build a curl command from.');
      return;
    }
    if (req.preview) {
      this.setResult(false, 'This body is too large for the dashboard, which holds only its first part: use Replay, or export the request from the API.');
      return;
    }
    const cmd = buildCurl(req);
    // The command carries the request's real credentials (that is what
    // makes it replayable), so it is put on screen only when it cannot go
    // to the clipboard.
    this.curl.value = cmd;
    this.curl.hidden = true;
    try {
      await navigator.clipboard.writeText(cmd);
      this.setResult(true, 'Copied the curl command to the clipboard.');
    } catch {
      // No clipboard here (plain http beyond loopback): select it instead.
      this.curl.hidden = false;
      this.curl.focus();
      this.curl.select();
      this.setResult(true, 'The clipboard is not available here: the command is selected below, press Ctrl+C.');
    }
  }
}
