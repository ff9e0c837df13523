// Live check: what the camera counted per line and direction in the last minutes, refreshed
// every few seconds while the page is open, so an installer sees passing vehicles counted.
import { getJSON } from '../api.js';
import { h, message, number, table } from '../dom.js';

const LIVE_MINUTES = 5;
const LIVE_EVERY_MS = 5000;

const clock = (iso, timeZone) => new Date(iso).toLocaleTimeString('en-GB', { timeZone, hourCycle: 'h23' });
const key = (row) => `${row.line}\u0000${row.direction}`;

/** Rows of the table: every line and direction counted in the window, with the window's total
 * and the newest interval's count (0 there is a real zero: that interval was reported). */
function liveRows(live) {
  const newest = new Map((live.intervals[0]?.counts || []).map((row) => [key(row), row.count]));
  return [...live.totals]
    .sort((a, b) => a.line.localeCompare(b.line) || a.direction.localeCompare(b.direction))
    .map((row) => [row.line, row.direction, number.format(row.count), number.format(newest.get(key(row)) ?? 0)]);
}

function liveView(live, timeZone) {
  const seconds = live.interval_seconds;
  const state = live.last_report_at
    ? `Last report received ${clock(live.last_report_at, timeZone)}; ${live.intervals.length} intervals of ${seconds} s in the last ${LIVE_MINUTES} minutes.`
    : `No report received in the last ${LIVE_MINUTES} minutes: is the worker running and online?`;
  const body = !live.intervals.length ? message('empty', 'No intervals reported yet in this window (a gap, not zero).')
    : !live.totals.length ? message('empty', 'Reported, but nothing crossed a line yet.')
      : table(`Crossings per line and direction, all classes, as of ${clock(live.now, timeZone)}`,
        ['Line', 'Direction', `Last ${LIVE_MINUTES} minutes`, 'Newest interval'], liveRows(live));
  return [h('p', { class: 'hint' }, state), body];
}

/** The live check panel of `cameraId`: `start()` once it is on the page; `stop()` ends the
 * refreshing (the page's clean-up). */
export function livePanel(cameraId, timeZone) {
  const view = h('div', { class: 'live-view' }, message('loading', 'Loading…'));
  const updated = h('p', { class: 'hint live-updated' });
  const el = h('div', { class: 'live', dataset: { state: 'loading' } }, updated, view);
  const path = `/api/v1/cameras/${encodeURIComponent(cameraId)}/live`;
  let timer = null;
  let stopped = false;

  async function refresh() {
    try {
      const live = await getJSON(path, { minutes: LIVE_MINUTES });
      if (stopped) return;
      view.replaceChildren(...liveView(live, timeZone));
      updated.textContent = `Updated ${clock(new Date().toISOString(), timeZone)} (every ${LIVE_EVERY_MS / 1000} s).`;
      el.dataset.state = 'ready';
    } catch (error) {
      if (stopped) return;
      updated.textContent = `Could not refresh: ${error.message}`;
      el.dataset.state = 'error';
    }
    // A page left without its clean-up (a render that was overtaken) stops by itself.
    if (!stopped && el.isConnected) timer = window.setTimeout(refresh, LIVE_EVERY_MS);
  }

  return {
    el,
    start: refresh,
    stop() {
      stopped = true;
      window.clearTimeout(timer);
    },
  };
}
