// Data health: device last-seen, heartbeat state, and coverage per day and hour (gaps shaded).
import { getJSON } from '../api.js';
import { chartFigure, drawSeries } from '../charts.js';
import { h, message, section, table } from '../dom.js';
import { localRange } from '../state.js';
import { addDays, ago, daysBetween, localStamp, today } from '../time.js';
import { bucketLabels } from './site.js';

const asPercent = (share) => Math.round(share * 1000) / 10;

/** The worker's version, flagged when its digests are not on the operator's approved list. */
function softwareCell(camera) {
  const software = camera.software;
  if (!software?.version) return '–';
  if (software.approved) return `${software.version} (approved)`;
  return h('span', { class: 'status status-suspect', dataset: { unapproved: camera.camera } },
    `${software.version}: not an approved release`);
}

function deviceRow(camera, timeZone) {
  const beat = camera.last_heartbeat;
  const stream = beat?.streams.map((s) => `${s.state} (${s.fps} fps, ${s.reconnects} reconnects)`).join('; ');
  const configNote = camera.reported_config_version == null || camera.reported_config_version === camera.config_version
    ? String(camera.config_version)
    : `${camera.reported_config_version} (expected ${camera.config_version})`;
  return [
    camera.camera,
    camera.site,
    h('span', { class: `status status-${camera.status}` }, camera.status),
    camera.last_seen_at ? `${localStamp(camera.last_seen_at, timeZone)} (${ago(camera.last_seen_at)})` : 'never',
    configNote,
    beat ? String(beat.outbox_backlog) : '–',
    beat ? String(beat.dropped_reports) : '–',
    camera.dead_lettered_reports == null ? '–' : String(camera.dead_lettered_reports),
    stream || '–',
    softwareCell(camera),
    camera.suspect_frozen
      ? h('span', { class: 'status status-suspect', dataset: { suspect: camera.camera } },
        `suspected frozen: ${camera.suspect_reason || 'no vehicles for implausibly long'}`)
      : '–',
  ];
}

function drawDaily(figure, camera, from, to) {
  const days = camera.coverage_by_day.filter((d) => d.date >= from && d.date <= to);
  drawSeries(figure, {
    starts: days.map((d) => d.date),
    ends: days.map((d) => addDays(d.date, 1)),
    series: [{ name: 'coverage', values: days.map((d) => (d.coverage === 0 ? null : asPercent(d.coverage))) }],
    gaps: days.map((d) => d.coverage === 0),
    unit: '% of day watched', kind: 'bar', yAxis: { max: 100 }, format: (v) => `${v} %`,
  });
}

async function loadHourly(figure, camera, state, timeZone, seconds) {
  try {
    const body = await getJSON('/api/v1/counts/series', { camera, bucket: '1h', ...localRange(state.from, state.to) });
    drawSeries(figure, {
      ...bucketLabels(body.buckets, seconds, timeZone),
      series: [{ name: 'coverage', values: body.buckets.map((b) => (b.coverage === 0 ? null : asPercent(b.coverage))) }],
      gaps: body.buckets.map((b) => b.coverage === 0),
      unit: '% of hour watched', yAxis: { max: 100 }, format: (v) => `${v} %`,
    });
  } catch (error) {
    figure.fail(error);
  }
}

export default async function health(page, state, sites, app) {
  const zones = Object.fromEntries(sites.map((s) => [s.id, s.timezone]));
  const site = sites.find((s) => s.id === state.site);
  const days = Math.min(366, Math.max(1, daysBetween(state.from, today(site?.timezone || 'UTC'))));
  const body = await getJSON('/api/v1/devices/health', { days });
  if (!body.cameras.length) {
    page.append(section('Devices', message('empty', 'No cameras are registered yet.')));
    return;
  }
  page.append(section('Devices', table('Every camera: status, last seen (site time) and worker health',
    ['Camera', 'Site', 'Status', 'Last seen', 'Config version', 'Outbox backlog', 'Dropped reports',
      'Dead-lettered reports', 'Stream', 'Software', 'Alert'],
    body.cameras.map((camera) => deviceRow(camera, zones[camera.site])))));
  const mine = body.cameras.filter((camera) => camera.site === state.site);
  const hourly = [];
  for (const camera of mine) {
    const daily = chartFigure(`daily-${camera.camera}`, `Coverage per day: ${camera.camera}`, '% of day watched');
    const perHour = chartFigure(`hourly-${camera.camera}`, `Coverage per hour: ${camera.camera}`, '% of hour watched');
    page.append(section(`Coverage of ${camera.camera} (${site.name})`, h('div', { class: 'two-up' }, daily.el, perHour.el)));
    drawDaily(daily, camera, state.from, state.to);
    hourly.push(loadHourly(perHour, camera.camera, state, site.timezone, app.meta.buckets['1h']));
  }
  await Promise.all(hourly);
}
