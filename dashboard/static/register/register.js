// The public camera register: no login. Without ?camera= a map and a table of every listed
// camera; with ?camera=ID that camera's page: who runs it and why, what it measures, the bytes
// it sent beside what a day of its video would weigh, its latest report as received, the
// report's fields in plain words, its software and its sign. Every string from the API is
// inserted as text (h() appends text nodes), never as HTML.
import { escapeHtml, h, table } from '../js/dom.js';

const API = '/api/v1/open/register';
const STATUS_COLOUR = { online: '#1a7f37', offline: '#c62828', never: '#6e7781' };
const main = document.getElementById('main');

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  return response.json();
}

/** Bytes in decimal units: 950 B, 12.3 kB, 4.5 MB, 2.1 GB. */
export function bytes(value) {
  if (value == null) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let size = value;
  let unit = 0;
  while (size >= 1000 && unit < units.length - 1) { size /= 1000; unit += 1; }
  const digits = unit === 0 || size >= 100 ? 0 : 1;
  return `${size.toFixed(digits)} ${units[unit]}`;
}

function when(stamp) {
  return stamp ? new Date(stamp).toLocaleString('en-GB', { timeZoneName: 'short' }) : 'never';
}

function approvedText(approved) {
  if (approved === true) return 'yes: an approved release';
  if (approved === false) return 'NO: not on the operator\u2019s approved list';
  return 'unknown: the worker has not reported its software';
}

function cameraLink(camera) {
  return h('a', { href: `register.html?camera=${encodeURIComponent(camera.camera_id)}` }, camera.camera_name);
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

function measures(m) {
  const lines = m.lines.map((line) => `${line.name} (${line.directions.join(', ')})`);
  return [
    `Vehicles crossing ${lines.length ? `the lines ${lines.join('; ')}` : 'no line'}`,
    m.zones.length ? `; congestion in the zones ${m.zones.join(', ')}` : '',
    `; classes: ${m.vehicle_classes.join(', ')}.`,
  ].join('');
}

function drawMap(el, cameras, tiles) {
  const L = window.L;
  const map = L.map(el, { zoomSnap: 0.5 });
  if (tiles && tiles.tile_url) {
    L.tileLayer(tiles.tile_url, { maxZoom: 19, attribution: escapeHtml(tiles.attribution) }).addTo(map);
  }
  const markers = cameras.map((camera) => L.circleMarker([camera.lat, camera.lon], {
    radius: 9, weight: 2, color: '#fff', fillColor: STATUS_COLOUR[camera.status], fillOpacity: 0.9,
  }).bindTooltip(h('span', {}, h('strong', {}, camera.camera_name), `, ${camera.site_name}`))
    .on('click', () => { window.location.search = `?camera=${encodeURIComponent(camera.camera_id)}`; })
    .addTo(map));
  const bounds = L.featureGroup(markers).getBounds();
  if (cameras.length === 1) map.setView(bounds.getCenter(), 15);
  else map.fitBounds(bounds, { padding: [40, 40], maxZoom: 15 });
}

async function tiles() {
  try { return (await getJson('/api/v1/meta')).map; } catch { return null; }
}

async function showRegister() {
  const [listing, map] = await Promise.all([getJson(`${API}.json`), tiles()]);
  const cameras = listing.cameras;
  document.title = 'Public camera register';
  main.append(
    h('div', { class: 'page-head' },
      h('h1', {}, 'Traffic cameras in this register'),
      h('p', {}, 'Every camera listed here only counts traffic: it keeps and sends no images. ',
        'Open a camera to see exactly what it sends. Machine-readable: ',
        h('a', { href: `${API}.json` }, 'JSON'), ', ', h('a', { href: `${API}.geojson` }, 'GeoJSON'), '.')),
  );
  if (!cameras.length) {
    main.append(h('p', { class: 'message' }, 'No camera is listed yet.'));
    return;
  }
  const mapEl = h('div', { class: 'map', id: 'register-map', role: 'region', 'aria-label': 'Map of the listed cameras; the table below lists the same cameras' });
  main.append(
    h('section', { class: 'panel' }, h('h2', {}, 'Map'), mapEl),
    h('section', { class: 'panel' }, h('h2', {}, 'Cameras'),
      table('Listed cameras', ['Camera', 'Site', 'Operator', 'Purpose', 'Status', 'Last report', 'Sent in 24 h', 'Approved software'],
        cameras.map((camera) => [
          cameraLink(camera), `${camera.site_name}${camera.road ? `, ${camera.road}` : ''}`, camera.operator,
          camera.purpose, camera.status, when(camera.last_report_at), bytes(camera.bytes_sent_24h),
          camera.software_approved == null ? 'unknown' : (camera.software_approved ? 'yes' : 'no'),
        ]))),
  );
  drawMap(mapEl, cameras, map);
}

function sentPanel(page) {
  const b = page.bytes;
  const video = page.video;
  const approx = b.rounded ? 'about ' : '';
  const comparison = video
    ? `a day of this video is about ${bytes(video.day_bytes)}`
    : 'the camera has not reported its video size yet';
  const ratio = video && b.last_24h ? Math.round(video.day_bytes / b.last_24h) : null;
  return h('section', { class: 'panel', id: 'sent' }, h('h2', {}, 'What it sent'),
    h('p', { class: 'headline', id: 'sent-headline' }, `${approx}${bytes(b.last_24h)} sent in the last 24 hours; ${comparison}.`),
    ratio ? h('p', {}, `That is about 1/${ratio.toLocaleString('en-GB')} of the video, and none of it is image data.`) : null,
    facts([
      ['Report batches', `${approx}${bytes(b.reports_24h)} in ${b.report_requests_24h} requests (${b.reports_stored_24h} reports stored)`],
      ['Per report', `${approx}${bytes(b.per_report)} on average; the latest ${approx}${bytes(b.latest_report)}`],
      ['Heartbeats', `${approx}${bytes(b.heartbeats_24h)} in ${b.heartbeat_requests_24h} requests`],
      ['Video for comparison', video ? `${video.width}×${video.height} at ${video.fps} fps; ${video.basis}` : '–'],
    ]),
    h('p', { class: 'note' }, 'The server counts these bytes as it receives them; the camera does not report them. ',
      b.rounded ? 'They are rounded to 100 bytes because this camera\u2019s numbers are not public.' : ''));
}

function reportPanel(page) {
  const latest = page.latest_report;
  const body = latest
    ? [h('p', {}, `Received ${when(latest.received_at)}`,
      latest.masked ? `. Every number is shown as \u2026 because ${latest.masked_because}.` : ', exactly as it arrived.'),
    h('pre', { class: 'report', id: 'latest-report', tabindex: '0' }, JSON.stringify(latest.body, null, 2))]
    : [h('p', { id: 'latest-report' }, 'No report received yet.')];
  return h('section', { class: 'panel' }, h('h2', {}, 'Its latest report'), ...body);
}

function schemaPanel(page) {
  return h('section', { class: 'panel' }, h('h2', {}, 'Everything a report can contain'),
    h('p', {}, 'The server refuses any report with a field not in this list. ',
      h('a', { href: page.wire_schema_url }, 'JSON Schema'), '.'),
    h('details', {}, h('summary', {}, `${page.wire_schema.length} fields`),
      table('Report fields in plain words', ['Field', 'Kind of value', 'Meaning'],
        page.wire_schema.map((f) => [h('code', {}, f.field), f.kind, f.meaning]))));
}

function softwarePanel(page) {
  const s = page.software;
  return h('section', { class: 'panel', id: 'software' }, h('h2', {}, 'Its software'),
    facts([
      ['Version', s.version || 'not reported'],
      ['SHA-256 of its code', h('code', {}, s.code_sha256 || 'not reported')],
      ['SHA-256 of its model', h('code', {}, s.model_sha256 || 'not reported')],
      ['Approved by the operator', h('span', { class: s.approved === false ? 'flag' : '' }, approvedText(s.approved))],
      ['Reported', when(s.reported_at)],
    ]));
}

async function showCamera(cameraId) {
  const page = await getJson(`${API}/cameras/${encodeURIComponent(cameraId)}`);
  document.title = `${page.camera_name} \u2013 public camera register`;
  main.append(
    h('p', {}, h('a', { href: 'register.html' }, '\u2190 All cameras')),
    h('div', { class: 'page-head' },
      h('h1', {}, page.camera_name),
      h('p', {}, `${page.site_name}${page.road ? `, ${page.road}` : ''}: this camera only counts traffic.`)),
    h('section', { class: 'panel' }, h('h2', {}, 'About this camera'),
      facts([
        ['Operator', page.operator],
        ['Questions or objections', page.contact],
        ['Purpose', page.purpose],
        ['What it measures', measures(page.measures)],
        ['Legal basis', page.legal_basis],
        ['Retention', page.retention],
        ['Counts published', page.counts_published ? 'yes, as open data' : 'no'],
        ['In service since', when(page.in_service_since)],
        ['Status', page.status],
        ['Last report', h('span', { id: 'last-report' }, when(page.last_report_at))],
        ['Validation', page.validation ? JSON.stringify(page.validation) : 'no validation recorded yet'],
      ])),
    sentPanel(page),
    reportPanel(page),
    schemaPanel(page),
    softwarePanel(page),
    h('section', { class: 'panel' }, h('h2', {}, 'The sign on its pole'),
      h('p', {}, h('a', { href: page.sign_url, id: 'sign-link' }, 'Printable sign (SVG, A5)')),
      h('img', { class: 'sign', id: 'sign', src: page.sign_url, alt: `The sign for camera ${page.camera_id}, with a QR code to this page`, width: '296', height: '420' })),
  );
}

async function start() {
  const cameraId = new URLSearchParams(window.location.search).get('camera');
  try {
    if (cameraId) await showCamera(cameraId);
    else await showRegister();
  } catch (error) {
    main.append(h('p', { class: 'message error', role: 'alert' }, `Could not load the register: ${error.message}`));
  } finally {
    main.setAttribute('aria-busy', 'false');
  }
}

start();
