// Site view: counts per line and direction, class mix, peak hour, hour-of-week and congestion.
import { getJSON } from '../api.js';
import { chartFigure, drawBars, drawHeatmap, drawSeries } from '../charts.js';
import { card, h, message, number, percent, section } from '../dom.js';
import { localRange } from '../state.js';
import { durationWords, localClock, localStamp } from '../time.js';

const LEVELS = ['A', 'B', 'C', 'D', 'E', 'F'];

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
  } catch (error) {
    Object.values(figures).forEach((f) => f.fail(error));
  }
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
  };
  page.append(
    h('header', { class: 'page-head' },
      h('h1', {}, info.name),
      h('p', {}, [info.road, `${state.from} to ${state.to}`, timeZone].filter(Boolean).join(' · '))),
    cards,
    section('Counts', counts.el),
    h('div', { class: 'two-up' }, section('Vehicle classes', classes.el), section('Weekly pattern', heatmap.el)),
    section('Congestion', h('div', { class: 'grid-charts' }, zones.occupancy.el, zones.speed.el, zones.los.el)),
  );
  await Promise.all([
    loadSummary(cards, classes, params, timeZone),
    loadCounts(counts, { ...params, group_by: 'line,direction' }, bucket, timeZone, (s) => `${s.line} ${s.direction}`),
    loadHourOfWeek(heatmap, params),
    loadZones(zones, params, bucket, timeZone),
  ]);
}
