// Network overview: a map of sites (circle markers, no imagery) and a keyboard-friendly table.
import { ago, localStamp } from '../time.js';
import { card, h, message, number, percent, section, table } from '../dom.js';
import { go } from '../nav.js';
import { toQuery } from '../state.js';

const TILE_SETTING = 'tally.map.tileUrl';
const STATUS_COLOUR = { online: '#1a7f37', offline: '#c62828', never: '#6e7781' };

/** online when a camera is online; offline when one has been seen; else never. */
function siteStatus(site) {
  const states = site.cameras.map((camera) => camera.status);
  return ['online', 'offline'].find((s) => states.includes(s)) || 'never';
}

function siteLink(state, site) {
  return h('a', { href: toQuery({ ...state, page: 'site', site: site.id }), dataset: { route: '' } }, site.name);
}

function drawMap(el, sites, state) {
  const L = window.L;
  const map = L.map(el, { zoomSnap: 0.5 });
  const tileUrl = window.localStorage.getItem(TILE_SETTING);
  if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19 }).addTo(map);
  const markers = sites.map((site) => {
    const status = siteStatus(site);
    const total = site.totals_24h.count;
    return L.circleMarker([site.lat, site.lon], {
      radius: 10, weight: 2, color: '#fff', fillColor: STATUS_COLOUR[status], fillOpacity: 0.9,
    }).bindTooltip(`${site.name}: ${total == null ? 'no data' : number.format(total)} (24 h), ${status}`,
      { permanent: true, direction: 'top', offset: [0, -10] })
      .on('click', () => go(toQuery({ ...state, page: 'site', site: site.id })))
      .addTo(map);
  });
  const bounds = L.featureGroup(markers).getBounds();
  if (sites.length === 1) map.setView(bounds.getCenter(), 14);
  else map.fitBounds(bounds, { padding: [40, 40], maxZoom: 15 });
  return () => map.remove();
}

function tileSettings() {
  const input = h('input', { type: 'url', name: 'tile-url', value: window.localStorage.getItem(TILE_SETTING) || '',
    placeholder: 'https://tiles.example.org/{z}/{x}/{y}.png' });
  const save = (event) => {
    event.preventDefault();
    const url = input.value.trim();
    if (url) window.localStorage.setItem(TILE_SETTING, url);
    else window.localStorage.removeItem(TILE_SETTING);
    go(window.location.search);
  };
  return h('details', { class: 'settings' }, h('summary', {}, 'Map settings'),
    h('form', { onsubmit: save },
      h('label', {}, 'Tile URL template (empty: plain background, works offline) ', input),
      h('button', { type: 'submit' }, 'Save')));
}

export default async function overview(page, state, sites) {
  if (!sites.length) {
    page.append(section('Sites', message('empty', 'No sites are registered yet.')));
    return;
  }
  const counts = { online: 0, offline: 0, never: 0 };
  for (const site of sites) counts[siteStatus(site)] += 1;
  const mapEl = h('div', { class: 'map', role: 'region', 'aria-label': 'Map of counting sites; the table below lists the same sites' });
  page.append(
    h('div', { class: 'cards' },
      card('Sites', String(sites.length)),
      card('Online', String(counts.online)),
      card('Offline', String(counts.offline)),
      card('Never reported', String(counts.never))),
    section('Map', mapEl, h('p', { class: 'legend' },
      Object.entries(STATUS_COLOUR).map(([status, colour]) =>
        h('span', {}, h('span', { class: 'dot', style: `background:${colour}`, 'aria-hidden': 'true' }), status))),
    tileSettings()),
    section('Sites', table('Latest totals per site (last 24 hours)',
      ['Site', 'Road', 'Status', 'Vehicles (24 h)', 'Coverage (24 h)', 'Last report (site time)'],
      sites.map((site) => [
        siteLink(state, site),
        site.road || '–',
        h('span', { class: `status status-${siteStatus(site)}` }, siteStatus(site)),
        site.totals_24h.count == null ? 'no data' : number.format(site.totals_24h.count),
        percent(site.totals_24h.coverage),
        site.last_report_at
          ? `${localStamp(site.last_report_at, site.timezone)} (${ago(site.last_report_at)})` : 'never',
      ]))),
  );
  return drawMap(mapEl, sites, state);
}
