// Open data: licence, feed URLs, and CSV downloads of each public site for the chosen UTC days.
import { h, message, section, table } from '../dom.js';
import { addDays, daysBetween } from '../time.js';

const MAX_DAYS = { '15min': 31, '1h': 366 };
const FEED_NAMES = {
  catalog: 'Catalogue (DCAT, JSON-LD)',
  sites_geojson: 'Sites (GeoJSON)',
  sites_json: 'Sites (JSON)',
  sites_csv: 'Sites (CSV)',
};

/** An open-data CSV (`counts` or `movements`) of `site` for whole UTC days `from`..`to`. */
function feedCsvUrl(feed, site, granularity, from, to) {
  const query = new URLSearchParams({ granularity, from: `${from}T00:00:00Z`, to: `${addDays(to, 1)}T00:00:00Z` });
  return `/api/v1/open/sites/${site}/${feed}.csv?${query}`;
}

function csvLink(site, granularity, state, feed = 'counts') {
  if (daysBetween(state.from, state.to) > MAX_DAYS[granularity]) return `at most ${MAX_DAYS[granularity]} days`;
  const stem = `tally-${site.id}-${feed === 'counts' ? '' : `${feed}-`}${state.from}-${state.to}-${granularity}`;
  return h('a', {
    href: feedCsvUrl(feed, site.id, granularity, state.from, state.to),
    download: `${stem}.csv`,
    dataset: { csv: `${site.id}-${feed === 'counts' ? '' : `${feed}-`}${granularity}` },
  }, `CSV, ${granularity}`);
}

export default async function open(page, state, sites, app) {
  const { meta } = app;
  const licence = meta.licence;
  const published = sites.filter((s) => s.public);
  page.append(
    section('Licence',
      h('p', {}, 'Counts are published under ', h('a', { href: licence.url, rel: 'license' }, licence.id), '.'),
      h('p', {}, 'Attribution: ', h('q', {}, licence.attribution))),
    section('Feeds', h('ul', { class: 'feeds' }, Object.entries(meta.open_data).map(([key, path]) =>
      h('li', {}, h('a', { href: path }, FEED_NAMES[key] || key), ' ', h('code', {}, new URL(path, window.location.href).href))))),
    section('Counts downloads',
      h('p', {}, `UTC days ${state.from} to ${state.to}. Only buckets with data appear; a missing bucket means no data, never zero traffic.`),
      published.length
        ? table('Counts and turning movements per public site',
          ['Site', 'Counts, hourly', 'Counts, 15-minute', 'Turning movements, hourly', 'Turning movements, 15-minute'],
          published.map((site) => [site.name, csvLink(site, '1h', state), csvLink(site, '15min', state),
            csvLink(site, '1h', state, 'movements'), csvLink(site, '15min', state, 'movements')]))
        : message('empty', 'No site is published as open data yet.')),
  );
}
