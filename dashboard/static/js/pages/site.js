// Site view: counts per line and direction, class mix, peak hour, hour-of-week and congestion,
// and each camera with its latest manual validation (and, for editors, set-up and validation).
import { getJSON } from '../api.js';
import { chartFigure, drawBars, drawHeatmap, drawHistogram, drawSeries } from '../charts.js';
import { card, h, message, number, percent, section, table } from '../dom.js';
import { localRange, mayOpen, toQuery } from '../state.js';
import { ago, durationWords, localClock, localStamp } from '../time.js';
import { cameraName, scored, validationSummary } from './tally.js';

const LEVELS = ['A', 'B', 'C', 'D', 'E', 'F'];
const SVG_NS = 'http://www.w3.org/2000/svg';
const TREND_LENGTH = 10;

/** Local start and end labels of each bucket of `seconds`, in the site's timezone. */
export function bucketLabels(buckets, seconds, timeZone) {
  const dateOnly = seconds % 86400 === 0;
  return {
    starts: buckets.map((b) => localStamp(b.start, timeZone, dateOnly)),
    ends: buckets.map((b) => localStamp(b.end, timeZone, dateOnly)),
  };
}

/** Fetch a count series and draw it; a bucket with coverage 0 is a gap, never zero. */
async function loadCounts(figure, params, [bucket, seconds], timeZone, nameOf) {
  try {
    const body = await getJSON('/api/v1/counts/series', { ...params, bucket });
    if (!body.series.length) {
      figure.empty('No counts in this range.');
      return body;
    }
    drawSeries(figure, {
      ...bucketLabels(body.buckets, seconds, timeZone),
      series: body.series.map((s) => ({ name: nameOf(s), values: s.counts })),
      gaps: body.buckets.map((b) => b.coverage === 0),
      coverage: body.buckets.map((b) => b.coverage),
      unit: `vehicles per ${durationWords(seconds)}`,
      format: (v) => number.format(v),
    });
    return body;
  } catch (error) {
    figure.fail(error);
    return null;
  }
}

function peakText(peak, timeZone) {
  if (!peak) return ['–', 'no full hour of data'];
  return [
    `${localStamp(peak.start, timeZone)}–${localClock(peak.end, timeZone)}`,
    `${number.format(peak.volume)} vehicles, PHF ${peak.phf == null ? '–' : peak.phf.toFixed(2)}`,
  ];
}

export function summaryCards(summary, timeZone) {
  const [peak, peakNote] = peakText(summary.peak_hour, timeZone);
  return [
    card('Vehicles', summary.total == null ? 'no data' : number.format(summary.total),
      `coverage ${percent(summary.coverage)}`),
    card('Heavy vehicles', percent(summary.heavy_share),
      summary.heavy_vehicles == null ? '' : `${number.format(summary.heavy_vehicles)} buses and trucks`),
    card('Peak hour', peak, peakNote),
    ...(summary.pcu_total == null ? [] : [card('Passenger-car units', number.format(Math.round(summary.pcu_total)),
      'buses and trucks weigh more, bicycles less')]),
  ];
}

async function loadSummary(cards, classes, params, timeZone) {
  try {
    const summary = await getJSON('/api/v1/counts/summary', params);
    cards.replaceChildren(...summaryCards(summary, timeZone));
    if (summary.total == null) {
      classes.empty('No counts in this range.');
      return;
    }
    const names = Object.keys(summary.by_class);
    drawBars(classes, {
      categories: names,
      values: names.map((n) => summary.by_class[n]),
      labels: names.map((n) => percent(summary.class_share[n])),
      unit: 'vehicles',
    });
  } catch (error) {
    cards.replaceChildren(message('error', `Could not load the summary: ${error.message}`));
    classes.fail(error);
  }
}

async function loadHourOfWeek(figure, params) {
  try {
    const body = await getJSON('/api/v1/counts/hour-of-week', params);
    if (!body.samples.flat().some(Boolean)) figure.empty('No counts in this range.');
    else drawHeatmap(figure, { days: body.days, mean: body.mean, unit: 'vehicles per hour (mean)' });
  } catch (error) {
    figure.fail(error);
  }
}

async function loadZones(figures, params, [bucket, seconds], timeZone) {
  try {
    const body = await getJSON('/api/v1/zones/series', { ...params, bucket });
    if (!body.series.length) {
      Object.values(figures).forEach((f) => f.empty('No congestion zones report in this range.'));
      return;
    }
    const common = {
      ...bucketLabels(body.buckets, seconds, timeZone),
      gaps: body.buckets.map((_, i) => body.series.every((s) => s.coverage[i] === 0)),
    };
    const named = (s, what) => `${s.zone} ${what}${body.series.length > 1 ? ` (${s.camera})` : ''}`;
    drawSeries(figures.occupancy, {
      ...common, unit: '% of time occupied', yAxis: { max: 100 }, format: (v) => `${v.toFixed(1)} %`,
      series: body.series.map((s) => ({ name: named(s, 'occupancy'), values: s.occupancy_time.map((v) => (v == null ? null : v * 100)) })),
    });
    drawSeries(figures.speed, {
      ...common, unit: 'km/h', format: (v) => v.toFixed(1),
      series: body.series.flatMap((s) => [
        { name: named(s, 'mean speed'), values: s.mean_speed_kmh },
        { name: named(s, '85th percentile'), values: s.p85_speed_kmh },
      ]),
    });
    drawSeries(figures.los, {
      ...common, unit: 'level of service (A best, F worst)', yAxis: { type: 'category', data: LEVELS },
      series: body.series.map((s) => ({ name: named(s, 'LOS'), values: s.los, step: 'middle' })),
    });
    drawSpeedHistogram(figures.histogram, body, named);
    drawSeries(figures.queue, {
      ...common, unit: 'vehicles', format: (v) => v.toFixed(1),
      series: body.series.map((s) => ({ name: named(s, 'queue'), values: s.queue_vehicles })),
    });
    if (!measured(body.series.map((s) => s.queue_m))) {
      figures.queueLength.empty('No calibrated zone measured a queue length in this range.');
    } else {
      drawSeries(figures.queueLength, {
        ...common, unit: 'metres', format: (v) => v.toFixed(0),
        series: body.series.map((s) => ({ name: named(s, 'queue'), values: s.queue_m })),
      });
    }
    const densities = body.series.flatMap((s) => [
      { name: named(s, 'vehicles'), values: s.density_veh_km_lane },
      { name: named(s, 'passenger-car units'), values: s.density_pcu_km_lane },
    ]).filter((d) => measured([d.values]));
    if (!densities.length) figures.density.empty('No zone with a known length and lanes in this range.');
    else drawSeries(figures.density, { ...common, unit: 'per km and lane', format: (v) => v.toFixed(1), series: densities });
  } catch (error) {
    Object.values(figures).forEach((f) => f.fail(error));
  }
}

/** Whether any of these per-bucket lists holds a value. */
const measured = (lists) => lists.some((values) => values?.some((v) => v != null));

/** Vehicles per speed bin over the whole range: each zone's bucket histograms added up. */
function drawSpeedHistogram(figure, body, named) {
  const edges = body.speed_bin_edges_kmh;
  const measured = body.series.filter((s) => s.speed_histogram?.some(Boolean));
  if (!edges || !measured.length) {
    figure.empty('No calibrated zone measured a speed in this range.');
    return;
  }
  const bins = edges.map((low, i) => (i + 1 < edges.length ? `${low}–${edges[i + 1]}` : `≥ ${low}`));
  drawHistogram(figure, {
    categories: bins,
    unit: 'vehicles',
    xName: 'km/h',
    series: measured.map((s) => ({
      name: named(s, 'vehicles'),
      values: edges.map((_, i) => s.speed_histogram.reduce((n, bucket) => n + (bucket ? bucket[i] : 0), 0)),
    })),
  });
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  el.append(...children.filter(Boolean));
  return el;
}

/**
 * A small line of accuracies, oldest first, drawn from 100 % down to 50 % (or the lowest one,
 * when lower: typical accuracies differ by a few points); its label reads the numbers.
 */
export function sparkline(shares, label) {
  const [width, height, pad] = [84, 24, 3];
  const low = Math.min(0.5, ...shares);
  const x = (i) => (shares.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (shares.length - 1));
  const y = (share) => pad + ((1 - Math.min(1, share)) / (1 - low)) * (height - 2 * pad);
  const points = shares.map((share, i) => `${x(i).toFixed(1)},${y(share).toFixed(1)}`).join(' ');
  return svg('svg', { class: 'sparkline', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label },
    svg('title', {}, label),
    shares.length > 1 ? svg('polyline', { points }) : null,
    svg('circle', { cx: x(shares.length - 1), cy: y(shares.at(-1)), r: 2.5 }));
}

/** The last validations' accuracies, oldest first, as a sparkline that names them. */
function trendCell(validations) {
  const shares = validations.slice(0, TREND_LENGTH).map((v) => v.accuracy).reverse();
  if (!shares.length) return '–';
  const label = `Accuracy of the last ${shares.length === 1 ? 'validation' : `${shares.length} validations`}, oldest first: ${shares.map(percent).join(', ')}`;
  return h('span', { class: 'trend' }, sparkline(shares, label));
}

function commissioningLinks(state, camera) {
  const link = (page, text) => h('a', {
    href: toQuery({ ...state, page, camera: camera.id }), dataset: { route: '' }, 'aria-label': `${text} ${camera.id}`,
  }, text);
  return h('span', { class: 'row-actions' }, link('setup', 'Set up'), ' ', link('tally', 'Validate'));
}

function cameraRow(camera, validations, timeZone, links) {
  const latest = Array.isArray(validations) ? scored(validations) : null;
  return [
    cameraName(camera),
    h('span', { class: `status status-${camera.status}` }, camera.status),
    camera.last_seen_at ? `${localStamp(camera.last_seen_at, timeZone)} (${ago(camera.last_seen_at)})` : 'never',
    latest ? (latest.length ? validationSummary(latest[0], timeZone) : 'none yet') : `could not load: ${validations.message}`,
    latest ? trendCell(latest) : '–',
    ...(links ? [links(camera)] : []),
  ];
}

/** Each camera with its status, latest validation and accuracy trend. */
async function loadCameras(slot, info, state, app) {
  if (!info.cameras.length) {
    slot.replaceChildren(message('empty', 'This site has no cameras.'));
    return;
  }
  const histories = await Promise.all(info.cameras.map((camera) =>
    getJSON(`/api/v1/cameras/${encodeURIComponent(camera.id)}/validations`).catch((error) => error)));
  // Editors see only sites they may manage (a restricted account sees no others).
  const links = mayOpen(app.me.role, 'tally') ? (camera) => commissioningLinks(state, camera) : null;
  slot.replaceChildren(table('Cameras, with their latest manual validation (site time)',
    ['Camera', 'Status', 'Last seen', 'Latest validation', 'Accuracy trend', ...(links ? ['Commissioning'] : [])],
    info.cameras.map((camera, i) => cameraRow(camera, histories[i], info.timezone, links))));
}

export default async function site(page, state, sites, app) {
  const info = sites.find((s) => s.id === state.site);
  if (!info) {
    page.append(section('Site', message('empty', 'No sites are registered yet.')));
    return;
  }
  const timeZone = info.timezone;
  const params = { site: info.id, ...localRange(state.from, state.to) };
  const cards = h('div', { class: 'cards' }, message('loading', 'Loading…'));
  const bucket = [state.bucket, app.meta.buckets[state.bucket]];
  const words = durationWords(bucket[1]);
  const counts = chartFigure('counts', `Vehicles per ${words} by line and direction`, `vehicles per ${words}`);
  const classes = chartFigure('classes', 'Class mix', 'vehicles');
  const heatmap = chartFigure('hour-of-week', 'Hour of week: mean hourly volume', 'vehicles per hour');
  const zones = {
    occupancy: chartFigure('occupancy', 'Zone occupancy', '% of time occupied'),
    speed: chartFigure('speed', 'Speed', 'km/h'),
    los: chartFigure('los', 'Level of service', 'LOS A–F'),
    histogram: chartFigure('speed-histogram', 'Speeds of vehicles (whole range)', 'vehicles per 10 km/h'),
    queue: chartFigure('queue', 'Queue', 'vehicles (mean)'),
    queueLength: chartFigure('queue-m', 'Queue length', 'metres (mean)'),
    density: chartFigure('density', 'Density per lane', 'vehicles and PCU per km and lane'),
  };
  const cameras = h('div', { class: 'cameras' }, message('loading', 'Loading…'));
  page.append(
    h('header', { class: 'page-head' },
      h('h1', {}, info.name),
      h('p', {}, [info.road, `${state.from} to ${state.to}`, timeZone].filter(Boolean).join(' · '))),
    cards,
    section('Counts', counts.el),
    h('div', { class: 'two-up' }, section('Vehicle classes', classes.el), section('Weekly pattern', heatmap.el)),
    section('Congestion', h('div', { class: 'grid-charts' }, Object.values(zones).map((f) => f.el))),
    section('Cameras', cameras),
  );
  await Promise.all([
    loadSummary(cards, classes, params, timeZone),
    loadCounts(counts, { ...params, group_by: 'line,direction' }, bucket, timeZone, (s) => `${s.line} ${s.direction}`),
    loadHourOfWeek(heatmap, params),
    loadZones(zones, params, bucket, timeZone),
    loadCameras(cameras, info, state, app),
  ]);
}
