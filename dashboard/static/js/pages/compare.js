// Comparison: two periods, or two sites, side by side on the same scale.
import { getJSON } from '../api.js';
import { chartFigure, drawSeries } from '../charts.js';
import { h, message, number, percent, section, table } from '../dom.js';
import { go } from '../nav.js';
import { localRange, toQuery } from '../state.js';
import { durationWords } from '../time.js';
import { bucketLabels, summaryCards } from './site.js';

const count = (value) => (value == null ? 'no data' : number.format(value));
const change = (a, b) => (a == null || b == null || a === 0 ? '–' : `${(((b - a) / a) * 100).toFixed(1)} %`);

function sideForm(state, sites) {
  const form = h('form', { class: 'controls compare-b', 'aria-label': 'Second site and period (B)' },
    h('label', {}, 'Site B ', h('select', { name: 'site2' },
      sites.map((s) => h('option', { value: s.id, selected: s.id === state.site2 }, s.name)))),
    h('label', {}, 'From ', h('input', { type: 'date', name: 'from2', value: state.from2, required: true })),
    h('label', {}, 'To ', h('input', { type: 'date', name: 'to2', value: state.to2, required: true })));
  form.addEventListener('change', (event) => {
    if (event.target.value) go(toQuery({ ...state, [event.target.name]: event.target.value }));
  });
  form.addEventListener('submit', (event) => event.preventDefault());
  return form;
}

async function loadSide(side) {
  const params = { site: side.site.id, ...localRange(side.from, side.to) };
  const [summary, series] = await Promise.all([
    getJSON('/api/v1/counts/summary', params),
    getJSON('/api/v1/counts/series', { ...params, bucket: side.bucket }),
  ]);
  return { ...side, summary, series };
}

function drawSide(figure, side, yMax) {
  const { buckets, series } = side.series;
  if (!series.length) {
    figure.empty('No counts in this period.');
    return;
  }
  drawSeries(figure, {
    ...bucketLabels(buckets, side.seconds, side.site.timezone),
    series: [{ name: 'all vehicles', values: series[0].counts }],
    gaps: buckets.map((b) => b.coverage === 0),
    coverage: buckets.map((b) => b.coverage),
    unit: `vehicles per ${durationWords(side.seconds)}`, yAxis: { max: yMax }, format: (v) => number.format(v),
  });
}

export default async function compare(page, state, sites, app) {
  if (!sites.length) {
    page.append(section('Compare', message('empty', 'No sites are registered yet.')));
    return;
  }
  const byId = Object.fromEntries(sites.map((s) => [s.id, s]));
  const seconds = app.meta.buckets[state.bucket];
  const sides = [
    { key: 'A', site: byId[state.site], from: state.from, to: state.to, bucket: state.bucket, seconds },
    { key: 'B', site: byId[state.site2], from: state.from2, to: state.to2, bucket: state.bucket, seconds },
  ];
  const figures = sides.map((s) => chartFigure(`compare-${s.key}`,
    `${s.key}: ${s.site.name}, ${s.from} to ${s.to}`, `vehicles per ${durationWords(seconds)}`));
  const cards = sides.map(() => h('div', { class: 'cards' }));
  const difference = h('div', {});
  page.append(
    h('p', {}, 'A uses the site and dates above; B uses the controls below. Both charts share one scale.'),
    sideForm(state, sites),
    difference,
    h('div', { class: 'two-up' }, sides.map((s, i) => section(`${s.key}: ${s.site.name}`, cards[i], figures[i].el))),
  );
  let loaded;
  try {
    loaded = await Promise.all(sides.map(loadSide));
  } catch (error) {
    figures.forEach((f) => f.fail(error));
    return;
  }
  const yMax = Math.max(1, ...loaded.flatMap((s) => s.series.series.flatMap((x) => x.counts)));
  loaded.forEach((side, i) => {
    cards[i].replaceChildren(...summaryCards(side.summary, side.site.timezone));
    drawSide(figures[i], side, yMax);
  });
  const [a, b] = loaded.map((s) => s.summary);
  difference.replaceChildren(section('Difference', table('A against B', ['Measure', 'A', 'B', 'Change B vs A'], [
    ['Vehicles', count(a.total), count(b.total), change(a.total, b.total)],
    ['Coverage', percent(a.coverage), percent(b.coverage), '–'],
    ['Heavy-vehicle share', percent(a.heavy_share), percent(b.heavy_share), '–'],
    ['Peak-hour volume', count(a.peak_hour?.volume), count(b.peak_hour?.volume),
      change(a.peak_hour?.volume, b.peak_hour?.volume)],
  ])));
}
