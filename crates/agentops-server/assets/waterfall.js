// The waterfall: a session's events as a tree on a time axis. Only the rows in view exist in
// the DOM (fixed row height), so a session of 10,000 events or more scrolls smoothly.

import { h, clear, icon } from './dom.js';
import { parseTime, formatDuration, formatTokens, formatCost, kindClass, kindLabel } from './format.js';

/** The events `e.tool_links` points at, by direction (`calls`, `called_by`), found in `byId`. */
function linkedEvents(e, byId) {
  const out = { calls: [], called_by: [] };
  if (!Array.isArray(e.tool_links)) return out;
  for (const l of e.tool_links) {
    if (!l || l.event_id == null || !Object.hasOwn(out, l.direction)) continue;
    const n = byId.get(String(l.event_id));
    if (n && !out[l.direction].includes(n)) out[l.direction].push(n);
  }
  return out;
}

function names(nodes) {
  const list = nodes.slice(0, 3).map((n) => n.e.name || kindLabel(n.e.kind));
  return list.join(', ') + (nodes.length > 3 ? ` and ${nodes.length - 3} more` : '');
}

export const ROW_H = 30;
const OVERSCAN = 8;

/**
 * The waterfall's tree from the server's `event_tree` (depth first, children by start time, each
 * node's `parent_id` set when its parent is in the session, `failed` by the server's rule), each
 * node showing the flat event of the same id when the answer has it (payloads, messages).
 */
export function buildTree(treeNodes, events = []) {
  const full = new Map(events.map((e) => [e.id, e]));
  const order = treeNodes.map((t, pos) => {
    const e = full.get(t.id) || t;
    const start = parseTime(e.start_time);
    const end = e.end_time ? parseTime(e.end_time) : NaN;
    return { e, start, end, depth: t.depth || 0, parent: null, children: [], pos, size: 1, error: t.failed === true, errorBelow: 0 };
  });
  const byId = new Map(order.map((n) => [n.e.id, n]));
  treeNodes.forEach((t, pos) => {
    const n = order[pos];
    const p = t.parent_id ? byId.get(t.parent_id) : null;
    if (p && p !== n && p.pos < n.pos) {
      n.parent = p;
      p.children.push(n);
    }
  });
  // subtree sizes (reverse preorder) and errors below
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    n.size = 1;
    for (const c of n.children) if (c.pos > n.pos) n.size += c.size;
    if (n.parent && (n.error || n.errorBelow)) n.parent.errorBelow += 1;
  }
  const errors = order.filter((n) => n.error);
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const n of order) {
    if (!Number.isNaN(n.start)) {
      t0 = Math.min(t0, n.start);
      t1 = Math.max(t1, n.start);
    }
    if (!Number.isNaN(n.end)) t1 = Math.max(t1, n.end);
  }
  return { order, byId, errors, t0, t1 };
}

const NICE = [1, 2, 2.5, 5, 10];
function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of NICE) if (m * p >= raw) return m * p;
  return 10 * p;
}

/**
 * A waterfall over `tree`, spanning `[t0, t1]` (ms). `onSelect(node)` is called when a row is
 * selected. Call `mounted()` once the element is in the document.
 */
export function createWaterfall({ tree, t0, t1, isRunning, onSelect, onFilterCleared }) {
  let full0 = t0;
  let full1 = Math.max(t1, t0 + 1);
  let w0 = full0;
  let w1 = full1;
  const collapsed = new Set();
  let visible = tree.order;
  let selected = null;
  const pool = new Map();
  let frame = 0;

  const ruler = h('div', { class: 'wf-ruler', title: 'Drag to pan; Ctrl+wheel to zoom' });
  const windowBar = h('div', { class: 'wf-window' });
  const rulerWrap = h('div', { class: 'wf-ruler-wrap' }, ruler, h('div', { class: 'wf-window-track' }, windowBar));
  const headName = h('div', { class: 'wf-head-name' }, 'Event');
  const head = h('div', { class: 'wf-head' }, headName, rulerWrap);
  const layer = h('div', { class: 'wf-layer' });
  const spacer = h('div', { class: 'wf-spacer' }, layer);
  const scroller = h('div', { class: 'wf-scroll', tabindex: '0', role: 'tree', 'aria-label': 'Events', 'data-testid': 'waterfall' }, spacer);
  const root = h('div', { class: 'wf' }, head, scroller);

  function trackWidth() {
    return Math.max(1, ruler.clientWidth);
  }

  let kept = null; // with a filter: the nodes that match or hold a match
  let matched = null;

  function recomputeVisible() {
    if (collapsed.size === 0 && !kept) {
      visible = tree.order;
    } else {
      const out = [];
      const order = tree.order;
      for (let k = 0; k < order.length; ) {
        const n = order[k];
        if (kept && !kept.has(n)) {
          k += n.size;
          continue;
        }
        out.push(n);
        k += collapsed.has(n) ? n.size : 1;
      }
      visible = out;
    }
    spacer.style.height = `${visible.length * ROW_H}px`;
  }

  function setFilter(text) {
    const q = String(text || '').trim().toLowerCase();
    if (!q) {
      kept = null;
      matched = null;
    } else {
      matched = new Set();
      kept = new Set();
      for (const n of tree.order) {
        const e = n.e;
        const hay = `${e.name || ''} ${e.kind || ''} ${e.model || ''} ${e.id} ${e.status_message || ''}`.toLowerCase();
        if (hay.includes(q)) matched.add(n);
      }
      for (const n of matched) {
        for (let p = n; p && !kept.has(p); p = p.parent) kept.add(p);
      }
    }
    recomputeVisible();
    const k = selected ? indexOf(selected) : -1;
    if (k >= 0) scroller.scrollTop = Math.max(0, k * ROW_H - scroller.clientHeight / 2);
    else scroller.scrollTop = 0;
    renderRows(true);
    return matched ? matched.size : tree.order.length;
  }

  function pct(t) {
    return ((t - w0) / (w1 - w0)) * 100;
  }

  function drawRuler() {
    clear(ruler);
    const span = w1 - w0;
    const width = trackWidth();
    const step = niceStep((span * 90) / width);
    const first = Math.ceil((w0 - full0) / step) * step + full0;
    for (let t = first; t <= w1 + 1e-9; t += step) {
      const left = pct(t);
      if (left < 0 || left > 100) continue;
      const label = left > 93 ? null : h('span', { class: 'tick-label' }, t === full0 ? '0' : formatDuration(t - full0));
      ruler.appendChild(h('span', { class: 'tick', style: { left: `${left}%` } }, label));
    }
    const fullSpan = full1 - full0;
    const zoomed = span < fullSpan * 0.999;
    windowBar.parentElement.hidden = !zoomed;
    windowBar.style.left = `${((w0 - full0) / fullSpan) * 100}%`;
    windowBar.style.width = `${Math.max(0.5, (span / fullSpan) * 100)}%`;
  }

  function endOf(n) {
    if (!Number.isNaN(n.end)) return n.end;
    return isRunning() ? full1 : n.start;
  }

  /** ↪ (calls tools) or ↩ (called by an LLM call) on a row with tool links: its tooltip names
   * them, a click selects the first. */
  function linkMarker(n) {
    const linked = linkedEvents(n.e, tree.byId);
    const targets = linked.calls.concat(linked.called_by);
    if (!targets.length) return null;
    const lines = [];
    if (linked.calls.length) lines.push(`Called ${linked.calls.length === 1 ? 'tool' : 'tools'}: ${names(linked.calls)}`);
    if (linked.called_by.length) lines.push(`Called by ${names(linked.called_by)}`);
    const title = `${lines.join(' · ')} (click to select ${targets.length === 1 ? 'it' : 'the first'})`;
    return h(
      'button',
      {
        type: 'button',
        class: 'wf-link',
        tabindex: '-1',
        title,
        'aria-label': title,
        'data-testid': 'wf-tool-link',
        onclick: (ev) => {
          ev.stopPropagation();
          reveal(targets[0]);
          select(targets[0], { scroll: true });
        },
      },
      linked.calls.length ? '↪' : '↩',
    );
  }

  function makeRow(n, index) {
    const e = n.e;
    const start = n.start;
    const end = endOf(n);
    const open = Number.isNaN(n.end);
    const duration = open ? null : n.end - n.start;
    const hasKids = kept ? n.children.some((c) => kept.has(c)) : n.children.length > 0;
    const isCollapsed = collapsed.has(n);
    const caret = hasKids
      ? h(
          'button',
          {
            type: 'button',
            class: 'caret' + (isCollapsed ? '' : ' open'),
            tabindex: '-1',
            'aria-label': isCollapsed ? 'Expand' : 'Collapse',
            onclick: (ev) => {
              ev.stopPropagation();
              toggle(n);
            },
          },
          icon('chevron', 12),
        )
      : h('span', { class: 'caret-space' });
    const name = e.name || kindLabel(e.kind);
    const nameCell = h(
      'div',
      { class: 'wf-name', style: { paddingLeft: `${8 + n.depth * 16}px` } },
      caret,
      h('span', { class: `kind-dot ${kindClass(e.kind)}`, title: kindLabel(e.kind) }),
      h('span', { class: 'wf-label', title: name }, name),
      linkMarker(n),
      isCollapsed && n.size > 1 ? h('span', { class: 'wf-count' }, `+${n.size - 1}`) : null,
      n.error ? h('span', { class: 'wf-err', title: e.status_message || 'error' }, icon('alert', 12)) : isCollapsed && n.errorBelow ? h('span', { class: 'wf-err dim', title: 'errors inside' }, icon('alert', 12)) : null,
    );
    const left = pct(start);
    const right = pct(end);
    const barLeft = Math.max(-1, Math.min(101, left));
    const barWidth = Math.max(0, Math.min(101, right) - barLeft);
    const bits = [];
    if (duration == null) bits.push(open && isRunning() ? 'running' : '');
    else if (duration > 0 || !n.error) bits.push(formatDuration(duration));
    const tokens = (e.input_tokens || 0) + (e.output_tokens || 0);
    if (tokens) bits.push(`${formatTokens(tokens)} tok`);
    if (e.cost) bits.push(formatCost(e.cost));
    const labelText = bits.filter(Boolean).join(' · ');
    const bar = h('div', {
      class: `wf-bar ${kindClass(e.kind)}${n.error ? ' is-error' : ''}${open ? ' open' : ''}${barWidth < 0.25 ? ' point' : ''}`,
      style: { left: `${barLeft}%`, width: `${barWidth}%` },
    });
    const label = h('span', { class: 'wf-bar-label' }, labelText);
    if (right < 78) label.style.left = `calc(${Math.max(0, right)}% + 6px)`;
    else if (left > 22) label.style.right = `calc(${Math.max(0, 100 - left)}% + 6px)`;
    else {
      // no room beside the bar: inside it
      label.classList.add('inside');
      label.style.left = `calc(${Math.max(0, left)}% + 6px)`;
    }
    const track = h('div', { class: 'wf-track', title: `${name} · ${kindLabel(e.kind)} · starts at +${formatDuration(start - full0)}${labelText ? ' · ' + labelText : ''}` }, bar, labelText ? label : null);
    const row = h(
      'div',
      {
        class: 'wf-row' + (n === selected ? ' selected' : '') + (n.error ? ' error' : '') + (matched && matched.has(n) ? ' match' : ''),
        role: 'treeitem',
        'aria-level': String(n.depth + 1),
        'aria-selected': n === selected ? 'true' : 'false',
        'aria-expanded': hasKids ? String(!isCollapsed) : null,
        'data-testid': 'wf-row',
        'data-event-id': e.id,
        'data-kind': e.kind,
        style: { top: `${index * ROW_H}px` },
      },
      nameCell,
      track,
    );
    row.addEventListener('click', () => select(n));
    row.addEventListener('dblclick', () => zoomTo(n));
    row._node = n;
    return row;
  }

  function renderRows(force = false) {
    frame = 0;
    if (force) {
      for (const el of pool.values()) el.remove();
      pool.clear();
    }
    const height = scroller.clientHeight || 600;
    const top = scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(visible.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    for (const [index, el] of pool) {
      if (index < first || index >= last) {
        el.remove();
        pool.delete(index);
      }
    }
    for (let k = first; k < last; k++) {
      if (!pool.has(k)) {
        const el = makeRow(visible[k], k);
        layer.appendChild(el);
        pool.set(k, el);
      }
    }
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => renderRows(false));
  }

  function refresh() {
    drawRuler();
    renderRows(true);
  }

  function indexOf(n) {
    if (visible === tree.order) return n.pos;
    let lo = 0;
    let hi = visible.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const p = visible[mid].pos;
      if (p === n.pos) return mid;
      if (p < n.pos) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  function scrollToIndex(k) {
    const top = k * ROW_H;
    const height = scroller.clientHeight;
    if (top < scroller.scrollTop || top + ROW_H > scroller.scrollTop + height) {
      scroller.scrollTop = Math.max(0, top - height / 2 + ROW_H / 2);
    }
  }

  function select(n, { scroll = false, notify = true } = {}) {
    selected = n;
    for (const el of pool.values()) {
      const on = el._node === n;
      el.classList.toggle('selected', on);
      el.setAttribute('aria-selected', on ? 'true' : 'false');
    }
    if (scroll && n) {
      const k = indexOf(n);
      if (k >= 0) scrollToIndex(k);
      renderRows(false);
    }
    if (notify && onSelect) onSelect(n);
  }

  function reveal(n) {
    let changed = false;
    if (kept && !kept.has(n)) {
      kept = null;
      matched = null;
      changed = true;
      if (onFilterCleared) onFilterCleared();
    }
    for (let p = n.parent; p; p = p.parent) {
      if (collapsed.delete(p)) changed = true;
    }
    if (changed) {
      recomputeVisible();
      renderRows(true);
    }
    // bring it into the time window
    const end = endOf(n);
    if (n.start < w0 || end > w1) {
      const span = Math.max(w1 - w0, end - n.start);
      setWindow(n.start - span * 0.1, n.start - span * 0.1 + span);
    }
  }

  function toggle(n) {
    if (!n.children.length) return;
    if (collapsed.has(n)) collapsed.delete(n);
    else collapsed.add(n);
    recomputeVisible();
    renderRows(true);
  }

  function setWindow(a, b) {
    const fullSpan = full1 - full0;
    let span = Math.min(fullSpan, Math.max(b - a, Math.max(0.001, fullSpan / 1e6)));
    let start = Math.max(full0, Math.min(a, full1 - span));
    w0 = start;
    w1 = start + span;
    refresh();
  }

  function zoom(factor, anchor = 0.5) {
    const span = w1 - w0;
    const at = w0 + span * anchor;
    const next = span * factor;
    setWindow(at - next * anchor, at - next * anchor + next);
  }

  function zoomTo(n) {
    const end = endOf(n);
    const span = Math.max(end - n.start, (full1 - full0) / 1e6, 0.01);
    setWindow(n.start - span * 0.15, end + span * 0.15);
  }

  function fit() {
    setWindow(full0, full1);
  }

  function zoomLevel() {
    return (full1 - full0) / (w1 - w0);
  }

  function moveErrors(dir) {
    const errs = tree.errors;
    if (!errs.length) return null;
    const cur = selected ? selected.pos : dir > 0 ? -1 : Infinity;
    let target;
    if (dir > 0) target = errs.find((n) => n.pos > cur) || errs[0];
    else target = [...errs].reverse().find((n) => n.pos < cur) || errs[errs.length - 1];
    reveal(target);
    select(target, { scroll: true });
    return target;
  }

  function move(delta) {
    if (!visible.length) return;
    const k = selected ? indexOf(selected) : -1;
    const next = Math.max(0, Math.min(visible.length - 1, k + delta));
    select(visible[next], { scroll: true });
  }

  scroller.addEventListener('scroll', schedule, { passive: true });
  scroller.addEventListener('keydown', (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const n = selected;
    switch (ev.key) {
      case 'ArrowDown':
      case 'j':
        move(1);
        break;
      case 'ArrowUp':
      case 'k':
        move(-1);
        break;
      case 'PageDown':
        move(Math.floor(scroller.clientHeight / ROW_H));
        break;
      case 'PageUp':
        move(-Math.floor(scroller.clientHeight / ROW_H));
        break;
      case 'Home':
        move(-Infinity);
        break;
      case 'End':
        move(Infinity);
        break;
      case 'ArrowRight':
        if (n && n.children.length && collapsed.has(n)) toggle(n);
        else if (n && n.children.length) select(n.children[0], { scroll: true });
        break;
      case 'ArrowLeft':
        if (n && n.children.length && !collapsed.has(n)) toggle(n);
        else if (n && n.parent) select(n.parent, { scroll: true });
        break;
      case 'Enter':
        if (n) zoomTo(n);
        break;
      default:
        return;
    }
    ev.preventDefault();
  });
  const onWheel = (ev) => {
    const rect = ruler.getBoundingClientRect();
    const anchor = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
    if (ev.ctrlKey || ev.metaKey) {
      ev.preventDefault();
      zoom(ev.deltaY > 0 ? 1.25 : 0.8, anchor);
    } else if ((ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) && zoomLevel() > 1.0001) {
      ev.preventDefault();
      const d = ev.shiftKey ? ev.deltaY : ev.deltaX;
      const shift = (d / rect.width) * (w1 - w0);
      setWindow(w0 + shift, w1 + shift);
    }
  };
  root.addEventListener('wheel', onWheel, { passive: false });
  let drag = null;
  rulerWrap.addEventListener('pointerdown', (ev) => {
    drag = { x: ev.clientX, w0, w1 };
    rulerWrap.setPointerCapture(ev.pointerId);
    rulerWrap.classList.add('dragging');
  });
  rulerWrap.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    const shift = ((drag.x - ev.clientX) / trackWidth()) * (drag.w1 - drag.w0);
    setWindow(drag.w0 + shift, drag.w1 + shift);
  });
  const endDrag = () => {
    drag = null;
    rulerWrap.classList.remove('dragging');
  };
  rulerWrap.addEventListener('pointerup', endDrag);
  rulerWrap.addEventListener('pointercancel', endDrag);
  const resize = new ResizeObserver(() => {
    drawRuler();
    schedule();
  });

  recomputeVisible();

  return {
    el: root,
    scroller,
    mounted() {
      resize.observe(scroller);
      refresh();
    },
    destroy() {
      resize.disconnect();
      if (frame) cancelAnimationFrame(frame);
    },
    select(n, opts) {
      if (n) reveal(n);
      select(n, { scroll: true, ...opts });
    },
    selected: () => selected,
    nextError: () => moveErrors(1),
    prevError: () => moveErrors(-1),
    zoomIn: () => zoom(0.5, selected ? Math.min(1, Math.max(0, pct(selected.start) / 100)) : 0.5),
    zoomOut: () => zoom(2, 0.5),
    fit,
    zoomTo: (n) => n && zoomTo(n),
    zoomLevel,
    expandAll() {
      collapsed.clear();
      recomputeVisible();
      renderRows(true);
    },
    collapseAll() {
      // a single root (a session or agent span) stays open, so that its steps show
      const roots = tree.order.filter((n) => n.depth === 0).length;
      for (const n of tree.order) if (n.children.length && n.depth >= (roots === 1 ? 1 : 0)) collapsed.add(n);
      recomputeVisible();
      if (selected && indexOf(selected) < 0) selected = null;
      renderRows(true);
    },
    /** New bounds (a live session grew); keeps the zoom when zoomed in. */
    setBounds(a, b) {
      const wasFull = zoomLevel() <= 1.0001;
      full0 = a;
      full1 = Math.max(b, a + 1);
      if (wasFull) {
        w0 = full0;
        w1 = full1;
      }
      refresh();
    },
    setFilter,
    visibleCount: () => visible.length,
    domRows: () => pool.size,
  };
}
