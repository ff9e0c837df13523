// Boot, sign-in, routing and the shared controls. Every change goes through the URL (pushState).
import { call, getJSON, listSites, onSignedOut, useSession } from './api.js';
import { disposeCharts } from './charts.js';
import { h, message } from './dom.js';
import { go, onNavigate } from './nav.js';
import { addDays, durationWords, today } from './time.js';
import { PAGES, mayOpen, readState, toQuery, tooManyBuckets, withDefaults } from './state.js';
import { RETURN_KEY, loginView } from './pages/login.js';
import overview from './pages/overview.js';
import site from './pages/site.js';
import intersection from './pages/intersection.js';
import compare from './pages/compare.js';
import health from './pages/health.js';
import open from './pages/open.js';
import sites from './pages/sites.js';
import tokens from './pages/tokens.js';
import users from './pages/users.js';
import audit from './pages/audit.js';
import setup from './pages/setup.js';
import tally from './pages/tally.js';

const RENDERERS = { overview, site, intersection, compare, health, open, sites, tokens, users, audit, setup, tally };
/** Which shared controls each page uses. */
const CONTROLS = {
  overview: [],
  site: ['site', 'from', 'to', 'bucket', 'presets'],
  intersection: ['site', 'from', 'to', 'presets'],
  compare: ['site', 'from', 'to', 'bucket', 'presets'],
  health: ['site', 'from', 'to', 'presets'],
  open: ['from', 'to', 'presets'],
  sites: [],
  tokens: [],
  users: [],
  audit: [],
  setup: ['site'],
  tally: ['site'],
};
const main = document.getElementById('main');
const controls = document.getElementById('controls');
const nav = document.getElementById('nav');
const account = document.getElementById('account');
/** What every page may use: the server's constants and the signed-in user. */
const app = { meta: null, me: null };
let current = null;
let currentZone = 'UTC';
let renderId = 0;
let cleanup = null;
let signingIn = false;
let firstProblem = '';

function navigate(changes) {
  go(toQuery({ ...current, ...changes }));
}

function drawNav(state) {
  nav.replaceChildren(...Object.entries(PAGES).filter(([page]) => mayOpen(app.me.role, page))
    .map(([page, { label }]) => h('li', {}, h('a', {
      href: toQuery({ ...state, page }),
      'aria-current': page === state.page ? 'page' : false,
      dataset: { route: '' },
    }, label))));
}

function drawAccount() {
  account.hidden = !app.me;
  document.getElementById('who').textContent = app.me ? `${app.me.display_name} · ${app.me.role}` : '';
}

function fillControls(state, siteList) {
  const used = CONTROLS[state.page];
  for (const el of controls.querySelectorAll('[data-control]')) el.hidden = !used.includes(el.dataset.control);
  controls.hidden = used.length === 0;
  controls.site.replaceChildren(...siteList.map((s) => h('option', { value: s.id }, s.name)));
  controls.site.value = state.site;
  controls.from.value = state.from;
  controls.to.value = state.to;
  controls.bucket.value = state.bucket;
  for (const option of controls.bucket.options) {
    option.disabled = tooManyBuckets(state.from, state.to, app.meta.buckets[option.value], app.meta);
  }
  currentZone = state.page === 'open' ? 'UTC' : siteList.find((s) => s.id === state.site)?.timezone || 'UTC';
  document.getElementById('tz-note').textContent = state.page === 'open'
    ? 'Open-data dates are UTC days.'
    : `Times in the site's timezone (${currentZone}).`;
}

/** The bucket sizes the server offers, finest first. */
function fillBuckets() {
  const sizes = Object.entries(app.meta.buckets).sort((a, b) => a[1] - b[1]);
  controls.bucket.replaceChildren(...sizes.map(([name, seconds]) => {
    const words = durationWords(seconds);
    return h('option', { value: name }, words[0].toUpperCase() + words.slice(1));
  }));
}

function settled(id, page) {
  if (id !== renderId) return;
  main.setAttribute('aria-busy', 'false');
  main.dataset.page = page;
}

/** Replace the view with the sign-in panel; the URL keeps the view to return to. */
async function showLogin(problem) {
  if (signingIn) return;
  signingIn = true;
  const id = (renderId += 1);
  disposeCharts();
  cleanup?.();
  cleanup = null;
  app.me = null;
  useSession(null);
  drawAccount();
  nav.replaceChildren();
  controls.hidden = true;
  document.title = 'Sign in · Tally';
  main.setAttribute('aria-busy', 'true');
  try {
    const config = await getJSON('/api/v1/auth/config');
    if (id !== renderId) return;
    main.replaceChildren(loginView({ config, problem, catalog: app.meta.open_data.catalog, onSignedIn }));
    main.querySelector('input')?.focus();
  } catch (error) {
    if (id === renderId) main.replaceChildren(message('error', `Could not load the sign-in page: ${error.message}`));
  }
  settled(id, 'login');
}

function onSignedIn(me) {
  signingIn = false;
  app.me = me;
  useSession(me);
  render();
}

async function render() {
  if (signingIn) return;
  const id = (renderId += 1);
  disposeCharts();
  cleanup?.();
  cleanup = null;
  main.setAttribute('aria-busy', 'true');
  main.replaceChildren(message('loading', 'Loading…'));
  try {
    app.me ??= await getJSON('/api/v1/auth/me');
    useSession(app.me);
    drawAccount();
    const siteList = await listSites();
    if (id !== renderId) return;
    current = withDefaults(readState(), siteList, app.me.role, app.meta);
    window.history.replaceState(null, '', toQuery(current));
    drawNav(current);
    fillControls(current, siteList);
    document.title = `${PAGES[current.page].label} · Tally`;
    const page = h('div', { class: `page page-${current.page}` });
    main.replaceChildren(page);
    cleanup = (await RENDERERS[current.page](page, current, siteList, app)) || null;
  } catch (error) {
    // A 401 has already put up the sign-in panel (see onSignedOut below).
    if (id === renderId && error.status !== 401) main.replaceChildren(message('error', `Could not load: ${error.message}`));
  }
  settled(id, current?.page || '');
}

async function logOut() {
  try {
    await call('POST', '/api/v1/auth/logout');
  } catch (error) {
    if (error.status !== 401) {
      main.prepend(message('error', `Could not sign out: ${error.message}`));
      return;
    }
  }
  showLogin('You have signed out.');
}

/** A single sign-on round trip lands on `/`: go back to the view it started from. */
function returnFromSignOn() {
  const query = new URLSearchParams(window.location.search);
  firstProblem = query.get('login_error') || '';
  const back = window.sessionStorage.getItem(RETURN_KEY);
  window.sessionStorage.removeItem(RETURN_KEY);
  if (back != null && !query.has('page')) window.history.replaceState(null, '', back || '/');
}

controls.addEventListener('change', (event) => {
  const { name, value } = event.target;
  if (!name || !value) return;
  const changes = { [name]: value };
  if (name === 'from' && value > current.to) changes.to = value;
  if (name === 'to' && value < current.from) changes.from = value;
  navigate(changes);
});
controls.addEventListener('submit', (event) => event.preventDefault());
controls.addEventListener('click', (event) => {
  const days = Number(event.target.dataset?.days);
  if (!days) return;
  const to = today(currentZone);
  navigate({ from: addDays(to, 1 - days), to });
});
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-route]');
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  go(link.getAttribute('href'));
  main.focus();
});
document.getElementById('logout').addEventListener('click', logOut);
onSignedOut(() => {
  const problem = app.me ? 'Your session has ended; please sign in again.' : firstProblem;
  firstProblem = '';
  showLogin(problem);
});
onNavigate(render);
window.addEventListener('popstate', render);

async function boot() {
  returnFromSignOn();
  try {
    app.meta = await getJSON('/api/v1/meta');
  } catch (error) {
    main.replaceChildren(message('error', `Could not reach the API: ${error.message}`));
    main.setAttribute('aria-busy', 'false');
    return;
  }
  fillBuckets();
  render();
}

boot();
