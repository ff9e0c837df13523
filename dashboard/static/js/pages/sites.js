// Sites (editors): change what planners and the open data show about a site, or delete it.
import { call } from '../api.js';
import { confirmStep, field, formProblem, h, message, section, showProblems, table } from '../dom.js';
import { go } from '../nav.js';

const ZONES = Intl.supportedValuesOf('timeZone');
/** What the last change did, shown once on the re-rendered page. */
let notice = '';

/** An empty or malformed number goes as null, so that the API's own message explains it. */
const finite = (value) => (Number.isFinite(value) ? value : null);
const sitePath = (site) => `/api/v1/admin/sites/${encodeURIComponent(site.id)}`;

function reload(text) {
  notice = text;
  go(window.location.search);
}

function editForm(site, close) {
  const controls = {
    name: h('input', { name: 'name', value: site.name, maxlength: 200 }),
    road: h('input', { name: 'road', value: site.road, maxlength: 200 }),
    lat: h('input', { name: 'lat', type: 'number', step: 'any', value: site.lat }),
    lon: h('input', { name: 'lon', type: 'number', step: 'any', value: site.lon }),
    timezone: h('input', { name: 'timezone', value: site.timezone, list: 'timezones', autocomplete: 'off' }),
    description: h('textarea', { name: 'description', rows: 3, maxlength: 2000 }, site.description),
    public: h('input', { name: 'public', type: 'checkbox', checked: site.public }),
    listed: h('input', { name: 'listed', type: 'checkbox', checked: site.listed }),
  };
  const save = async (event) => {
    event.preventDefault();
    const body = {
      name: controls.name.value,
      road: controls.road.value,
      lat: finite(controls.lat.valueAsNumber),
      lon: finite(controls.lon.valueAsNumber),
      timezone: controls.timezone.value,
      description: controls.description.value,
      public: controls.public.checked,
      listed: controls.listed.checked,
    };
    try {
      await call('PUT', sitePath(site), { body });
      reload(`Saved ${body.name}.`);
    } catch (error) {
      showProblems(form, error);
    }
  };
  const form = h('form', { class: 'edit-form', novalidate: true, onsubmit: save, 'aria-label': `Edit ${site.name}` },
    h('h3', {}, `Edit ${site.name} (${site.id})`),
    formProblem(),
    h('div', { class: 'form-grid' },
      field('Name', controls.name),
      field('Road', controls.road),
      field('Latitude (WGS 84)', controls.lat),
      field('Longitude (WGS 84)', controls.lon),
      field('Timezone (IANA)', controls.timezone),
      field('Publish as open data', controls.public, 'Counts appear in the anonymous open-data feeds.'),
      field('Listed in the public register', controls.listed,
        'Citizens see where its cameras are, who runs them and what they send (never private counts).')),
    field('Description', controls.description),
    h('datalist', { id: 'timezones' }, ZONES.map((zone) => h('option', { value: zone }))),
    h('p', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save changes'), ' ',
      h('button', { type: 'button', onclick: close }, 'Cancel')));
  return form;
}

function deleteStep(site, close) {
  return confirmStep({
    question: `Delete ${site.name} (${site.id}), its cameras and every count they reported? This cannot be undone.`,
    label: 'Delete site',
    expect: site.id,
    run: async (typed) => {
      await call('DELETE', sitePath(site), { params: { confirm: typed } });
      reload(`Deleted ${site.name}.`);
    },
    onCancel: close,
  });
}

export default async function sites(page, state, siteList) {
  const work = h('div', { class: 'work' });
  const close = () => work.replaceChildren();
  const open = (make, site) => {
    work.replaceChildren(make(site, close));
    work.querySelector('input, button')?.focus();
  };
  const actions = (site) => h('span', { class: 'row-actions' },
    h('button', { type: 'button', onclick: () => open(editForm, site), 'aria-label': `Edit ${site.name}` }, 'Edit'), ' ',
    h('button', { type: 'button', class: 'danger', onclick: () => open(deleteStep, site), 'aria-label': `Delete ${site.name}` }, 'Delete'));
  page.append(
    h('header', { class: 'page-head' }, h('h1', {}, 'Sites'),
      h('p', {}, 'Change what planners and the open data show about a site. Only sites you may manage are listed.')),
    notice ? message('done', notice) : '',
    section('Every site you may manage', siteList.length
      ? table('Sites', ['Site', 'Id', 'Road', 'Location', 'Timezone', 'Open data', 'Change'],
        siteList.map((site) => [site.name, site.id, site.road || '–', `${site.lat}, ${site.lon}`,
          site.timezone, site.public ? 'published' : 'private', actions(site)]))
      : message('empty', 'No sites are registered yet.'), work),
  );
  notice = '';
}
