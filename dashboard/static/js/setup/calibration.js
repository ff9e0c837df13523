// Calibration without an image: points picked on the scene map, their ground positions typed
// in metres or picked as latitude/longitude on the site map; the API fits the homography.
import { call } from '../api.js';
import { escapeHtml, field, h } from '../dom.js';

const MIN_POINTS = 4;
const MAX_POINTS = 16;
const SITE_ZOOM = 18;
const UNITS = {
  metres: [['east', 'East (m)'], ['north', 'North (m)']],
  latlon: [['lat', 'Latitude'], ['lon', 'Longitude']],
};

const numeric = (text) => (text.trim() === '' ? NaN : Number(text));

/** The site map on the server's base layer; a click hands its latitude/longitude to `onPick`. */
function siteMap(el, site, tiles, onPick) {
  const L = window.L;
  const map = L.map(el, { zoomSnap: 0.5 }).setView([site.lat, site.lon], SITE_ZOOM);
  if (tiles.tile_url) {
    L.tileLayer(tiles.tile_url, { maxZoom: 21, maxNativeZoom: 19, attribution: escapeHtml(tiles.attribution) }).addTo(map);
  }
  const layer = L.layerGroup().addTo(map);
  map.on('click', (event) => onPick(event.latlng));
  return {
    map,
    /** Circle markers (vectors, no marker images) at the points that have a position. */
    show(picks) {
      layer.clearLayers();
      picks.forEach((pick, i) => {
        const [lat, lon] = [numeric(pick.lat), numeric(pick.lon)];
        if (!Number.isFinite(lat) || !Number.isFinite(lon)) return;
        L.circleMarker([lat, lon], { radius: 7, weight: 2, color: '#fff', fillColor: '#bf3989', fillOpacity: 0.9 })
          .bindTooltip(h('span', {}, `Point ${i + 1}`), { permanent: true, direction: 'top', offset: [0, -8] })
          .addTo(layer);
      });
    },
  };
}

/** The calibration panel over `draft`; `stop()` removes its map. */
export function calibrationPanel(draft, { cameraId, site, tiles }) {
  let units = 'metres';
  let active = 0;
  let map = null;
  const problem = h('p', { class: 'form-problem', role: 'alert' });
  const result = h('p', { class: 'calibration-result', role: 'status' });
  const state = h('p', { class: 'calibration-state' });
  const rows = h('div', { class: 'picks' });
  const mapEl = h('div', {
    class: 'map calibration-map', role: 'region', hidden: true,
    'aria-label': 'Site map: click where the selected calibration point is on the ground',
  });
  const mapNote = h('p', { class: 'hint', hidden: true },
    tiles.tile_url ? 'Select a point below, then click its place on the site map.'
      : 'This server has no base map configured: type latitude and longitude, or use metres.');
  const pick = h('button', { type: 'button', 'aria-pressed': 'false', onclick: () => draft.setDrawing(draft.drawing === 'pick' ? null : 'pick') },
    'Pick points on the scene map');
  const fit = h('button', { type: 'button', class: 'primary', onclick: () => fitPoints() }, 'Fit calibration');
  const drop = h('button', { type: 'button', onclick: () => draft.useCalibration(null) }, 'Remove calibration from the draft');

  function drawState() {
    const { calibration } = draft;
    state.textContent = !calibration ? 'The draft has no calibration: speeds and queue lengths are not measured.'
      : `The draft holds a calibration of ${calibration.image_points.length} points.${draft.calibrationStale ? ' The points changed since: fit again to use them.' : ''}`;
    drop.hidden = !calibration;
  }

  function groundInput(index, [name, label]) {
    const item = draft.picks[index];
    const input = h('input', { name, type: 'number', step: 'any', value: item[name] });
    input.addEventListener('input', () => {
      item[name] = input.value;
      draft.calibrationEdited();
      drawState();
      map?.show(draft.picks);
    });
    return field(`${label} of point ${index + 1}`, input);
  }

  function pickRow(item, index) {
    const [x, y] = item.point;
    const chooser = units === 'latlon' ? h('label', { class: 'active-pick' },
      h('input', { type: 'radio', name: 'active-pick', checked: index === active, onchange: () => { active = index; } }),
      ` Set point ${index + 1} on the map`) : null;
    return h('fieldset', { class: 'pick', dataset: { pick: String(index) } },
      h('legend', {}, `Point ${index + 1}`),
      h('p', { class: 'hint' }, 'On the scene map: ', h('span', { class: 'at' }, `(${Math.round(x)}, ${Math.round(y)})`)),
      h('div', { class: 'form-grid' }, UNITS[units].map((unit) => groundInput(index, unit))),
      chooser,
      h('button', { type: 'button', class: 'danger', onclick: () => draft.remove('pick', index), 'aria-label': `Remove point ${index + 1}` }, 'Remove'));
  }

  function drawRows() {
    active = Math.min(active, Math.max(0, draft.picks.length - 1));
    rows.replaceChildren(...(draft.picks.length ? draft.picks.map(pickRow)
      : [h('p', { class: 'hint' }, `No points yet: pick ${MIN_POINTS} to ${MAX_POINTS} on the scene map, spread over the road like the corners of a rectangle.`)]));
    fit.disabled = draft.picks.length < MIN_POINTS;
    map?.show(draft.picks);
  }

  function onMapPick({ lat, lng }) {
    const item = draft.picks[active];
    if (!item) return;
    item.lat = lat.toFixed(7);
    item.lon = lng.toFixed(7);
    draft.calibrationEdited();
    const next = draft.picks.findIndex((p, i) => i > active && (p.lat === '' || p.lon === ''));
    if (next >= 0) active = next;
    drawRows();
    drawState();
  }

  function useUnits(choice) {
    units = choice;
    const latlon = units === 'latlon';
    mapEl.hidden = !latlon;
    mapNote.hidden = !latlon;
    if (latlon && !map) map = siteMap(mapEl, site, tiles, onMapPick);
    map?.map.invalidateSize();
    drawRows();
  }

  /** What the fit endpoint takes, or a sentence on what is missing. */
  function fitBody() {
    const ground = draft.picks.map((item) => UNITS[units].map(([name]) => numeric(item[name])));
    const missing = ground.findIndex((pair) => !pair.every(Number.isFinite));
    if (missing >= 0) return `Give point ${missing + 1} its ${units === 'metres' ? 'east and north metres' : 'latitude and longitude'}.`;
    const key = units === 'metres' ? 'ground_points_m' : 'ground_points_latlon';
    return { image_points: draft.pickPoints(), [key]: ground };
  }

  async function fitPoints() {
    problem.textContent = '';
    result.textContent = '';
    const body = fitBody();
    if (typeof body === 'string') {
      problem.textContent = body;
      return;
    }
    fit.disabled = true;
    try {
      const fitted = await call('POST', `/api/v1/cameras/${encodeURIComponent(cameraId)}/calibration/fit`, { body });
      fitted.calibration.ground_points_m.forEach(([east, north], i) => {
        Object.assign(draft.picks[i], { east: String(east), north: String(north) });
      });
      draft.useCalibration(fitted.calibration);
      result.textContent = `Re-projection error: ${fitted.reprojection_error_m.toFixed(2)} m over ${body.image_points.length} points`
        + `${body.image_points.length === MIN_POINTS ? ' (four points fit exactly; add more to check them)' : ''}. Added to the draft: save to use it.`;
    } catch (error) {
      problem.textContent = `Not fitted: ${error.message}`;
    } finally {
      fit.disabled = draft.picks.length < MIN_POINTS;
    }
  }

  draft.on((what, detail) => {
    if (what === 'structure' && (detail.added?.kind === 'pick' || detail.removed?.kind === 'pick')) {
      result.textContent = '';
      drawRows();
      drawState();
    }
    if (what === 'move' && detail.kind === 'pick') {
      const [x, y] = draft.picks[detail.index].point;
      rows.querySelector(`[data-pick="${detail.index}"] .at`).textContent = `(${Math.round(x)}, ${Math.round(y)})`;
      drawState();
    }
    if (what === 'calibration') drawState();
    if (what === 'mode') pick.setAttribute('aria-pressed', String(draft.drawing === 'pick'));
  });

  const choice = (value, label) => h('label', {},
    h('input', { type: 'radio', name: 'ground-units', value, checked: value === units, onchange: () => useUnits(value) }), ` ${label}`);
  const el = h('div', { class: 'calibration' },
    h('p', { class: 'hint' }, `Pick ${MIN_POINTS} to ${MAX_POINTS} points on the scene map whose places on the ground you know (lane marking corners, kerb ends), then give their ground positions.`),
    state,
    h('p', { class: 'actions' }, pick, drop),
    h('fieldset', { class: 'units' }, h('legend', {}, 'Ground positions as'),
      choice('metres', 'metres east and north of any fixed point'), choice('latlon', 'latitude and longitude on the site map')),
    rows,
    mapNote,
    mapEl,
    problem,
    h('p', { class: 'actions' }, fit),
    result);
  drawState();
  drawRows();
  return { el, stop: () => map?.map.remove() };
}
