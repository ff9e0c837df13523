// Dates and times in a site's timezone. Plain dates ("2026-03-02") are local calendar days.

const DAY_MS = 86_400_000;

const partsFormatters = new Map();

function partsIn(timeZone, date) {
  if (!partsFormatters.has(timeZone)) {
    partsFormatters.set(timeZone, new Intl.DateTimeFormat('en-CA', {
      timeZone, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    }));
  }
  const parts = {};
  for (const { type, value } of partsFormatters.get(timeZone).formatToParts(date)) parts[type] = value;
  return parts;
}

/** "2026-03-02 08:15" (or "2026-03-02" for whole days) in `timeZone`. */
export function localStamp(iso, timeZone, dateOnly = false) {
  const p = partsIn(timeZone, new Date(iso));
  return dateOnly ? `${p.year}-${p.month}-${p.day}` : `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** "08:15" in `timeZone`. */
export function localClock(iso, timeZone) {
  const p = partsIn(timeZone, new Date(iso));
  return `${p.hour}:${p.minute}`;
}

/** Today's date in `timeZone`. */
export function today(timeZone) {
  return localStamp(new Date().toISOString(), timeZone, true);
}

export function addDays(day, days) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d) + days * DAY_MS).toISOString().slice(0, 10);
}

/** Whole days from `from` to `to`, both included. */
export function daysBetween(from, to) {
  return Math.round((Date.parse(to) - Date.parse(from)) / DAY_MS) + 1;
}

/** "3 min ago", "2 h ago", "4 days ago". */
export function ago(iso) {
  const minutes = Math.round((Date.now() - Date.parse(iso)) / 60_000);
  if (minutes < 90) return `${minutes} min ago`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h ago`;
  return `${Math.round(minutes / 1440)} days ago`;
}

/** A length of time in words: 900 -> "15 minutes", 3600 -> "hour" (no "1"). */
export function durationWords(seconds) {
  const [unit, size] = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]]
    .find(([, length]) => seconds % length === 0);
  const n = seconds / size;
  return n === 1 ? unit : `${n} ${unit}s`;
}

/** The reader's own timezone, for times that belong to no site (tokens, users, audit). */
export const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
