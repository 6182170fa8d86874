// Small SVG charts drawn by hand: vertical (stacked) bars, lines, horizontal bars.

import { h, s, clear } from './dom.js';

/** A round step for about four gridlines over [0, max], and the axis top (a multiple of it). */
function axis(max, integer) {
  if (!(max > 0)) return { step: integer ? 1 : 0.25, top: integer ? 4 : 1 };
  const raw = max / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = 10 * p;
  for (const m of integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]) {
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  }
  if (integer) step = Math.max(1, Math.round(step));
  return { step, top: Math.ceil(max / step - 1e-9) * step };
}

/** The left padding that fits the widest axis label (about 7 px a character at 11 px mono). */
function labelRoom(step, max, format) {
  let widest = 0;
  for (let k = 0; k * step <= max + 1e-9; k++) widest = Math.max(widest, String(format(k * step)).length);
  return Math.max(56, 14 + widest * 7);
}

/**
 * An empty plot of `width` × `height` for values in [0, max of `values`]: the svg with its
 * gridlines and axis labels, and the plot's geometry.
 */
function frame(width, height, values, format, integer) {
  const { step, top: max } = axis(Math.max(0, ...values), integer);
  const padL = labelRoom(step, max, format);
  const padR = 8;
  const padT = 10;
  const padB = 24;
  const plotW = width - padL - padR;
  const plotH = height - padT - padB;
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  for (let k = 0; k * step <= max + 1e-9; k++) {
    const v = k * step;
    const y = padT + plotH - (v / max) * plotH;
    svg.appendChild(s('line', { x1: padL, x2: width - padR, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(s('text', { x: padL - 8, y: y + 4, class: 'axis', 'text-anchor': 'end', text: format(v) }));
  }
  return { svg, max, padL, padT, plotW, plotH };
}

/** Draws `area` now and whenever its size changes; `box._destroy()` stops watching. */
function drawnOnResize(box, area, draw) {
  const observer = new ResizeObserver(() => draw());
  observer.observe(area);
  requestAnimationFrame(draw);
  box._destroy = () => observer.disconnect();
  return box;
}

/**
 * Stacked bars. `rows`: [{label, values: [..]}]; `series`: [{name, cls}]; `format(v)` for the
 * axis and the tooltips. Redraws itself when its width changes.
 */
export function barChart({ rows, series, format, height = 200, testid = null, integer = false }) {
  const box = h('div', { class: 'chart', 'data-testid': testid });
  const legend = series.length > 1 ? h('div', { class: 'chart-legend' }, series.map((x) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${x.cls}` }), x.name))) : null;
  const area = h('div', { class: 'chart-area' });
  const tip = h('div', { class: 'chart-tip' });
  tip.hidden = true;
  box.append(area, tip);
  if (legend) box.appendChild(legend);

  function draw() {
    const width = Math.max(240, area.clientWidth || 600);
    clear(area);
    const totals = rows.map((r) => r.values.reduce((a, b) => a + (b || 0), 0));
    const { svg, max, padL, padT, plotW, plotH } = frame(width, height, totals, format, integer);
    const n = Math.max(1, rows.length);
    const slot = plotW / n;
    const barW = Math.max(1, Math.min(36, slot * 0.7));
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 64))));
    rows.forEach((r, i) => {
      const x = padL + i * slot + (slot - barW) / 2;
      let y = padT + plotH;
      r.values.forEach((v, j) => {
        if (!v) return;
        const hgt = (v / max) * plotH;
        y -= hgt;
        svg.appendChild(s('rect', { x, y, width: barW, height: Math.max(0.5, hgt), rx: Math.min(3, barW / 4), class: `bar ${series[j].cls}` }));
      });
      const hit = s('rect', { x: padL + i * slot, y: padT, width: slot, height: plotH, class: 'hit' });
      hit.addEventListener('mouseenter', () => {
        tip.textContent = '';
        tip.appendChild(h('div', { class: 'tip-title' }, r.label));
        series.forEach((x, j) => tip.appendChild(h('div', null, h('span', { class: `swatch ${x.cls}` }), `${x.name}: ${format(r.values[j] || 0)}`)));
        tip.hidden = false;
        const left = Math.min(width - 160, padL + i * slot + slot / 2 + 8);
        tip.style.left = `${left}px`;
        tip.style.top = `8px`;
      });
      hit.addEventListener('mouseleave', () => {
        tip.hidden = true;
      });
      svg.appendChild(hit);
      if ((n - 1 - i) % every === 0) {
        svg.appendChild(s('text', { x: padL + i * slot + slot / 2, y: height - 6, class: 'axis', 'text-anchor': 'middle', text: r.short || r.label }));
      }
    });
    area.appendChild(svg);
  }

  return drawnOnResize(box, area, draw);
}

/** Horizontal bars: [{label, value, note}] */
export function hbarChart({ rows, format, testid = null, cls = 'c1' }) {
  const max = Math.max(0, ...rows.map((r) => r.value)) || 1;
  return h(
    'div',
    { class: 'hbars', 'data-testid': testid },
    rows.map((r) =>
      h(
        'div',
        { class: 'hbar-row' },
        h('div', { class: 'hbar-label', title: r.label }, r.label),
        h('div', { class: 'hbar-track' }, h('div', { class: `hbar-fill ${cls}`, style: { width: `${Math.max(0.5, (r.value / max) * 100)}%` } })),
        h('div', { class: 'hbar-value mono' }, format(r.value)),
        r.note ? h('div', { class: 'hbar-note muted' }, r.note) : null,
      ),
    ),
  );
}

/**
 * Lines over shared x labels. `labels`: [{label, short}]; `series`: [{name, cls, values: [v|null]}]
 * (a null leaves a gap); `format(v)` for the axis and the tooltips. Redraws when resized.
 */
export function lineChart({ labels, series, format, height = 220, testid = null }) {
  const box = h('div', { class: 'chart', 'data-testid': testid });
  const area = h('div', { class: 'chart-area' });
  const tip = h('div', { class: 'chart-tip' });
  tip.hidden = true;
  const legend = h('div', { class: 'chart-legend' }, series.map((x) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${x.cls}` }), x.name)));
  box.append(area, tip, legend);

  function draw() {
    const width = Math.max(240, area.clientWidth || 600);
    clear(area);
    const all = series.flatMap((x) => x.values.filter((v) => v != null));
    const { svg, max, padL, padT, plotW, plotH } = frame(width, height, all, format, false);
    const n = Math.max(1, labels.length);
    const slot = plotW / n;
    const xOf = (i) => padL + i * slot + slot / 2;
    const yOf = (v) => padT + plotH - (v / max) * plotH;
    for (const x of series) {
      let d = '';
      x.values.forEach((v, i) => {
        if (v == null) return;
        d += `${d && x.values[i - 1] != null ? 'L' : 'M'}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`;
        // a lone point (gaps on both sides) would draw nothing: mark it
        if (x.values[i - 1] == null && x.values[i + 1] == null) svg.appendChild(s('circle', { cx: xOf(i), cy: yOf(v), r: 2.5, class: `dot ${x.cls}` }));
      });
      if (d) svg.appendChild(s('path', { d, class: `line ${x.cls}` }));
    }
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 64))));
    labels.forEach((l, i) => {
      const hit = s('rect', { x: padL + i * slot, y: padT, width: slot, height: plotH, class: 'hit' });
      hit.addEventListener('mouseenter', () => {
        tip.textContent = '';
        tip.appendChild(h('div', { class: 'tip-title' }, l.label));
        for (const x of series) if (x.values[i] != null) tip.appendChild(h('div', null, h('span', { class: `swatch ${x.cls}` }), `${x.name}: ${format(x.values[i])}`));
        tip.hidden = false;
        tip.style.left = `${Math.min(width - 160, xOf(i) + 8)}px`;
        tip.style.top = '8px';
      });
      hit.addEventListener('mouseleave', () => {
        tip.hidden = true;
      });
      svg.appendChild(hit);
      if ((n - 1 - i) % every === 0) svg.appendChild(s('text', { x: xOf(i), y: height - 6, class: 'axis', 'text-anchor': 'middle', text: l.short || l.label }));
    });
    area.appendChild(svg);
  }

  return drawnOnResize(box, area, draw);
}
