// API calls the page's actions make on the server that serves it. The
// token (admin token or API key) goes in an Authorization header.

export class API {
  constructor({ role, token }) {
    this.role = role;
    this.token = token;
  }

  headers(json) {
    const h = { Accept: 'application/json' };
    if (json) h['Content-Type'] = 'application/json';
    if (this.token) h.Authorization = 'Bearer ' + this.token;
    return h;
  }

  // call returns {ok, status, json (undefined when the answer is not
  // JSON), text (pretty when JSON, cut at 4,000 characters)}.
  async call(method, path, body) {
    const r = await fetch(path, {
      method,
      headers: this.headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    let text = await r.text();
    let json;
    try { json = JSON.parse(text); text = JSON.stringify(json, null, 2); } catch { /* not JSON: shown as is */ }
    if (text.length > 4000) text = text.slice(0, 4000) + '\n…';
    return { ok: r.ok, status: r.status, json, text };
  }

  post(path, body) { return this.call('POST', path, body); }

  // replay sends the item again; to "" means its original target, body
  // undefined means its original bytes. sign (receiver only) lists the
  // schemes the receiver re-signs with, [] for none; undefined leaves the
  // choice to the server (every scheme the original had). The receiver
  // answers with the target's answer.
  replay(item, to, body, sign) {
    const req = {};
    if (to) req.to = to;
    if (body !== undefined) req.body = body;
    if (sign !== undefined && this.role !== 'relay') req.sign = sign;
    if (this.role === 'relay') {
      return this.post('/_sidehook/replay', { ids: [item.id], ...req });
    }
    return this.post(`/_sidehook/requests/${encodeURIComponent(item.id)}/replay`, req);
  }

  // fullBody returns an item's whole body, {body, encoding}, when the
  // page holds only its first part (body_preview): the receiver's capture
  // API has it. The relay's dashboard has no such call: null.
  async fullBody(item) {
    if (this.role === 'relay') return null;
    const r = await this.call('GET', `/_sidehook/requests/${encodeURIComponent(item.id)}`);
    if (!r.ok || !r.json || typeof r.json.body !== 'string') throw new Error(`HTTP ${r.status}`);
    return { body: r.json.body, encoding: r.json.body_encoding || 'utf8' };
  }

  retry(item) {
    return this.post(`/_sidehook/deliveries/${encodeURIComponent(item.id)}/retry`);
  }

  // older returns the page of captures after cursor (a capture id), oldest
  // last, and the cursor of the next page ('' at the end). Receiver only:
  // the relay's dashboard has no such call.
  async older(cursor, limit = 100) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set('cursor', cursor);
    const r = await this.call('GET', '/_sidehook/requests?' + q);
    if (!r.ok || !r.json || !Array.isArray(r.json.requests)) {
      throw new Error(`HTTP ${r.status}${r.json && r.json.reason ? ': ' + r.json.reason : ''}`);
    }
    return { captures: r.json.requests, next: r.json.next || '' };
  }

  // olderDeliveries is the relay's page of deliveries created at or before
  // the oldest row held (the bound is inclusive: rows may repeat).
  async olderDeliveries(before, limit = 100) {
    const q = new URLSearchParams({ before, limit: String(limit) });
    const r = await this.call('GET', '/_sidehook/deliveries?' + q);
    if (!r.ok || !r.json || !Array.isArray(r.json.items)) {
      throw new Error(`HTTP ${r.status}${r.json && r.json.reason ? ': ' + r.json.reason : ''}`);
    }
    return { items: r.json.items, more: !!r.json.more };
  }

  rules() { return this.call('GET', '/_sidehook/rules'); }

  // tunnels lists the relay's connected tunnel clients.
  async tunnels() {
    const r = await this.call('GET', '/_sidehook/tunnels');
    if (!r.ok || !r.json || !Array.isArray(r.json.tunnels)) throw new Error(`HTTP ${r.status}`);
    return r.json.tunnels;
  }

  clear() { return this.call('DELETE', '/_sidehook/requests'); }

  // download fetches an export with the token and hands it to the browser
  // as a file: a plain link cannot carry the Authorization header.
  async download(path, name) {
    const r = await fetch(path, { headers: this.headers(false), cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }
}
