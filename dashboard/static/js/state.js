// The page state lives in the URL query string, so every view is a shareable link.
import { addDays, daysBetween, today } from './time.js';

/** Every page, with the least role that may open it (the API refuses the rest anyway). */
export const PAGES = {
  overview: { label: 'Overview', role: 'viewer' },
  site: { label: 'Site', role: 'viewer' },
  intersection: { label: 'Intersection', role: 'viewer' },
  compare: { label: 'Compare', role: 'viewer' },
  health: { label: 'Data health', role: 'viewer' },
  open: { label: 'Open data', role: 'viewer' },
  sites: { label: 'Sites', role: 'editor' },
  setup: { label: 'Camera set-up', role: 'editor' },
  tally: { label: 'Validation tally', role: 'editor' },
  tokens: { label: 'Device tokens', role: 'admin' },
  users: { label: 'Users', role: 'admin' },
  audit: { label: 'Audit log', role: 'admin' },
};
const RANK = { viewer: 0, editor: 1, admin: 2 };
const KEYS = ['page', 'site', 'from', 'to', 'bucket', 'site2', 'from2', 'to2', 'before', 'camera', 'class', 'bin'];

/** Whether `role` may open `page`. */
export function mayOpen(role, page) {
  return page in PAGES && RANK[role] >= RANK[PAGES[page].role];
}

export function readState() {
  const query = new URLSearchParams(window.location.search);
  return Object.fromEntries(KEYS.map((key) => [key, query.get(key) || '']));
}

export function toQuery(state) {
  const query = new URLSearchParams();
  for (const key of KEYS) if (state[key]) query.set(key, state[key]);
  return `?${query}`;
}

/**
 * Fill in what the URL left out or may not have: a page `role` may open, a site, the last 7
 * local days, a bucket the server offers that fits the range, a comparison period.
 */
export function withDefaults(state, sites, role, meta) {
  const filled = { ...state };
  if (!mayOpen(role, filled.page)) filled.page = 'overview';
  const site = sites.find((s) => s.id === filled.site) || sites[0];
  filled.site = site ? site.id : '';
  const zone = site ? site.timezone : 'UTC';
  if (!filled.to) filled.to = today(zone);
  if (!filled.from || filled.from > filled.to) filled.from = addDays(filled.to, -6);
  filled.bucket = fittingBucket(filled.bucket, filled.from, filled.to, meta);
  if (filled.page === 'compare') {
    if (!sites.some((s) => s.id === filled.site2)) filled.site2 = filled.site;
    const span = daysBetween(filled.from, filled.to);
    if (!filled.to2) filled.to2 = addDays(filled.from, -1);
    if (!filled.from2 || filled.from2 > filled.to2) filled.from2 = addDays(filled.to2, 1 - span);
  } else {
    filled.site2 = filled.from2 = filled.to2 = '';
  }
  if (filled.page !== 'audit') filled.before = '';
  if (!['setup', 'tally', 'intersection'].includes(filled.page)) filled.camera = '';
  if (filled.page !== 'intersection') filled.class = filled.bin = '';
  return filled;
}

/** Whether a range of local days needs more buckets of `seconds` than the server returns. */
export function tooManyBuckets(from, to, seconds, meta) {
  return (daysBetween(from, to) * 86400) / seconds > meta.max_buckets;
}

/** `bucket` (default hourly), or the next coarser one when the range would need too many. */
function fittingBucket(bucket, from, to, meta) {
  const names = Object.keys(meta.buckets).sort((a, b) => meta.buckets[a] - meta.buckets[b]);
  const wanted = names.includes(bucket) ? bucket : '1h';
  const fits = names.slice(Math.max(0, names.indexOf(wanted)))
    .find((name) => !tooManyBuckets(from, to, meta.buckets[name], meta));
  return fits || names.at(-1);
}

/** API range for local dates: midnight of `from` to midnight after `to`, site-local. */
export function localRange(from, to) {
  return { from: `${from}T00:00:00`, to: `${addDays(to, 1)}T00:00:00` };
}
