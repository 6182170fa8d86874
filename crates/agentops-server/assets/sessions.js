// The sessions list: filters (kept in the URL), search, sort, paging, live status.

import { api, query, ApiError } from './api.js';
import { h, clear, icon, debounce } from './dom.js';
import {
  parseTime,
  formatCost,
  formatDuration,
  formatRelative,
  formatDateTime,
  formatTokens,
  formatInt,
  shortId,
} from './format.js';

const POLL_MS = 4000;
const PAGE = 50;

const STATES = [
  ['', 'All'],
  ['Success', 'Success'],
  ['Fail', 'Fail'],
  ['Indeterminate', 'Indeterminate'],
  ['running', 'Running'],
];

const RANGES = [
  ['', 'Any time'],
  ['1h', 'Last hour'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
];

const SORTS = [
  ['-start_time', 'Newest first'],
  ['start_time', 'Oldest first'],
  ['-cost', 'Highest cost'],
  ['-duration', 'Longest'],
  ['duration', 'Shortest'],
  ['-events', 'Most events'],
];

const FILTER_KEYS = ['q', 'end_state', 'range', 'has_errors', 'model', 'tag', 'agent', 'sort'];

const RANGE_MS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };

/** A state badge: Success, Fail, Indeterminate or a pulsing Running. */
export function stateBadge(session) {
  const state = session.state;
  return h(
    'span',
    { class: `badge s-${state.toLowerCase()}`, title: session.end_state_reason || state, 'data-state': state },
    state === 'Running' ? h('span', { class: 'pulse' }) : null,
    state,
  );
}

/** Duration of a session in ms: stored, from its times, or (running) up to now. */
export function sessionDuration(s, now = Date.now()) {
  if (typeof s.duration_ms === 'number') return s.duration_ms;
  const start = parseTime(s.start_time);
  const end = s.end_time ? parseTime(s.end_time) : now;
  return Number.isNaN(start) || Number.isNaN(end) ? null : Math.max(0, end - start);
}

function readFilters(params) {
  const f = {};
  for (const k of FILTER_KEYS) f[k] = params.get(k) || '';
  return f;
}

function apiParams(f, limit) {
  const p = {
    q: f.q.trim(),
    end_state: f.end_state,
    has_errors: f.has_errors,
    model: f.model.trim(),
    tag: f.tag.trim(),
    agent: f.agent,
    sort: f.sort && f.sort !== '-start_time' ? f.sort : '',
    limit,
  };
  if (RANGE_MS[f.range]) p.from = new Date(Date.now() - RANGE_MS[f.range]).toISOString();
  return p;
}

export function sessionsView(root, params) {
  document.title = 'Sessions · AgentOps';
  const filters = readFilters(params);
  let sessions = [];
  let nextCursor = null;
  let pollTimer = 0;
  let tickTimer = 0;
  let destroyed = false;
  let paused = false;
  let controller = null;
  let loadedOnce = false;

  // --- filter bar -------------------------------------------------------------------------
  const search = h('input', {
    class: 'input search-input',
    type: 'search',
    placeholder: 'Search sessions, tags, event names…',
    value: filters.q,
    'aria-label': 'Search sessions',
    'data-testid': 'search',
  });
  const stateButtons = STATES.map(([value, label]) =>
    h(
      'button',
      {
        type: 'button',
        class: 'seg' + (filters.end_state === value ? ' on' : ''),
        'aria-pressed': filters.end_state === value ? 'true' : 'false',
        'data-value': value,
        'data-testid': `state-${value || 'all'}`,
        onclick: () => {
          filters.end_state = value;
          for (const b of stateButtons) {
            const on = b.dataset.value === value;
            b.classList.toggle('on', on);
            b.setAttribute('aria-pressed', on ? 'true' : 'false');
          }
          changed();
        },
      },
      label,
    ),
  );
  const select = (options, key, label, testid) => {
    const el = h(
      'select',
      { class: 'input select', 'aria-label': label, 'data-testid': testid },
      options.map(([v, t]) => h('option', { value: v, selected: filters[key] === v }, t)),
    );
    el.value = filters[key] || options[0][0];
    el.addEventListener('change', () => {
      filters[key] = el.value;
      changed();
    });
    return el;
  };
  const rangeSelect = select(RANGES, 'range', 'Time range', 'range');
  const sortSelect = select(SORTS, 'sort', 'Sort', 'sort');
  const errorsSelect = select(
    [
      ['', 'Errors: any'],
      ['true', 'With errors'],
      ['false', 'Without errors'],
    ],
    'has_errors',
    'Errors',
    'has-errors',
  );
  const modelInput = h('input', {
    class: 'input small-input',
    type: 'text',
    placeholder: 'Model',
    value: filters.model,
    list: 'models-list',
    'aria-label': 'Model',
    'data-testid': 'model',
  });
  const modelList = h('datalist', { id: 'models-list' });
  const tagInput = h('input', {
    class: 'input small-input',
    type: 'text',
    placeholder: 'Tag',
    value: filters.tag,
    'aria-label': 'Tag',
    'data-testid': 'tag',
  });
  const agentSelect = h('select', { class: 'input select', 'aria-label': 'Agent', 'data-testid': 'agent' }, h('option', { value: '' }, 'Agent: any'));
  agentSelect.hidden = true;
  agentSelect.addEventListener('change', () => {
    filters.agent = agentSelect.value;
    changed();
  });
  // Typing and then leaving the page within the debounce must not pull the URL back here.
  const typed = debounce(() => {
    if (search.isConnected) changed();
  }, 250);
  search.addEventListener('input', () => {
    filters.q = search.value;
    typed();
  });
  modelInput.addEventListener('input', () => {
    filters.model = modelInput.value;
    typed();
  });
  tagInput.addEventListener('input', () => {
    filters.tag = tagInput.value;
    typed();
  });
  const clearButton = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'clear-filters', onclick: () => resetFilters() }, 'Clear filters');

  const count = h('span', { class: 'count muted', 'data-testid': 'session-count' });
  const live = h('span', { class: 'live-chip', title: 'Running sessions are refreshed every few seconds' }, h('span', { class: 'pulse' }), 'Live');
  live.hidden = true;
  const notice = h('div', { class: 'notice' });
  notice.hidden = true;

  const list = h('div', { class: 'sessions-list', role: 'table', 'aria-label': 'Sessions', 'data-testid': 'sessions' });
  const more = h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => load(true) }, 'Load more');
  const foot = h('div', { class: 'list-foot' }, more);
  foot.hidden = true;

  const page = h(
    'section',
    { class: 'page' },
    h(
      'div',
      { class: 'page-head' },
      h('div', null, h('h1', null, 'Sessions'), h('p', { class: 'muted sub' }, 'Every agent run the server received, newest first.')),
      h('div', { class: 'head-right' }, live, count),
    ),
    h(
      'div',
      { class: 'filters card' },
      h('div', { class: 'filters-row' }, h('label', { class: 'search' }, icon('search'), search), h('div', { class: 'segmented', role: 'group', 'aria-label': 'End state' }, stateButtons)),
      h('div', { class: 'filters-row' }, rangeSelect, errorsSelect, modelInput, modelList, tagInput, agentSelect, h('span', { class: 'spacer' }), sortSelect, clearButton),
    ),
    notice,
    h('div', { class: 'card table-card' }, headerRow(), list),
    foot,
  );
  root.appendChild(page);

  function headerRow() {
    return h(
      'div',
      { class: 'srow shead', role: 'row' },
      ['Session', 'Status', 'Started', 'Duration', 'Events', 'Tokens', 'Cost', 'Tags'].map((t, i) =>
        h('span', { role: 'columnheader', class: i >= 3 && i <= 6 ? 'num' : '' }, t),
      ),
    );
  }

  function syncUrl() {
    const p = new URLSearchParams();
    for (const k of FILTER_KEYS) if (filters[k]) p.set(k, filters[k]);
    const text = p.toString();
    history.replaceState(null, '', '#/sessions' + (text ? '?' + text : ''));
  }

  function resetFilters() {
    for (const k of FILTER_KEYS) filters[k] = '';
    search.value = '';
    modelInput.value = '';
    tagInput.value = '';
    rangeSelect.value = '';
    sortSelect.value = '-start_time';
    errorsSelect.value = '';
    agentSelect.value = '';
    for (const b of stateButtons) {
      b.classList.toggle('on', b.dataset.value === '');
      b.setAttribute('aria-pressed', b.dataset.value === '' ? 'true' : 'false');
    }
    changed();
  }

  function changed() {
    syncUrl();
    load(false);
  }

  function row(s) {
    const start = parseTime(s.start_time);
    const state = s.state;
    const errors = s.error_count ?? (s.has_errors ? 1 : 0);
    const tags = s.tags || [];
    const duration = h('span', { class: 'num mono', 'data-duration': '' }, formatDuration(sessionDuration(s)));
    const a = h(
      'a',
      {
        class: 'srow' + (state === 'Running' ? ' running' : ''),
        role: 'row',
        href: `#/sessions/${encodeURIComponent(s.id)}`,
        'data-testid': 'session-row',
        'data-session-id': s.id,
      },
      h(
        'span',
        { class: 'cell-name', role: 'cell' },
        h('span', { class: 'sname' }, s.name || `Session ${shortId(s.id)}`),
        h('span', { class: 'sid mono' }, s.id),
      ),
      h(
        'span',
        { role: 'cell', class: 'cell-status' },
        stateBadge(s),
        errors > 0 ? h('span', { class: 'err-chip', title: `${errors} failed event${errors === 1 ? '' : 's'}` }, icon('alert', 12), String(errors)) : null,
      ),
      h('span', { role: 'cell', title: formatDateTime(start), class: 'muted' }, formatRelative(start)),
      duration,
      h('span', { role: 'cell', class: 'num mono' }, formatInt(s.event_count)),
      h(
        'span',
        { role: 'cell', class: 'num mono', title: `${formatInt(s.input_tokens)} input · ${formatInt(s.output_tokens)} output` },
        formatTokens((s.input_tokens || 0) + (s.output_tokens || 0)),
      ),
      h('span', { role: 'cell', class: 'num mono cost' }, formatCost(s.cost)),
      h(
        'span',
        { role: 'cell', class: 'tags' },
        tags.slice(0, 3).map((t) => h('span', { class: 'tag', title: t }, t)),
        tags.length > 3 ? h('span', { class: 'tag more', title: tags.slice(3).join(', ') }, `+${tags.length - 3}`) : null,
      ),
    );
    a._session = s;
    a._duration = duration;
    return a;
  }

  function render() {
    clear(list);
    if (sessions.length === 0) {
      const filtered = FILTER_KEYS.some((k) => k !== 'sort' && filters[k]);
      list.appendChild(
        filtered
          ? h(
              'div',
              { class: 'empty', 'data-testid': 'empty' },
              h('h3', null, 'No sessions match these filters'),
              h('p', { class: 'muted' }, 'Try a wider time range or fewer filters.'),
              h('button', { type: 'button', class: 'btn btn-secondary', onclick: resetFilters }, 'Clear filters'),
            )
          : h(
              'div',
              { class: 'empty', 'data-testid': 'empty' },
              h('h3', null, 'No sessions yet'),
              h('p', { class: 'muted' }, 'Point an AgentOps SDK at this server and run an agent:'),
              h('pre', { class: 'code' }, `AGENTOPS_API_ENDPOINT=${location.origin}\nAGENTOPS_API_KEY=<your key>`),
            ),
      );
    } else {
      for (const s of sessions) list.appendChild(row(s));
    }
    count.textContent = sessions.length ? `${formatInt(sessions.length)}${nextCursor ? '+' : ''} session${sessions.length === 1 ? '' : 's'}` : '';
    foot.hidden = !nextCursor;
    const running = sessions.some((s) => s.state === 'Running');
    live.hidden = !running;
    schedulePoll(running);
  }

  function tick() {
    const now = Date.now();
    for (const a of list.children) {
      if (a._session && a._session.state === 'Running') a._duration.textContent = formatDuration(sessionDuration(a._session, now));
    }
  }

  function schedulePoll(running) {
    clearTimeout(pollTimer);
    clearInterval(tickTimer);
    if (!running || destroyed || paused) return;
    tickTimer = setInterval(tick, 1000);
    pollTimer = setTimeout(() => {
      if (document.hidden) return schedulePoll(true);
      load(false, true);
    }, POLL_MS);
  }

  async function fetchPage(append) {
    const limit = append ? PAGE : Math.max(PAGE, Math.min(sessions.length, 1000));
    const p = apiParams(filters, limit);
    if (append && nextCursor) p.cursor = nextCursor;
    return api('/api/v1/sessions' + query(p), { signal: controller.signal });
  }

  async function load(append, quiet = false) {
    if (destroyed) return;
    if (controller) controller.abort();
    controller = new AbortController();
    if (!quiet && !append) page.classList.add('loading');
    try {
      const data = await fetchPage(append);
      if (destroyed) return;
      const rows = (data && data.sessions) || [];
      sessions = append ? sessions.concat(rows) : rows;
      if (!append || !quiet) nextCursor = data.next_cursor || null;
      notice.hidden = true;
      loadedOnce = true;
      render();
    } catch (e) {
      if (e.name === 'AbortError' || destroyed) return;
      if (e.status === 401) return; // the sign-in form is shown
      if (e instanceof ApiError && e.status === 400) {
        notice.textContent = e.message;
        notice.hidden = false;
        return;
      }
      if (quiet && loadedOnce) return schedulePoll(true);
      clear(list);
      list.appendChild(
        h(
          'div',
          { class: 'empty error-state' },
          h('h3', null, 'Could not load sessions'),
          h('p', { class: 'muted' }, e.message),
          h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => load(false) }, icon('refresh'), ' Retry'),
        ),
      );
    } finally {
      page.classList.remove('loading');
    }
  }

  async function loadFacets() {
    try {
      const agents = await api('/api/v1/agents');
      if (agents && Array.isArray(agents.agents) && agents.agents.length && !destroyed) {
        for (const ag of agents.agents) {
          agentSelect.appendChild(h('option', { value: ag.id, selected: filters.agent === ag.id }, ag.name || shortId(ag.id)));
        }
        agentSelect.value = filters.agent;
        agentSelect.hidden = false;
      }
    } catch {
      /* the filters work without these suggestions */
    }
    try {
      // From the start of a UTC day: the server answers whole hours from its hourly totals
      // instead of reading a partial hour's events.
      const from = new Date(Date.now() - 30 * 86400e3).toISOString().slice(0, 10) + 'T00:00:00.000Z';
      const stats = await api('/api/v1/stats' + query({ from }));
      if (stats && Array.isArray(stats.models) && !destroyed) {
        for (const m of stats.models) if (m.model) modelList.appendChild(h('option', { value: m.model }));
      }
    } catch {
      /* the filters work without these suggestions */
    }
  }

  const onVisible = () => {
    if (!document.hidden && !paused && sessions.some((s) => s.state === 'Running')) load(false, true);
  };
  document.addEventListener('visibilitychange', onVisible);

  load(false);
  loadFacets();

  return {
    destroy() {
      destroyed = true;
      clearTimeout(pollTimer);
      clearInterval(tickTimer);
      if (controller) controller.abort();
      document.removeEventListener('visibilitychange', onVisible);
    },
    pause() {
      paused = true;
      clearTimeout(pollTimer);
      clearInterval(tickTimer);
    },
  };
}
