// Labelled ECharts figures, each with an accessible data table and visibly marked gaps.
import * as echarts from '../vendor/echarts/echarts.esm.min.js';
import { escapeHtml, h, message, table } from './dom.js';

const live = new Set();
const resizer = new ResizeObserver((entries) => {
  for (const entry of entries) echarts.getInstanceByDom(entry.target)?.resize();
});
const GAP_COLOUR = 'rgba(200, 40, 40, 0.12)';
const BASE = {
  animation: false,
  aria: { enabled: true },
  textStyle: { fontFamily: 'inherit' },
  grid: { left: 12, right: 20, top: 48, bottom: 56, containLabel: true },
};

/** Dispose every chart of the previous page. */
export function disposeCharts() {
  for (const chart of live) {
    resizer.unobserve(chart.getDom());
    chart.dispose();
  }
  live.clear();
}

/** A figure with a title, unit, loading message and (later) a chart and its data table. */
export function chartFigure(key, title, unit) {
  const plot = h('div', { class: 'plot', role: 'img', 'aria-label': `${title} (${unit})` });
  const body = h('div', { class: 'plot-state' }, message('loading', 'Loading…'));
  const figure = h('figure', { class: 'chart', dataset: { chart: key, state: 'loading' } },
    h('figcaption', {}, h('h3', {}, title), h('p', { class: 'unit' }, `Unit: ${unit}`)),
    body);
  const settle = (state, ...children) => {
    figure.dataset.state = state;
    body.replaceChildren(...children);
  };
  return {
    el: figure,
    empty: (text) => settle('empty', message('empty', text)),
    fail: (error) => settle('error', message('error', `Could not load: ${error.message}`)),
    /** Draw `option`; `rows()` builds the data table only when the reader opens it. */
    draw(option, { points, headers, rows, notes = [] }) {
      const details = h('details', { class: 'data-table' }, h('summary', {}, 'Data table'));
      details.addEventListener('toggle', () => {
        if (details.open && details.childElementCount === 1) details.append(table(title, headers, rows()));
      });
      figure.dataset.points = String(points);
      settle('ready', plot, ...notes, details);
      const chart = echarts.init(plot, null, { renderer: 'canvas' });
      chart.setOption({ ...BASE, ...option });
      live.add(chart);
      resizer.observe(plot);
    },
  };
}

/** Index runs [first, last] where `isGap(i)` holds. */
function gapRuns(length, isGap) {
  const runs = [];
  for (let i = 0; i < length; i += 1) {
    if (!isGap(i)) continue;
    if (runs.length && runs.at(-1)[1] === i - 1) runs.at(-1)[1] = i;
    else runs.push([i, i]);
  }
  return runs;
}

function gapArea(runs, length) {
  return {
    silent: true,
    itemStyle: { color: GAP_COLOUR },
    label: { show: true, position: 'insideTop', color: '#a11', formatter: 'no data' },
    data: runs.map(([a, b]) => [{ xAxis: Math.max(a - 1, 0) }, { xAxis: Math.min(b + 1, length - 1) }]),
  };
}

function gapNote(runs, starts, ends) {
  if (!runs.length) return [];
  const spans = runs.map(([a, b]) => `${starts[a]} – ${ends[b]}`);
  return [h('p', { class: 'gap-note', dataset: { gaps: String(runs.length) } },
    h('span', { class: 'gap-swatch', 'aria-hidden': 'true' }),
    `No data (gap, not zero): ${spans.join('; ')}`)];
}

/**
 * The first zoom window of a long axis: the buckets with data (and a margin), when they fill
 * under a quarter of it, so a short burst of data (a demo, a new camera) is not a sliver.
 */
function dataWindow(gaps) {
  const first = gaps.indexOf(false);
  const last = gaps.lastIndexOf(false);
  if (first < 0 || (last - first + 1) * 4 > gaps.length) return {};
  const margin = Math.max(5, Math.round((last - first + 1) / 2));
  return { startValue: Math.max(0, first - margin), endValue: Math.min(gaps.length - 1, last + margin) };
}

const show = (value, format) => (value == null ? 'no data' : format(value));

/**
 * A time series over buckets: `starts`/`ends` are local labels, `gaps[i]` marks a bucket
 * nobody watched; its values are null and it is shaded, never drawn as zero.
 */
export function drawSeries(figure, { starts, ends, series, gaps, unit, kind = 'line',
  yAxis = {}, format = String, coverage = null }) {
  const runs = gapRuns(starts.length, (i) => gaps[i]);
  const many = starts.length > 60;
  const zoom = many ? dataWindow(gaps) : {};
  figure.draw({
    legend: { type: 'scroll', top: 0 },
    tooltip: { trigger: 'axis', valueFormatter: (v) => show(v, format) },
    xAxis: { type: 'category', data: starts, boundaryGap: kind === 'bar' },
    yAxis: { type: 'value', name: unit, nameLocation: 'end', nameTextStyle: { align: 'left' }, ...yAxis },
    dataZoom: many ? [{ type: 'inside', ...zoom }, { type: 'slider', height: 18, bottom: 8, ...zoom }] : [],
    series: series.map((s, i) => ({
      name: s.name,
      type: kind,
      data: s.values,
      connectNulls: false,
      showSymbol: true, // a bucket between two gaps must stay visible even on long ranges
      showAllSymbol: true,
      symbolSize: many ? 3 : 6,
      step: s.step || false,
      markArea: i === 0 && runs.length ? gapArea(runs, starts.length) : undefined,
    })),
  }, {
    points: starts.length,
    notes: gapNote(runs, starts, ends),
    headers: ['Start (local time)', ...(coverage ? ['Coverage'] : []), ...series.map((s) => `${s.name} (${unit})`)],
    rows: () => starts.map((start, i) => [
      start,
      ...(coverage ? [`${Math.round(coverage[i] * 100)} %`] : []),
      ...series.map((s) => show(s.values[i], format)),
    ]),
  });
}

/** Bars per category with a label on each. */
export function drawBars(figure, { categories, values, unit, labels }) {
  figure.draw({
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: categories },
    yAxis: { type: 'value', name: unit, nameTextStyle: { align: 'left' } },
    series: [{ type: 'bar', data: values, label: { show: true, position: 'top', formatter: ({ dataIndex }) => labels[dataIndex] } }],
  }, {
    points: categories.length,
    headers: ['Category', unit, 'Share'],
    rows: () => categories.map((c, i) => [c, show(values[i], String), labels[i]]),
  });
}

/** Bars of one or more series over ordered categories (a histogram's bins). */
export function drawHistogram(figure, { categories, series, unit, xName }) {
  figure.draw({
    legend: { type: 'scroll', top: 0 },
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: categories, name: xName, nameLocation: 'middle', nameGap: 28 },
    yAxis: { type: 'value', name: unit, nameTextStyle: { align: 'left' } },
    series: series.map((s) => ({ name: s.name, type: 'bar', data: s.values })),
  }, {
    points: categories.length,
    headers: [xName, ...series.map((s) => `${s.name} (${unit})`)],
    rows: () => categories.map((c, i) => [c, ...series.map((s) => show(s.values[i], String))]),
  });
}

/** Weekday x hour heatmap; cells without data stay blank. */
export function drawHeatmap(figure, { days, mean, unit }) {
  const hours = Array.from({ length: 24 }, (_, hour) => String(hour).padStart(2, '0'));
  const cells = days.flatMap((_, d) => hours.map((__, hr) => [hr, d, mean[d][hr]]))
    .filter((cell) => cell[2] != null);
  const max = Math.max(1, ...cells.map((cell) => cell[2]));
  figure.draw({
    // A tooltip formatter's string is HTML to ECharts: escape what it did not write itself.
    tooltip: { formatter: ({ value }) => escapeHtml(`${days[value[1]]} ${hours[value[0]]}:00 — ${value[2].toFixed(1)} ${unit}`) },
    grid: { ...BASE.grid, bottom: 64 },
    xAxis: { type: 'category', data: hours, name: 'hour', splitArea: { show: true } },
    yAxis: { type: 'category', data: days, inverse: true, splitArea: { show: true } },
    visualMap: { min: 0, max, calculable: true, orient: 'horizontal', left: 'center', bottom: 0, text: [unit, ''] },
    series: [{ type: 'heatmap', data: cells }],
  }, {
    points: cells.length,
    headers: ['Day', ...hours],
    rows: () => days.map((day, d) => [day, ...mean[d].map((v) => show(v, (x) => x.toFixed(1)))]),
  });
}
