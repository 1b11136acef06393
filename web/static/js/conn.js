// Live keeps one websocket to the server open, reconnecting with capped,
// jittered backoff, and reports its state for the status indicator.

const BASE_DELAY = 500;
const MAX_DELAY = 15000;

export class Live {
  constructor({ path, token, onMessage, onState }) {
    this.path = path;
    this.token = token;
    this.onMessage = onMessage;
    this.onState = onState;
    this.attempt = 0;
    this.ws = null;
    this.timer = 0;
    this.tick = 0;
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}${this.path}`;
  }

  start() {
    clearTimeout(this.timer);
    clearInterval(this.tick);
    this.onState({ state: this.attempt === 0 ? 'connecting' : 'reconnecting', attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.onState({ state: 'live' });
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (opened) { this.retry(); return; }
      this.diagnose();
    };
  }

  // diagnose asks the same URL over plain HTTP why the handshake failed:
  // browsers hide the status of a refused websocket, and a 401 must show
  // the sign-in link rather than retry for ever.
  async diagnose() {
    try {
      const headers = this.token ? { Authorization: 'Bearer ' + this.token } : {};
      const r = await fetch(this.path, { headers, cache: 'no-store' });
      if (r.status === 401) {
        this.onState({ state: 'unauthorized' });
        return;
      }
    } catch { /* server unreachable: retry below */ }
    this.retry();
  }

  retry() {
    this.attempt++;
    const exp = Math.min(MAX_DELAY, BASE_DELAY * 2 ** (this.attempt - 1));
    const delay = Math.round(exp * (0.8 + Math.random() * 0.4));
    const until = Date.now() + delay;
    const report = () => this.onState({ state: 'reconnecting', attempt: this.attempt, inMs: Math.max(0, until - Date.now()) });
    report();
    this.tick = setInterval(report, 1000);
    this.timer = setTimeout(() => this.start(), delay);
  }

  // now skips the wait (the "Reconnect now" button).
  now() {
    if (this.ws) return;
    this.start();
  }
}
