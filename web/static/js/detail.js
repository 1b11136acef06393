import { h } from './dom.js';
import { SIGN_SCHEMES, appendQuery, bodyView, buildCurl, claimValue, formatDuration, forwardTarget, highlightJSON, isRedacted, redactHeaders, relativeTime, replayOf, replayTarget, schemesOf, sortedHeaders, statusClass, tokensIn } from './format.js';

const RETRYABLE = new Set(['failed', 'dead']);

// answerParts shows an answer's headers (folded) and body under a replay's
// result; a is {headers, body, body_encoding}.
function answerParts(a) {
  const parts = [];
  const hdrs = sortedHeaders(a.headers);
  if (hdrs.length) {
    parts.push(h('details', { class: 'answer-headers' }, h('summary', { text: `Answer headers (${hdrs.length})` }),
      h('pre', { text: hdrs.map(([k, vs]) => vs.map((v) => `${k}: ${v}`).join('\n')).join('\n') })));
  }
  if (a.body) parts.push(h('pre', { class: 'answer-body', text: bodyView(a.body, a.body_encoding || 'utf8').text }));
  return parts;
}

// Detail shows one item and its actions. Re-showing the same item (a live
// update) refreshes what is shown but keeps what the user typed.
export class Detail {
  constructor(root, { cfg, api, statusLabel }) {
    this.root = root;
    this.cfg = cfg;
    this.api = api;
    this.statusLabel = statusLabel;
    this.item = null;
    // Bodies show pretty (and coloured) JSON unless the user asks for the
    // bytes as sent; the choice holds from item to item.
    this.raw = false;
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

  // show displays item; selected says the user picked it (rather than a
  // live update of the one shown), which clears the last action's result.
  show(item, { selected = false } = {}) {
    const same = this.item && this.item.id === item.id;
    this.item = item;
    if (!same) this.build();
    else if (selected) this.setResult('', '');
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
    } else if (typeof d.url === 'string' && d.url) {
      // The tunnel's inspector: where the request was forwarded (the
      // local app), not this page's server.
      url = d.url;
    } else {
      url = location.origin + (it.path || '/') + (it.query ? '?' + it.query : '');
    }
    // body_preview: the server sent only the first bytes of a large body
    // (body_size is the whole); a replay still sends all of it.
    const preview = d.body_preview === true || ev.body_preview === true;
    const bodySize = Number(d.body_size ?? ev.body_size) || 0;
    // body_truncated: the receiver did not keep the body at all (over its
    // limit, or busy); body_size is how long it was.
    const missing = d.body_truncated === true;
    return { method: it.method || d.method || 'POST', url, headers, body, bodyEncoding, preview, bodySize, missing };
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
    // The receiver re-signs a replay with its own keys (SPEC §5 "sign"):
    // the schemes are the user's to choose, ticked as the original came.
    // The relay signs as the endpoint does, and the tunnel's inspector
    // sends the recorded headers: no choice there.
    this.signBoxes = [];
    let signField = null;
    if (this.cfg.role === 'receiver') {
      const carried = schemesOf(req.headers);
      this.signBoxes = SIGN_SCHEMES.map((s) => h('input', { type: 'checkbox', name: 'sign', value: s, id: 'sign-' + s, checked: carried.includes(s) }));
      signField = h('fieldset', { class: 'sign' },
        h('legend', { text: 'Sign with' }),
        this.signBoxes.map((b) => h('label', { for: b.id }, b, ' ' + b.value)),
        h('p', { class: 'hint', text: carried.length
          ? `The original carried ${carried.join(', ')}. Ticked schemes are signed afresh with this receiver's keys; none ticked sends it unsigned.`
          : "The original was unsigned. Ticked schemes are signed with this receiver's keys." }));
    }

    const form = h('form', { class: 'replay', 'aria-label': 'Replay', onsubmit: (e) => { e.preventDefault(); this.replay(); } },
      h('div', { class: 'field' },
        h('label', { for: 'replay-to', text: 'Target URL' }),
        this.to),
      signField,
      h('details', { class: 'edit-body' },
        h('summary', { text: 'Edit body before replaying' }),
        h('label', { for: 'replay-body', text: 'Body to send' }),
        this.bodyEdit,
        h('p', { class: 'hint', text: req.missing
          ? 'The original body was not kept: a replay sends the body typed here, none if it is left empty.'
          : binary
          ? 'This body is binary: it is replayed unchanged.'
          : req.preview
            ? 'This body is too large to edit here: it is replayed unchanged.'
            : this.cfg.role === 'inspector'
              ? 'Unchanged, the original bytes are sent, with the original headers and sidehook-replay-of. Their tokens expire after 5 minutes: to replay later, signed afresh, run sidehook replay --relay with this delivery\'s id.'
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
      add('Ended', d.reason);
    } else {
      add('Webhook ID', d.webhook_id);
      // The tunnel's inspector: where it went (a replay "to" another URL
      // keeps the endpoint's path, which the title shows) and the
      // delivery `sidehook replay --relay --id` takes.
      add('Sent to', d.url);
      add('Delivery', d.delivery_id);
      add('Remote', d.remote_addr);
      add('Duplicate of', d.duplicate_of);
      add('Replay of', replayOf(d.headers));
      add('Took', it.displayDuration);
    }
    const target = relay ? (req.url || it.path || '') : (it.path || '/') + (it.query ? '?' + it.query : '');
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
    // A custom-value request is answered while the platform waits: the
    // relay never replays one, so the page does not offer to.
    const synchronous = relay && it.event === 'custom_value_request';
    this.replayBtn.hidden = synchronous;
    this.replayBtn.title = synchronous ? 'Custom-value requests are synchronous and are not replayed' : '';

    const sections = [];
    if (!relay) sections.push(this.verdictSection(d), this.responseSection(d));
    if (relay) sections.push(this.attemptsSection(d));
    sections.push(this.headersSection(req.headers));
    sections.push(this.tokensSection(req.headers, d));
    sections.push(this.bodySection(req));
    // A live update (the next attempt) rebuilds the sections: what the
    // user opened to read stays open.
    const opened = new Set([...this.info.querySelectorAll('details[data-key]')].filter((d) => d.open).map((d) => d.dataset.key));
    this.info.replaceChildren(...sections.filter(Boolean));
    for (const d of this.info.querySelectorAll('details[data-key]')) {
      if (opened.has(d.dataset.key)) d.open = true;
    }
  }

  verdictSection(d) {
    const v = d.verdict || {};
    const rows = [];
    const add = (k, val, cls) => { if (val !== undefined && val !== null && val !== '') rows.push(h('dt', { text: k }), h('dd', { class: cls, text: String(val) })); };
    add('Verdict', v.status || 'unverified');
    add('Scheme', v.scheme);
    add('Reason', v.reason, 'reason');
    return h('section', { class: 'block' }, h('h3', { text: 'Verdict' }), h('dl', { class: 'kv' }, rows));
  }

  // responseSection shows what the receiver answered: status, rule or
  // fault, time taken, headers and body.
  responseSection(d) {
    const r = d.response;
    if (!r || typeof r !== 'object') return null;
    const code = Number(r.status) || 0;
    const bits = [];
    if (r.rule) bits.push(`rule ${r.rule}`);
    if (r.fault) bits.push(`fault: ${r.fault}`);
    // The tunnel's inspector keeps the local app's error, if it gave none.
    if (r.error) bits.push(`error: ${r.error}`);
    if (r.duration_ms !== undefined) bits.push(formatDuration(r.duration_ms));
    const out = [
      h('h3', { text: 'Response' }),
      h('p', { class: 'resp-line' },
        h('span', { class: 'resp-status ' + statusClass(code), text: code ? `HTTP ${code}` : 'no answer' }),
        bits.length ? h('span', { class: 'resp-bits', text: ' · ' + bits.join(' · ') }) : null),
    ];
    const hdrs = sortedHeaders(r.headers);
    if (hdrs.length) {
      out.push(h('table', { class: 'headers resp-headers' },
        h('tbody', {}, hdrs.flatMap(([k, vs]) => vs.map((v) => h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { text: v })))))));
    }
    if (r.body) {
      const note = r.body_truncated ? 'first 4 KiB only' : (r.truncated ? 'first 64 KiB only' : '');
      out.push(this.bodyBlock(r.body, r.body_encoding || 'utf8', 'resp-body', 'Response body', note));
    }
    return h('section', { class: 'block response' }, out);
  }

  // bodyBlock is a body with its raw/pretty toggle; JSON shows coloured.
  bodyBlock(body, encoding, cls, label, extraNote) {
    const v = bodyView(body, encoding);
    const json = v.kind === 'json';
    const pre = h('pre', { class: `code ${cls} ${v.kind}`, tabindex: '0', 'aria-label': label });
    const fill = () => {
      if (json && !this.raw) pre.replaceChildren(...highlightJSON(v.text).map(([c, t]) => (c ? h('span', { class: c, text: t }) : t)));
      else pre.textContent = json ? String(body) : v.text;
    };
    fill();
    const note = h('span', { class: 'note', text: extraNote || v.note });
    const toggle = json ? h('button', { type: 'button', class: 'small toggle', text: this.raw ? 'Pretty' : 'Raw',
      'aria-pressed': this.raw ? 'true' : 'false',
      onclick: () => { this.raw = !this.raw; this.refresh(); } }) : null;
    return h('div', { class: 'body-block' }, h('div', { class: 'body-head' }, note, toggle), v.kind === 'empty' ? null : pre);
  }

  attemptsSection(d) {
    const attempts = Array.isArray(d.attempts) ? d.attempts : [];
    const list = h('ol', { class: 'timeline' });
    // Times read as offsets from the delivery's creation (or its first
    // attempt, if that is earlier): "+5.00 s" says more than a clock.
    const first = attempts.length ? Date.parse(attempts[0].at) : NaN;
    const created = Date.parse(this.item.time);
    const base = Number.isNaN(created) || created > first ? attempts[0] && attempts[0].at : this.item.time;
    for (const a of attempts) {
      const code = Number(a.status) || 0;
      const ok = code >= 200 && code < 300;
      const head = h('div', { class: 'att-head' },
        h('span', { class: 'att-n', text: '#' + (a.n ?? '?') }),
        h('span', { class: 'att-status ' + (ok ? 'ok' : 'bad'), text: code ? 'HTTP ' + code : 'no response' }),
        h('span', { class: 'att-lat', text: a.latency_ms !== undefined ? `${a.latency_ms} ms` : '' }),
        h('time', { class: 'att-time', text: relativeTime(a.at, base) || a.at || '', datetime: a.at || undefined,
          title: a.at || undefined }));
      const li = h('li', { class: ok ? 'ok' : 'bad' }, head);
      if (a.error) li.append(h('p', { class: 'att-error', text: a.error }));
      // What this attempt sent: its own timestamp, attempt number and
      // tokens, which the Headers section (the latest attempt's) hides.
      const sent = redactHeaders(a.request_headers, this.cfg.redact, this.cfg.redactedText);
      if (sent.length) {
        li.append(h('details', { class: 'att-request', 'data-key': `att-request-${a.n}` }, h('summary', { text: `Request headers (${sent.length})` }), this.headersTable(sent)));
      }
      if (a.response) {
        li.append(h('details', { 'data-key': `att-response-${a.n}` }, h('summary', { text: 'Response body' }), h('pre', { class: 'code', text: bodyView(a.response, 'utf8').text })));
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
    return h('section', { class: 'block' }, h('h3', { text: `Headers (${rows.length})` }), rows.length ? this.headersTable(rows) : h('p', { class: 'hint', text: 'none' }));
  }

  // headersTable shows headers already through redactHeaders.
  headersTable(rows) {
    return h('table', { class: 'headers' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Header' }), h('th', { scope: 'col', text: 'Value' }))),
      h('tbody', {}, rows.flatMap(([k, vs]) => vs.map((v) =>
        h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { class: isRedacted(k, v, this.cfg.redact, this.cfg.redactedText) ? 'redacted' : '', text: v }))))));
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
    // A cut body is not valid JSON: say why it shows raw.
    let note = req.preview ? `first part only, of ${req.bodySize.toLocaleString()} bytes: replay sends them all` : '';
    if (req.missing) {
      const answered = Number((this.data().response || {}).status) || 0;
      note = `not kept: the receiver did not store this body (${req.bodySize.toLocaleString()} bytes)` + (answered ? ` and answered HTTP ${answered}` : '');
    }
    return h('section', { class: 'block' }, h('h3', { text: 'Body' }), this.bodyBlock(req.body, req.bodyEncoding, 'body', 'Body', note));
  }

  // setResult shows an action's outcome; cls is ok, warn, bad or '' (none).
  setResult(cls, text, ...extra) {
    this.result.className = 'result ' + (cls === true ? 'ok' : cls === false ? 'bad' : cls);
    this.result.replaceChildren(text, ...extra);
  }

  // showReplay shows a replay's outcome: the target's own answer, coloured
  // by its status, when the server relays it; else the server's answer.
  // target is where the page asked it to go.
  showReplay(r, target) {
    const j = r.json;
    // The relay answers {replayed, results}: per delivery, the target's
    // status or why the replay was not sent.
    if (this.cfg.role === 'relay' && j && Array.isArray(j.results) && j.results.length === 1) {
      const res = j.results[0] || {};
      if (res.status) {
        const head = `Target answered HTTP ${res.status}` + (res.latency_ms !== undefined ? ` in ${formatDuration(res.latency_ms)}` : '') +
          `\n${this.request().method} ${target} · re-signed as the endpoint signs · sidehook-replay-of ${res.delivery_id || this.item.id}`;
        this.setResult(statusClass(res.status), head, ...(res.error ? [h('pre', { text: res.error })] : []));
      } else {
        this.setResult('bad', `Replay not sent: ${res.error || 'HTTP ' + r.status}`);
      }
      return;
    }
    // The tunnel's inspector answers with the record of the replay: the
    // local app's answer is its response (status 0: no answer, see error).
    if (r.ok && j && j.response && typeof j.response === 'object' && typeof j.response.status === 'number' && typeof j.url === 'string') {
      const a = j.response;
      const head = (a.status ? `Target answered HTTP ${a.status}` : 'Target did not answer') +
        (a.duration_ms !== undefined ? ` in ${formatDuration(a.duration_ms)}` : '') +
        `\n${j.method || ''} ${j.url} · sidehook-replay-of ${j.replay_of || this.item.id}`;
      const extra = a.error ? [h('pre', { class: 'answer-error', text: a.error })] : [];
      this.setResult(statusClass(a.status), head, ...extra, ...answerParts(a));
      return;
    }
    if (r.ok && j && typeof j.status === 'number' && j.target !== undefined) {
      const signed = Array.isArray(j.signed) ? (j.signed.length ? 'signed: ' + j.signed.join(', ') : 'sent unsigned') : '';
      const head = `Target answered HTTP ${j.status}` + (j.duration_ms !== undefined ? ` in ${formatDuration(j.duration_ms)}` : '') +
        `\n${j.method || ''} ${j.target}` + (signed ? ` · ${signed}` : '');
      this.setResult(statusClass(j.status), head, ...answerParts(j));
      return;
    }
    if (!r.ok) {
      const why = j && j.reason ? `${j.error}: ${j.reason}` : r.text;
      // A scheme this receiver has no key for: say how to go on.
      const todo = j && j.error === 'cannot_sign'
        ? '\nUntick it under “Sign with” to replay without it (none ticked: unsigned), or start the receiver with the flag named above.'
        : '';
      this.setResult('bad', `Replay not sent: HTTP ${r.status}${why ? '\n' + why : ''}${todo}`);
      return;
    }
    this.setResult('ok', `Replay sent: HTTP ${r.status}${r.text ? '\n' + r.text : ''}`);
  }

  async replay() {
    const req = this.request();
    const to = this.to.value.trim();
    // A body not kept is never replayed as the original: the receiver
    // refuses that, so what is typed (empty too) is sent, as the hint says.
    const edited = !this.bodyEdit.disabled && (req.missing || this.bodyEdit.value !== req.body);
    const btn = this.replayBtn;
    btn.disabled = true;
    this.setResult('', 'Replaying…');
    try {
      const sign = this.signBoxes.length ? this.signBoxes.filter((b) => b.checked).map((b) => b.value) : undefined;
      const r = await this.api.replay(this.item, to, edited ? this.bodyEdit.value : undefined, sign);
      this.showReplay(r, to || req.url);
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
      const j = r.json;
      // The answer is the delivery as it is now: say what happens next,
      // not its whole JSON (the attempts' headers with it).
      if (r.ok) {
        const next = j && Array.isArray(j.attempts) ? `: attempt #${j.attempts.length + 1} is next` : '';
        // Due now, a delivery of an ordered endpoint may still wait behind
        // the head of its queue: the answer's reason says so.
        const waits = j && j.reason ? [h('p', { class: 'hint', text: j.reason })] : [];
        this.setResult(true, `Retry scheduled, ${(j && j.status) || 'pending'}${next}`, ...waits);
      } else {
        const why = j && j.reason ? `${j.error}: ${j.reason}` : r.text;
        this.setResult(false, `Retry failed: HTTP ${r.status}${why ? '\n' + why : ''}`);
      }
    } catch (e) {
      this.setResult(false, 'Retry failed: ' + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  // curlRequest is the request Copy as curl copies: this one as the page
  // shows it (method, headers with credentials redacted), sent where
  // Replay would send it (the Target URL typed, else the original URL),
  // with the edited body if there is one, else the original bytes.
  async curlRequest() {
    const it = this.item;
    const d = this.data();
    const req = this.request();
    const to = this.to.value.trim();
    let url = req.url;
    if (to && it.kind === 'delivery') {
      // The relay sends to the typed URL as is; a GET keeps its query.
      url = req.method === 'GET' ? appendQuery(to, req.url.split('?').slice(1).join('?')) : to;
    } else if (to && this.cfg.role === 'inspector') {
      url = forwardTarget(to, it.path || '/', it.query || '');
    } else if (to) {
      url = replayTarget(to, it.path || '/', it.query || '');
    }
    const out = { method: req.method, url, body: req.body, bodyEncoding: req.bodyEncoding, bodyFile: '', bodySize: req.bodySize, missing: req.missing };
    out.headers = Object.fromEntries(redactHeaders(req.headers, this.cfg.redact, this.cfg.redactedText));
    if (!this.bodyEdit.disabled && this.bodyEdit.value !== req.body) {
      out.body = this.bodyEdit.value;
      out.bodyEncoding = 'utf8';
    } else if (req.preview) {
      // The page holds only the first part of a large body.
      const full = await this.api.fullBody(it);
      if (full) {
        out.body = full.body;
        out.bodyEncoding = full.encoding;
      } else {
        out.body = '';
        out.bodyFile = 'body';
      }
    }
    return out;
  }

  async copyCurl() {
    let req;
    try {
      req = await this.curlRequest();
    } catch (e) {
      this.setResult(false, 'Could not read the whole body: ' + e.message);
      return;
    }
    const cmd = buildCurl(req);
    const notes = [];
    const hidden = Object.entries(req.headers)
      .filter(([k, vs]) => [].concat(vs).some((v) => isRedacted(k, v, this.cfg.redact, this.cfg.redactedText)))
      .map(([k]) => k);
    if (hidden.length) {
      notes.push(`Its credentials are redacted (${hidden.join(', ')}): replace each ${this.cfg.redactedText} before running it, or use Replay, which re-signs.`);
    }
    if (req.missing && req.body === '') {
      notes.push(`Its body (${req.bodySize.toLocaleString()} bytes) was not kept by the receiver: the command sends none.`);
    }
    if (req.bodyFile) {
      const d = this.data();
      notes.push(`Its body (${req.bodySize.toLocaleString()} bytes) is more than the page holds: the command reads it from the file ` +
        `"${req.bodyFile}"; save the event's body there first (GET /v1/events/${d.event_id || '…'} has it).`);
    }
    const what = `a curl command of this request, to ${req.url}.` + (notes.length ? '\n' + notes.join('\n') : '');
    this.curl.value = cmd;
    this.curl.hidden = true;
    try {
      await navigator.clipboard.writeText(cmd);
      this.setResult(notes.length ? 'warn' : true, 'Copied ' + what);
    } catch {
      // No clipboard here (plain http beyond loopback): select it instead.
      this.curl.hidden = false;
      this.curl.focus();
      this.curl.select();
      this.setResult(notes.length ? 'warn' : true, 'The clipboard is not available here: below is ' + what + '\nIt is selected: press Ctrl+C.');
    }
  }
}

