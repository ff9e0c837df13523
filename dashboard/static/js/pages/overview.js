// Network overview: a map of sites (circle markers on the server's base layer) and a table.
import { ago, localStamp } from '../time.js';
import { card, escapeHtml, h, message, number, percent, section, table } from '../dom.js';
import { go } from '../nav.js';
import { toQuery } from '../state.js';

const STATUS_COLOUR = { online: '#1a7f37', offline: '#c62828', never: '#6e7781' };

/** online when a camera is online; offline when one has been seen; else never. */
function siteStatus(site) {
  const states = site.cameras.map((camera) => camera.status);
  return ['online', 'offline'].find((s) => states.includes(s)) || 'never';
}

function siteLink(state, site) {
  return h('a', { href: toQuery({ ...state, page: 'site', site: site.id }), dataset: { route: '' } }, site.name);
}

/** The tooltip of a site's marker, built as text: site names are user input, never HTML. */
function markerLabel(site, status) {
  const total = site.totals_24h.count;
  return h('span', { class: 'marker-label' },
    h('strong', {}, site.name), `: ${total == null ? 'no data' : number.format(total)} (24 h), ${status}`);
}

/** A map of the sites on the server's base layer (none configured: a plain background). */
function drawMap(el, sites, state, tiles) {
  const L = window.L;
  const map = L.map(el, { zoomSnap: 0.5 });
  if (tiles.tile_url) {
    L.tileLayer(tiles.tile_url, { maxZoom: 19, attribution: escapeHtml(tiles.attribution) }).addTo(map);
  }
  const markers = sites.map((site) => {
    const status = siteStatus(site);
    return L.circleMarker([site.lat, site.lon], {
      radius: 10, weight: 2, color: '#fff', fillColor: STATUS_COLOUR[status], fillOpacity: 0.9,
    }).bindTooltip(markerLabel(site, status), { permanent: true, direction: 'top', offset: [0, -10] })
      .on('click', () => go(toQuery({ ...state, page: 'site', site: site.id })))
      .addTo(map);
  });
  const bounds = L.featureGroup(markers).getBounds();
  if (sites.length === 1) map.setView(bounds.getCenter(), 14);
  else map.fitBounds(bounds, { padding: [40, 40], maxZoom: 15 });
  return () => map.remove();
}

export default async function overview(page, state, sites, app) {
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
      Object.keys(STATUS_COLOUR).map((status) =>
        h('span', {}, h('span', { class: `dot dot-${status}`, 'aria-hidden': 'true' }), status)))),
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
  return drawMap(mapEl, sites, state, app.meta.map);
}
