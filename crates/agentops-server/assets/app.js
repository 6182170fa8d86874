// The AgentOps dashboard: a hash router over four views (sessions, one session, stats, metrics) and the
// sign-in form shown whenever the API answers 401.

import { signIn, signOut, hasCredentials } from './api.js';
import { h, clear, icon } from './dom.js';
import { sessionsView } from './sessions.js';
import { sessionView } from './session.js';
import { statsView } from './stats.js';
import { metricsView } from './metrics.js';

const main = document.getElementById('main');
const signoutButton = document.getElementById('signout');
let current = null;
let loginOpen = false;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { parts, params: new URLSearchParams(search) };
}

function highlightNav(section) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === section);
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function route() {
  if (current && current.destroy) current.destroy();
  current = null;
  clear(main);
  signoutButton.hidden = !hasCredentials();
  const { parts, params } = parseHash();
  const section = parts[0] || '';
  if (section === 'sessions' && parts[1]) {
    highlightNav('sessions');
    document.body.dataset.view = 'session';
    current = sessionView(main, parts[1], params);
  } else if (section === 'stats') {
    highlightNav('stats');
    document.body.dataset.view = 'stats';
    current = statsView(main, params);
  } else if (section === 'metrics') {
    highlightNav('metrics');
    document.body.dataset.view = 'metrics';
    current = metricsView(main, params);
  } else if (section === 'sessions') {
    highlightNav('sessions');
    document.body.dataset.view = 'sessions';
    current = sessionsView(main, params);
  } else {
    location.replace('#/sessions');
  }
}

function showLogin(reason) {
  if (loginOpen) return;
  loginOpen = true;
  const input = h('input', {
    id: 'api-key',
    class: 'input',
    type: 'password',
    name: 'api_key',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx',
    required: true,
    'data-testid': 'login-key',
  });
  const error = h('p', { class: 'login-error', role: 'alert', 'data-testid': 'login-error' });
  error.hidden = true;
  const submit = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'login-submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'login-card', 'data-testid': 'login' },
    h('div', { class: 'login-icon' }, icon('key', 22)),
    h('h2', null, 'Sign in to AgentOps'),
    h(
      'p',
      { class: 'muted' },
      reason || 'This server requires an API key to read sessions.',
    ),
    h('label', { for: 'api-key', class: 'label' }, 'API key'),
    input,
    h(
      'p',
      { class: 'hint' },
      'The key printed as AGENTOPS_API_KEY when the server first started, or the one given with --api-key. It is exchanged for a short-lived read-only token, kept for this tab only.',
    ),
    error,
    submit,
  );
  const overlay = h('div', { class: 'overlay', role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Sign in' }, form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    error.hidden = true;
    try {
      await signIn(input.value);
      overlay.remove();
      loginOpen = false;
      route();
    } catch (e) {
      error.textContent = e.message || 'Sign-in failed.';
      error.hidden = false;
      input.select();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  document.body.appendChild(overlay);
  input.focus();
}

window.addEventListener('agentops:unauthorized', () => {
  const had = hasCredentials();
  signOut();
  if (current && current.pause) current.pause();
  showLogin(had ? 'Your session expired or the key was revoked. Sign in again.' : null);
});

signoutButton.addEventListener('click', () => {
  signOut();
  signoutButton.hidden = true;
  route();
});

window.addEventListener('hashchange', route);
route();
