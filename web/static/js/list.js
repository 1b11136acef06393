// VirtualList renders only the rows in view (plus a few), so 10,000 items
// cost the same to scroll as 20. Rows have one fixed height.

import { statusClass } from './format.js';

const OVERSCAN = 8;

export class VirtualList {
  constructor(root, { rowHeight, statusLabel, onSelect, onNearEnd, showAnswer = false }) {
    this.root = root;
    this.showAnswer = showAnswer;
    this.onNearEnd = onNearEnd;
    this.rowHeight = rowHeight;
    this.statusLabel = statusLabel;
    this.onSelect = onSelect;
    this.items = [];
    this.selectedId = null;
    this.spacer = document.createElement('div');
    this.spacer.className = 'spacer';
    this.spacer.setAttribute('role', 'presentation');
    root.append(this.spacer);
    this.rows = new Map(); // seq → element
    this.frame = 0;
    root.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(root);
    root.addEventListener('keydown', (e) => this.key(e));
    root.addEventListener('click', (e) => {
      const row = e.target.closest('[data-id]');
      if (row) this.select(row.dataset.id, { scroll: false });
    });
  }

  // setItems replaces the (already filtered, newest first) rows, keeping the
  // row the user is looking at in place when newer ones arrive above it.
  setItems(items) {
    const h = this.rowHeight;
    const top = this.root.scrollTop;
    let anchor = null;
    if (top > 0) {
      const first = this.items[Math.floor(top / h)];
      if (first) anchor = { id: first.id, offset: top - Math.floor(top / h) * h };
    }
    this.items = items;
    this.spacer.style.height = items.length * h + 'px';
    if (anchor) {
      const i = this.indexOf(anchor.id);
      if (i >= 0) this.root.scrollTop = i * h + anchor.offset;
    }
    this.render();
  }

  // indexOf is a scan, not a map kept per update: it is needed on a key
  // press or a scroll anchor, while updates can come 60 times a second.
  indexOf(id) {
    if (id === null || id === undefined) return -1;
    return this.items.findIndex((it) => it.id === id);
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    const h = this.rowHeight;
    const view = this.root.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.root.scrollTop / h) - OVERSCAN);
    const last = Math.min(this.items.length, Math.ceil((this.root.scrollTop + view) / h) + OVERSCAN);
    const keep = new Set();
    let active = null;
    for (let i = first; i < last; i++) {
      const it = this.items[i];
      keep.add(it.seq);
      let row = this.rows.get(it.seq);
      if (!row || row._item !== it) {
        const fresh = this.makeRow(it);
        if (row) row.replaceWith(fresh); else this.root.append(fresh);
        row = fresh;
        this.rows.set(it.seq, row);
      }
      row.style.transform = `translateY(${i * h}px)`;
      row.setAttribute('aria-posinset', String(i + 1));
      row.setAttribute('aria-setsize', String(this.items.length));
      const sel = it.id === this.selectedId;
      if (sel) active = row;
      row.classList.toggle('selected', sel);
      row.setAttribute('aria-selected', sel ? 'true' : 'false');
    }
    for (const [seq, row] of this.rows) {
      if (!keep.has(seq)) { row.remove(); this.rows.delete(seq); }
    }
    if (active) this.root.setAttribute('aria-activedescendant', active.id);
    else this.root.removeAttribute('aria-activedescendant');
    // The oldest rows are in view: time to fetch older ones, if any.
    if (this.onNearEnd && last >= this.items.length - OVERSCAN) this.onNearEnd();
  }

  makeRow(it) {
    const row = document.createElement('div');
    row._item = it;
    row.id = 'row-' + it.seq;
    row.className = 'row';
    row.dataset.id = it.id;
    row.setAttribute('role', 'option');
    const cell = (cls, text, title) => {
      const c = document.createElement('span');
      c.className = 'cell ' + cls;
      c.textContent = text;
      if (title) c.title = title;
      row.append(c);
      return c;
    };
    cell('c-event', it.event || '—');
    cell('c-method', it.method || '');
    const path = (it.path || '') + (it.query ? '?' + it.query : '');
    const pc = cell('c-path', path, path);
    if (it.kind === 'delivery' && it.endpoint) {
      const n = it.attemptCount || 0;
      const sub = document.createElement('span');
      sub.className = 'sub';
      sub.textContent = `${it.endpoint} · ${n} attempt${n === 1 ? '' : 's'}`;
      pc.prepend(sub);
      pc.title = `${it.endpoint}, ${n} attempt${n === 1 ? '' : 's'}: ${path}`;
    }
    if (this.showAnswer && it.answer) {
      // What the receiver answered, so a scripted 500 or a 401 stands
      // out from the verdict without opening the request.
      const mark = document.createElement('span');
      mark.className = 'mark answer ' + (it.answer.status ? statusClass(it.answer.status) : 'bad');
      mark.textContent = it.answer.status ? String(it.answer.status) : 'no answer';
      mark.title = it.answer.status ? `answered HTTP ${it.answer.status}` : `no answer${it.answer.why ? ': ' + it.answer.why : ''}`;
      pc.prepend(mark);
    }
    if (it.replayOf) {
      const mark = document.createElement('span');
      mark.className = 'mark replayed';
      mark.textContent = 'replay';
      mark.title = 'replay of ' + it.replayOf;
      pc.prepend(mark);
    }
    const st = cell('c-status', '');
    const chip = document.createElement('span');
    chip.className = 'chip s-' + (it.status || 'none');
    chip.textContent = this.statusLabel(it);
    st.append(chip);
    cell('c-dur', it.displayDuration || '', it.durationMs !== undefined ? `${it.durationMs} ms` : '');
    cell('c-time', it.displayTime || '', it.time);
    return row;
  }

  select(id, { scroll = true } = {}) {
    this.selectedId = id;
    const i = this.indexOf(id);
    if (scroll && i >= 0) this.scrollToIndex(i);
    this.render();
    if (i >= 0) this.onSelect(this.items[i]);
  }

  scrollToIndex(i) {
    const h = this.rowHeight;
    const top = i * h;
    const view = this.root.clientHeight;
    if (top < this.root.scrollTop) this.root.scrollTop = top;
    else if (top + h > this.root.scrollTop + view) this.root.scrollTop = top + h - view;
  }

  key(e) {
    if (this.items.length === 0) return;
    const cur = this.indexOf(this.selectedId);
    const page = Math.max(1, Math.floor(this.root.clientHeight / this.rowHeight) - 1);
    let next;
    switch (e.key) {
      case 'ArrowDown': next = cur + 1; break;
      case 'ArrowUp': next = cur < 0 ? 0 : cur - 1; break;
      case 'PageDown': next = cur + page; break;
      case 'PageUp': next = cur - page; break;
      case 'Home': next = 0; break;
      case 'End': next = this.items.length - 1; break;
      default: return;
    }
    e.preventDefault();
    next = Math.max(0, Math.min(this.items.length - 1, next));
    this.select(this.items[next].id);
  }
}
