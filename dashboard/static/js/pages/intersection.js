// Intersection view of one camera: the legs with an arrow per turning movement sized by volume,
// the turning-movement count (TMC) table with its peak hour and peak-hour factors, a class
// filter and the CSV / Synchro UTDF downloads. Gaps stay gaps: a bin no report covers is shown
// as "no data", never as zero.
import { getJSON } from '../api.js';
import { movementDiagram } from '../diagram.js';
import { card, h, message, number, percent, section } from '../dom.js';
import { go } from '../nav.js';
import { localRange, toQuery } from '../state.js';
import { daysBetween, localClock, localStamp } from '../time.js';

const BINS = { '15min': '15 minutes', '1h': 'hour' };
/** The longest range, in days, the movement endpoints serve. */
const MAX_DAYS = 93;
const WORDS = { left: 'Left', through: 'Through', right: 'Right', u_turn: 'U-turn' };

const count = (value) => (value == null ? 'no data' : number.format(value));
const factor = (value) => (value == null ? '–' : value.toFixed(2));

/** The query every movement endpoint of this view takes. */
function movementParams(state, camera) {
  return {
    camera,
    ...localRange(state.from, state.to),
    bin: state.bin || '15min',
    vehicle_class: state.class || '',
  };
}

/** A same-origin download link of a movement export (the session cookie signs it). */
function downloadLink(path, params, text, file, key) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== ''));
  return h('a', { href: `${path}?${query}`, download: file, dataset: { download: key } }, text);
}

function downloads(tmc, state, camera) {
  const params = movementParams(state, camera);
  const stem = `tally-${camera}-${state.from}-${state.to}${state.class ? `-${state.class}` : ''}`;
  const compass = tmc.legs.map((leg) => leg.compass);
  const utdf = !tmc.layout ? 'UTDF needs an intersection layout on this camera.'
    : new Set(compass).size !== compass.length ? 'UTDF needs at most one leg per compass point.'
      : null;
  return h('ul', { class: 'downloads' },
    h('li', {}, downloadLink('/api/v1/movements/tmc.csv', params, `TMC table (CSV, ${BINS[params.bin]} bins)`, `${stem}-tmc-${params.bin}.csv`, 'tmc-csv')),
    utdf ? h('li', { class: 'hint' }, utdf) : [
      h('li', {}, downloadLink('/api/v1/movements/utdf-volume.csv', { ...params, bin: '15min' }, 'Synchro UTDF Volume.csv (15-minute)', `${stem}-Volume-15min.csv`, 'utdf-15min')),
      h('li', {}, downloadLink('/api/v1/movements/utdf-volume.csv', { ...params, bin: '1h' }, 'Synchro UTDF Volume.csv (60-minute)', `${stem}-Volume-60min.csv`, 'utdf-60min')),
    ]);
}

function peakCards(tmc, peak, timeZone) {
  const whole = tmc.intersection;
  const hour = peak.peak_hour;
  return [
    card('Vehicles', count(whole.total), whole.pcu == null ? '' : `${number.format(Math.round(whole.pcu))} PCU`),
    card('Heavy vehicles', percent(whole.heavy_share), whole.heavy == null ? '' : `${number.format(whole.heavy)} buses and trucks`),
    card('Peak hour', hour ? `${localStamp(hour.start, timeZone)}–${localClock(hour.end, timeZone)}` : '–',
      hour ? `${number.format(hour.volume)} vehicles` : 'no four consecutive 15-minute bins with data'),
    card('Peak-hour factor', factor(hour?.phf), hour ? `busiest 15 minutes: ${number.format(hour.max_15min_volume)}` : ''),
  ];
}

/** Left, through, right, U-turn (as count sheets and UTDF list them), then unnamed ones. */
const TURN_ORDER = ['left', 'through', 'right', 'u_turn'];
const rank = (m) => (m.movement ? TURN_ORDER.indexOf(m.movement) : TURN_ORDER.length);
const byTurn = (a, b) => rank(a) - rank(b) || a.destination.localeCompare(b.destination);

/** Columns of the TMC table: each approach's movements, then its total; then the intersection. */
function columns(tmc, peak) {
  const key = (origin, destination) => `${origin}\u0000${destination}`;
  const peakOf = new Map(peak.movements.map((m) => [key(m.origin, m.destination), m]));
  const peakApproach = new Map(peak.approaches.map((a) => [a.origin, a]));
  return tmc.approaches.map((approach) => ({
    origin: approach.origin,
    cells: [
      ...tmc.movements.filter((m) => m.origin === approach.origin).sort(byTurn).map((m) => ({
        label: m.movement ? WORDS[m.movement] : `to ${m.destination}`,
        title: `${m.origin} → ${m.destination}`,
        series: m,
        peak: peakOf.get(key(m.origin, m.destination)),
      })),
      { label: 'Total', title: `${approach.origin}, every movement`, series: approach, peak: peakApproach.get(approach.origin), total: true },
    ],
  }));
}

/** Runs of consecutive bins: [first, last, covered]. */
function runs(bins) {
  const out = [];
  bins.forEach((b, i) => {
    const covered = b.coverage > 0;
    if (out.length && out.at(-1)[2] === covered && !covered) out.at(-1)[1] = i;
    else out.push([i, i, covered]);
  });
  return out;
}

function tmcTable(tmc, peak, timeZone) {
  const groups = columns(tmc, peak);
  const cells = groups.flatMap((g) => g.cells);
  const whole = { label: 'Intersection', series: tmc.intersection, peak: peak.intersection, total: true };
  const all = [...cells, whole];
  const hour = peak.peak_hour;
  const inPeak = (b) => hour && Date.parse(b.start) >= Date.parse(hour.start) && Date.parse(b.end) <= Date.parse(hour.end);
  const width = all.length + 2;
  const body = runs(tmc.bins).map(([first, last, covered]) => {
    const bin = tmc.bins[first];
    if (!covered) {
      const to = tmc.bins[last];
      return h('tr', { class: 'gap' },
        h('th', { scope: 'row' }, localStamp(bin.start, timeZone)),
        h('td', { colspan: width - 1 }, first === last ? 'no data (gap, not zero)'
          : `no data until ${localStamp(to.end, timeZone)} (gap, not zero)`));
    }
    return h('tr', { class: inPeak(bin) ? 'in-peak' : '' },
      h('th', { scope: 'row' }, localStamp(bin.start, timeZone)),
      h('td', {}, `${Math.round(bin.coverage * 100)} %`),
      all.map((c) => h('td', { class: c.total ? 'total' : '' }, count(c.series.counts[first]))));
  });
  const foot = (label, value, first = '') => h('tr', { class: label === 'PHF' ? 'peak' : '' },
    h('th', { scope: 'row' }, label), h('td', {}, first), all.map((c) => h('td', {}, value(c))));
  return h('div', { class: 'tmc-wrap' }, h('table', { class: 'tmc', dataset: { bins: String(tmc.bins.length) } },
    h('caption', {}, `Turning movements per ${BINS[tmc.bin]} (site time)${tmc.vehicle_class ? `, ${tmc.vehicle_class} only` : ''}; rows from the approach each vehicle entered by`),
    h('thead', {},
      h('tr', {}, h('td', { colspan: 2 }),
        groups.map((g) => h('th', { scope: 'colgroup', colspan: g.cells.length }, `${g.origin} approach`)),
        h('th', { scope: 'col', rowspan: 2 }, 'Intersection')),
      h('tr', {}, h('th', { scope: 'col' }, 'Start'), h('th', { scope: 'col' }, 'Coverage'),
        cells.map((c) => h('th', { scope: 'col', title: c.title }, c.label)))),
    h('tbody', {}, body),
    h('tfoot', {},
      foot('Total', (c) => count(c.series.total)),
      foot('PCU', (c) => (c.series.pcu == null ? '–' : number.format(Math.round(c.series.pcu * 10) / 10))),
      foot('Heavy vehicles', (c) => percent(c.series.heavy_share)),
      foot('Peak hour', (c) => (c.peak ? number.format(c.peak.volume) : '–'),
        hour ? `${localClock(hour.start, timeZone)}–${localClock(hour.end, timeZone)}` : 'none'),
      foot('PHF', (c) => factor(c.peak?.phf)))));
}

function unmatchedNote(tmc) {
  const seen = tmc.unmatched.filter((u) => u.total);
  if (!seen.length) return null;
  return h('p', { class: 'hint', dataset: { unmatched: '' } },
    `Seen at one gate only (not in the table): ${seen.map((u) => `${u.gate} ${number.format(u.total)}`).join(', ')}.`);
}

function diagram(tmc) {
  const gates = tmc.layout ? tmc.legs.map((leg) => leg.gate)
    : [...new Set(tmc.movements.flatMap((m) => [m.origin, m.destination]))];
  const bearings = Object.fromEntries(tmc.legs.map((leg) => [leg.gate, leg.bearing_deg]));
  const moves = tmc.movements.map((m) => ({ ...m, count: m.total || 0 }));
  const label = `Turning movements at ${tmc.camera}: ${moves.filter((m) => m.count).length} movements, arrow width by volume`;
  return [
    movementDiagram(gates, bearings, moves, label),
    tmc.layout ? null : h('p', { class: 'hint' }, 'This camera has no intersection layout: legs are spread evenly, not by bearing.'),
    h('ul', { class: 'movement-key' }, TURN_ORDER.map((name) => h('li', {}, h('span', { class: `swatch swatch-${name}`, 'aria-hidden': 'true' }), WORDS[name]))),
  ];
}

function filters(state, app, cameras) {
  const change = (event) => go(toQuery({ ...state, [event.target.name]: event.target.value }));
  const select = (name, label, options, value) => h('label', {}, label,
    h('select', { name, onchange: change }, options.map(([v, text]) => {
      const option = h('option', { value: v }, text);
      option.selected = v === value;
      return option;
    })));
  return h('form', { class: 'tmc-tools', 'aria-label': 'Movement filters', onsubmit: (e) => e.preventDefault() },
    cameras.length > 1 ? select('camera', 'Camera', cameras.map((c) => [c.id, c.name || c.id]), state.camera) : null,
    select('class', 'Vehicle class', [['', 'All classes'], ...app.meta.vehicle_classes.map((c) => [c, c])], state.class),
    select('bin', 'Bin', Object.entries(BINS).map(([v, text]) => [v, `${text[0].toUpperCase()}${text.slice(1)}`]), state.bin || '15min'));
}

export default async function intersection(page, state, sites, app) {
  const info = sites.find((s) => s.id === state.site);
  if (!info) {
    page.append(section('Intersection', message('empty', 'No sites are registered yet.')));
    return;
  }
  const cameras = info.cameras || [];
  const camera = cameras.find((c) => c.id === state.camera) || cameras[0];
  page.append(h('header', { class: 'page-head' },
    h('h1', {}, info.name),
    h('p', {}, [camera ? `Turning movements at ${camera.name || camera.id}` : '', `${state.from} to ${state.to}`, info.timezone].filter(Boolean).join(' · '))));
  if (!camera) {
    page.append(section('Intersection', message('empty', 'This site has no cameras.')));
    return;
  }
  const view = { ...state, camera: camera.id };
  page.append(filters(view, app, cameras));
  const slot = h('div', { class: 'intersection' }, message('loading', 'Loading…'));
  page.append(slot);
  if (daysBetween(state.from, state.to) > MAX_DAYS) {
    slot.replaceChildren(message('empty', `Turning movements are served for at most ${MAX_DAYS} days at a time: choose a shorter range.`));
    return;
  }
  const params = movementParams(view, camera.id);
  try {
    const [tmc, peak] = await Promise.all([
      getJSON('/api/v1/movements/tmc', params),
      getJSON('/api/v1/movements/peak-hour', { ...params, bin: '' }),
    ]);
    if (!tmc.movements.length || tmc.intersection.total == null) {
      slot.replaceChildren(message('empty', 'No turning movements in this range.'));
      return;
    }
    slot.replaceChildren(
      h('div', { class: 'cards' }, peakCards(tmc, peak, info.timezone)),
      h('div', { class: 'intersection-layout' },
        section('Movements', diagram(tmc)),
        section('Turning-movement counts', tmcTable(tmc, peak, info.timezone), unmatchedNote(tmc), downloads(tmc, view, camera.id))),
    );
  } catch (error) {
    slot.replaceChildren(message('error', `Could not load the turning movements: ${error.message}`));
  }
}
