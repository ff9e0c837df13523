// The page state lives in the URL query string, so every view is a shareable link.
import { addDays, daysBetween, today } from './time.js';

export const PAGES = {
  overview: 'Overview',
  site: 'Site',
  compare: 'Compare',
  health: 'Data health',
  open: 'Open data',
};
export const BUCKETS = { '15min': 900, '1h': 3600, '1d': 86400 };
export const MAX_BUCKETS = 10_000;
const KEYS = ['page', 'site', 'from', 'to', 'bucket', 'site2', 'from2', 'to2'];

export function readState() {
  const query = new URLSearchParams(window.location.search);
  const state = Object.fromEntries(KEYS.map((key) => [key, query.get(key) || '']));
  if (!(state.page in PAGES)) state.page = 'overview';
  if (!(state.bucket in BUCKETS)) state.bucket = '1h';
  return state;
}

export function toQuery(state) {
  const query = new URLSearchParams();
  for (const key of KEYS) if (state[key]) query.set(key, state[key]);
  return `?${query}`;
}

/** Fill in what the URL left out: a site, the last 7 local days, a comparison period. */
export function withDefaults(state, sites) {
  const filled = { ...state };
  const site = sites.find((s) => s.id === filled.site) || sites[0];
  filled.site = site ? site.id : '';
  const zone = site ? site.timezone : 'UTC';
  if (!filled.to) filled.to = today(zone);
  if (!filled.from || filled.from > filled.to) filled.from = addDays(filled.to, -6);
  filled.bucket = fittingBucket(filled.bucket, filled.from, filled.to);
  if (filled.page === 'compare') {
    if (!sites.some((s) => s.id === filled.site2)) filled.site2 = filled.site;
    const span = daysBetween(filled.from, filled.to);
    if (!filled.to2) filled.to2 = addDays(filled.from, -1);
    if (!filled.from2 || filled.from2 > filled.to2) filled.from2 = addDays(filled.to2, 1 - span);
  } else {
    filled.site2 = filled.from2 = filled.to2 = '';
  }
  return filled;
}

/** `bucket`, or the next coarser one when the range would need too many buckets. */
function fittingBucket(bucket, from, to) {
  const seconds = daysBetween(from, to) * 86400;
  const names = Object.keys(BUCKETS);
  const fits = names.slice(names.indexOf(bucket)).find((name) => seconds / BUCKETS[name] <= MAX_BUCKETS);
  return fits || '1d';
}

/** API range for local dates: midnight of `from` to midnight after `to`, site-local. */
export function localRange(from, to) {
  return { from: `${from}T00:00:00`, to: `${addDays(to, 1)}T00:00:00` };
}
