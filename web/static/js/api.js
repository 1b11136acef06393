// API calls the page's actions make on the server that serves it. The
// token (admin token or API key) goes in an Authorization header.

export class API {
  constructor({ role, token }) {
    this.role = role;
    this.token = token;
  }

  async post(path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = 'Bearer ' + this.token;
    const r = await fetch(path, {
      method: 'POST',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    let text = await r.text();
    try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: shown as is */ }
    if (text.length > 4000) text = text.slice(0, 4000) + '\n…';
    return { ok: r.ok, status: r.status, text };
  }

  // replay sends the item again; to "" means its original target, body
  // undefined means its original bytes.
  replay(item, to, body) {
    const req = {};
    if (to) req.to = to;
    if (body !== undefined) req.body = body;
    if (this.role === 'relay') {
      return this.post('/_sidehook/replay', { ids: [item.id], ...req });
    }
    return this.post(`/_sidehook/requests/${encodeURIComponent(item.id)}/replay`, req);
  }

  // replayRequest is the call replay makes, as {path, body}: Copy as curl
  // hands it to a shell, so the copy is re-signed by the server and still
  // verifies (a copy of the original headers would carry a used jti and
  // the redacted credentials only).
  replayRequest(item) {
    if (this.role === 'relay') return { path: '/_sidehook/replay', body: { ids: [item.id] } };
    return { path: `/_sidehook/requests/${encodeURIComponent(item.id)}/replay`, body: {} };
  }

  retry(item) {
    return this.post(`/_sidehook/deliveries/${encodeURIComponent(item.id)}/retry`);
  }
}
