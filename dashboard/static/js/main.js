// Boot, routing and the shared controls. Every change goes through the URL (pushState).
import { listSites } from './api.js';
import { disposeCharts } from './charts.js';
import { h, message } from './dom.js';
import { go, onNavigate } from './nav.js';
import { daysBetween, addDays, today } from './time.js';
import { BUCKETS, MAX_BUCKETS, PAGES, readState, toQuery, withDefaults } from './state.js';
import overview from './pages/overview.js';
import site from './pages/site.js';
import compare from './pages/compare.js';
import health from './pages/health.js';
import open from './pages/open.js';

const RENDERERS = { overview, site, compare, health, open };
/** Which shared controls each page uses. */
const CONTROLS = {
  overview: [],
  site: ['site', 'from', 'to', 'bucket', 'presets'],
  compare: ['site', 'from', 'to', 'bucket', 'presets'],
  health: ['site', 'from', 'to', 'presets'],
  open: ['from', 'to', 'presets'],
};
const main = document.getElementById('main');
const controls = document.getElementById('controls');
let current = null;
let currentZone = 'UTC';
let renderId = 0;
let cleanup = null;

function navigate(changes) {
  go(toQuery({ ...current, ...changes }));
}

function drawNav(state) {
  document.getElementById('nav').replaceChildren(...Object.entries(PAGES).map(([page, label]) =>
    h('li', {}, h('a', {
      href: toQuery({ ...state, page }),
      'aria-current': page === state.page ? 'page' : false,
      dataset: { route: '' },
    }, label))));
}

function fillControls(state, sites) {
  const used = CONTROLS[state.page];
  for (const el of controls.querySelectorAll('[data-control]')) el.hidden = !used.includes(el.dataset.control);
  controls.hidden = used.length === 0;
  controls.site.replaceChildren(...sites.map((s) => h('option', { value: s.id }, s.name)));
  controls.site.value = state.site;
  controls.from.value = state.from;
  controls.to.value = state.to;
  controls.bucket.value = state.bucket;
  const days = daysBetween(state.from, state.to);
  for (const option of controls.bucket.options) {
    option.disabled = (days * 86400) / BUCKETS[option.value] > MAX_BUCKETS;
  }
  currentZone = state.page === 'open' ? 'UTC' : sites.find((s) => s.id === state.site)?.timezone || 'UTC';
  document.getElementById('tz-note').textContent = state.page === 'open'
    ? 'Open-data dates are UTC days.'
    : `Times in the site's timezone (${currentZone}).`;
}

async function render() {
  const id = (renderId += 1);
  disposeCharts();
  cleanup?.();
  cleanup = null;
  main.setAttribute('aria-busy', 'true');
  main.replaceChildren(message('loading', 'Loading…'));
  try {
    const sites = await listSites();
    if (id !== renderId) return;
    current = withDefaults(readState(), sites);
    window.history.replaceState(null, '', toQuery(current));
    drawNav(current);
    fillControls(current, sites);
    document.title = `${PAGES[current.page]} · Tally`;
    const page = h('div', { class: `page page-${current.page}` });
    main.replaceChildren(page);
    cleanup = (await RENDERERS[current.page](page, current, sites)) || null;
  } catch (error) {
    if (id === renderId) main.replaceChildren(message('error', `Could not load: ${error.message}`));
  }
  if (id === renderId) {
    main.setAttribute('aria-busy', 'false');
    main.dataset.page = current?.page || '';
  }
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
onNavigate(render);
window.addEventListener('popstate', render);
render();
