// DOM helpers. Every string reaches the page through textContent or a plain attribute value,
// never through HTML parsing, so stored data is always shown as text.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A link target that cannot run script: in-page hashes and http(s) URLs only. */
export function safeHref(value) {
  const text = String(value ?? '');
  if (text.startsWith('#')) return text;
  try {
    const url = new URL(text, location.href);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.href;
  } catch {
    /* not a URL */
  }
  return '#';
}

function setProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'href' || key === 'src') el.setAttribute(key, safeHref(value));
    else if (key === 'value' && 'value' in el) el.value = value;
    else if (key === 'checked' || key === 'disabled' || key === 'selected') el[key] = !!value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

/** Appends strings (as text), nodes and nested arrays; skips null, undefined and false. */
export function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

/** `h('div', {class: 'x', onclick: f}, 'text', child)` */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) setProps(el, props);
  return append(el, children);
}

/** An SVG element: attributes are set as they are (numbers and text only). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value == null || value === false) continue;
      if (key === 'text') el.textContent = String(value);
      else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else el.setAttribute(key, String(value));
    }
  }
  return append(el, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Small line icons (24×24, stroke), drawn from fixed path data. */
const ICONS = {
  search: 'M11 4a7 7 0 1 0 0 14a7 7 0 1 0 0-14zM20 20l-3.5-3.5',
  chevron: 'M9 6l6 6-6 6',
  back: 'M15 6l-6 6 6 6',
  zoomIn: 'M11 4a7 7 0 1 0 0 14a7 7 0 1 0 0-14zM20 20l-3.5-3.5M8 11h6M11 8v6',
  zoomOut: 'M11 4a7 7 0 1 0 0 14a7 7 0 1 0 0-14zM20 20l-3.5-3.5M8 11h6',
  fit: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5',
  alert: 'M12 3l9.5 17h-19zM12 10v4M12 17.5v.5',
  copy: 'M9 9h10v10H9zM5 15V5h10',
  close: 'M6 6l12 12M18 6L6 18',
  refresh: 'M20 12a8 8 0 1 1-2.3-5.6M20 4v5h-5',
  expand: 'M7 10l5 5 5-5',
  collapse: 'M7 14l5-5 5 5',
  chat: 'M4 5h16v11H9l-5 4z',
  timeline: 'M4 6h8M8 12h10M6 18h6',
  key: 'M6 11h12v9H6zM8.5 11V8a3.5 3.5 0 0 1 7 0v3M12 15v2',
  link: 'M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1',
};

export function icon(name, size = 16) {
  return s(
    'svg',
    {
      class: 'icon',
      width: size,
      height: size,
      viewBox: '0 0 24 24',
      fill: 'none',
      stroke: 'currentColor',
      'stroke-width': 2,
      'stroke-linecap': 'round',
      'stroke-linejoin': 'round',
      'aria-hidden': 'true',
    },
    s('path', { d: ICONS[name] || '' }),
  );
}

let toastTimer = 0;
/** A short message at the bottom of the screen. */
export function toast(message) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 2200);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Copied to clipboard');
  } catch {
    toast('Copy failed: the browser refused clipboard access');
  }
}

/** Calls `fn` at most once per `ms`, with the last arguments. */
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const JSON_LIMIT = 200000;

/** Pretty-printed, highlighted JSON (built from text nodes only). */
export function jsonView(value, { testid } = {}) {
  const pre = h('pre', { class: 'json', 'data-testid': testid || null });
  const pieces = [];
  const push = (t, cls) => pieces.push([t, cls]);
  const walk = (v, indent) => {
    if (v === null) return push('null', 'j-null');
    if (typeof v === 'string') return push(JSON.stringify(v), 'j-str');
    if (typeof v === 'number') return push(String(v), 'j-num');
    if (typeof v === 'boolean') return push(String(v), 'j-bool');
    const pad = '  '.repeat(indent + 1);
    if (Array.isArray(v)) {
      if (!v.length) return push('[]', 'j-punct');
      push('[\n', 'j-punct');
      v.forEach((x, k) => {
        push(pad, '');
        walk(x, indent + 1);
        push(k < v.length - 1 ? ',\n' : '\n', 'j-punct');
      });
      return push('  '.repeat(indent) + ']', 'j-punct');
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v);
      if (!keys.length) return push('{}', 'j-punct');
      push('{\n', 'j-punct');
      keys.forEach((key, k) => {
        push(pad, '');
        push(JSON.stringify(key), 'j-key');
        push(': ', 'j-punct');
        walk(v[key], indent + 1);
        push(k < keys.length - 1 ? ',\n' : '\n', 'j-punct');
      });
      return push('  '.repeat(indent) + '}', 'j-punct');
    }
    return push(String(v), '');
  };
  walk(value, 0);
  let total = 0;
  let cut = false;
  for (const [t, cls] of pieces) {
    if (total > JSON_LIMIT) {
      cut = true;
      break;
    }
    total += t.length;
    if (cls) pre.appendChild(h('span', { class: cls }, t));
    else pre.appendChild(document.createTextNode(t));
  }
  if (cut) {
    const rest = h('button', { type: 'button', class: 'link-btn' }, 'Show everything');
    rest.addEventListener('click', () => {
      pre.textContent = JSON.stringify(value, null, 2);
    });
    return h('div', null, pre, rest);
  }
  return pre;
}
