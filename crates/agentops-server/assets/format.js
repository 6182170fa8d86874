// Formatting of times, durations, costs and token counts.

const TS = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$/i;

/** Milliseconds since the epoch (with the microseconds as a fraction), or NaN. */
export function parseTime(text) {
  if (typeof text !== 'string' || !text) return NaN;
  const m = TS.exec(text.trim());
  if (!m) return Date.parse(text);
  const base = Date.parse(m[1] + (m[3] || 'Z'));
  const frac = m[2] ? Number('0' + m[2]) * 1000 : 0;
  return base + frac;
}

const int = new Intl.NumberFormat('en-US');

export function formatInt(n) {
  return n == null || Number.isNaN(n) ? '—' : int.format(n);
}

/** 950, 12.3k, 4.56M */
export function formatTokens(n) {
  if (n == null || Number.isNaN(n)) return '—';
  const a = Math.abs(n);
  if (a < 1000) return String(n);
  if (a < 1e6) return (n / 1e3).toFixed(a < 1e4 ? 2 : 1).replace(/\.?0+$/, '') + 'k';
  if (a < 1e9) return (n / 1e6).toFixed(a < 1e7 ? 2 : 1).replace(/\.?0+$/, '') + 'M';
  return (n / 1e9).toFixed(2).replace(/\.?0+$/, '') + 'B';
}

/** $0, $0.0012, $0.0523, $1.24, $1,204.50 */
export function formatCost(c) {
  if (c == null || Number.isNaN(Number(c))) return '—';
  const v = Number(c);
  if (v === 0) return '$0';
  const a = Math.abs(v);
  if (a < 0.000001) return v < 0 ? '-<$0.000001' : '<$0.000001';
  if (a < 0.01) return '$' + Number(v.toPrecision(2)).toFixed(Math.min(6, 1 - Math.floor(Math.log10(a)))).replace(/0+$/, '');
  if (a < 1) return '$' + v.toFixed(4).replace(/(\.\d{2}\d*?)0+$/, '$1');
  return '$' + v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** 420 µs, 8.4 ms, 120 ms, 1.24 s, 2m 03s, 1h 05m */
export function formatDuration(ms) {
  if (ms == null || Number.isNaN(ms)) return '—';
  const a = Math.abs(ms);
  if (a < 1) return Math.round(ms * 1000) + ' µs';
  if (a < 10) return ms.toFixed(1) + ' ms';
  if (a < 1000) return Math.round(ms) + ' ms';
  if (a < 10000) return (ms / 1000).toFixed(2) + ' s';
  if (a < 60000) return (ms / 1000).toFixed(1) + ' s';
  const totalSeconds = Math.floor(a / 1000);
  const sign = ms < 0 ? '-' : '';
  if (a < 3600000) {
    const m = Math.floor(totalSeconds / 60);
    const sec = totalSeconds % 60;
    return `${sign}${m}m ${String(sec).padStart(2, '0')}s`;
  }
  const hrs = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  return `${sign}${hrs}h ${String(m).padStart(2, '0')}m`;
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago", or the date. */
export function formatRelative(ms, now = Date.now()) {
  if (ms == null || Number.isNaN(ms)) return '—';
  const d = (now - ms) / 1000;
  if (d < 0) return 'in the future';
  if (d < 10) return 'just now';
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  if (d < 86400 * 30) return `${Math.floor(d / 86400)} d ago`;
  return formatDate(ms);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

export function formatDate(ms) {
  if (ms == null || Number.isNaN(ms)) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Local date and time, to the second (or millisecond). */
export function formatDateTime(ms, millis = false) {
  if (ms == null || Number.isNaN(ms)) return '—';
  const d = new Date(ms);
  const base = `${formatDate(ms)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return millis ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

export function formatPercent(x) {
  if (x == null || Number.isNaN(x)) return '—';
  const p = x * 100;
  if (p === 0) return '0%';
  if (p < 0.1) return '<0.1%';
  return (p < 10 ? p.toFixed(1) : Math.round(p)) + '%';
}

/** Short form of an id: its first 8 characters. */
export function shortId(id) {
  return String(id ?? '').slice(0, 8);
}

/** Display names of event kinds, and their colour class. */
const KINDS = {
  llms: ['LLM', 'llm'],
  llm: ['LLM', 'llm'],
  tools: ['Tool', 'tool'],
  tool: ['Tool', 'tool'],
  actions: ['Action', 'action'],
  action: ['Action', 'action'],
  errors: ['Error', 'error'],
  error: ['Error', 'error'],
  agent: ['Agent', 'agent'],
  agents: ['Agent', 'agent'],
  task: ['Task', 'task'],
  workflow: ['Workflow', 'task'],
  session: ['Session', 'session'],
};

export function kindLabel(kind) {
  const k = KINDS[String(kind || '').toLowerCase()];
  if (k) return k[0];
  const t = String(kind || 'event');
  return t.charAt(0).toUpperCase() + t.slice(1);
}

export function kindClass(kind) {
  const k = KINDS[String(kind || '').toLowerCase()];
  return 'k-' + (k ? k[1] : 'other');
}
