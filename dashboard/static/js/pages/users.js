// Users (admins): planner accounts, their roles and site restrictions.
import { call, getJSON } from '../api.js';
import { confirmStep, field, formProblem, h, message, section, showProblems, shownOnce, table } from '../dom.js';
import { browserZone, localStamp } from '../time.js';

const ROLES = ['viewer', 'editor', 'admin'];
const when = (iso) => (iso ? localStamp(iso, browserZone) : 'never');
const userPath = (user) => `/api/v1/admin/users/${encodeURIComponent(user.id)}`;

function roleSelect(role) {
  return h('select', { name: 'role' }, ROLES.map((name) => h('option', { value: name, selected: name === role }, name)));
}

/** Tick boxes for a site restriction; none ticked means every site. */
function siteChoice(siteList, chosen) {
  const boxes = siteList.map((site) => h('input', {
    type: 'checkbox', name: 'site_ids', value: site.id, checked: Boolean(chosen?.includes(site.id)),
  }));
  const set = h('fieldset', { class: 'site-choice' },
    h('legend', {}, 'Only these sites (none ticked: every site)'),
    boxes.map((box, i) => h('label', {}, box, ` ${siteList[i].name}`)));
  return { el: set, value: () => {
    const ids = boxes.filter((box) => box.checked).map((box) => box.value);
    return ids.length ? ids : null;
  } };
}

function createForm(siteList, shown, done) {
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'off', required: true });
  const name = h('input', { name: 'display_name', autocomplete: 'off', required: true });
  const role = roleSelect('viewer');
  const sites = siteChoice(siteList, null);
  const submit = async (event) => {
    event.preventDefault();
    try {
      const body = { email: email.value, display_name: name.value, role: role.value, site_ids: sites.value() };
      const created = await call('POST', '/api/v1/admin/users', { body });
      showProblems(form, null);
      form.reset();
      shown.replaceChildren(shownOnce(`Password for ${created.user.email}`, created.password));
      await done();
    } catch (error) {
      showProblems(form, error);
    }
  };
  const form = h('form', { class: 'edit-form', novalidate: true, onsubmit: submit, 'aria-label': 'Add a user' },
    formProblem(),
    h('div', { class: 'form-grid' }, field('E-mail', email), field('Display name', name), field('Role', role)),
    sites.el,
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create user')));
  return form;
}

function editForm(user, siteList, close, done) {
  const name = h('input', { name: 'display_name', value: user.display_name });
  const role = roleSelect(user.role);
  const sites = siteChoice(siteList, user.site_ids);
  const submit = async (event) => {
    event.preventDefault();
    try {
      const body = { display_name: name.value, role: role.value, site_ids: sites.value() };
      await call('PATCH', userPath(user), { body });
      close();
      await done(`Saved ${user.email}.`);
    } catch (error) {
      showProblems(form, error);
    }
  };
  const form = h('form', { class: 'edit-form', novalidate: true, onsubmit: submit, 'aria-label': `Edit ${user.email}` },
    h('h3', {}, `Edit ${user.email}`),
    formProblem(),
    h('div', { class: 'form-grid' }, field('Display name', name), field('Role', role)),
    sites.el,
    h('p', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save changes'), ' ',
      h('button', { type: 'button', onclick: close }, 'Cancel')));
  return form;
}

export default async function users(page, state, siteList, app) {
  const siteNames = Object.fromEntries(siteList.map((site) => [site.id, site.name]));
  const shown = h('div', {});
  const work = h('div', { class: 'work' });
  const list = h('div', {}, message('loading', 'Loading…'));
  const close = () => work.replaceChildren();
  /** Re-read the list, then say what was done (so the message never precedes the change). */
  const load = async (done = '') => {
    try {
      const body = await getJSON('/api/v1/admin/users');
      list.replaceChildren(table('Planner accounts', ['Name', 'E-mail', 'Role', 'Sites', 'Status', 'Sign-in', 'Created', 'Last sign-in', 'Change'],
        body.users.map((user) => [
          user.display_name,
          user.email,
          user.role,
          user.site_ids ? user.site_ids.map((id) => siteNames[id] || id).join(', ') : 'every site',
          user.disabled ? 'disabled' : 'active',
          user.sso ? 'single sign-on' : 'password',
          when(user.created_at),
          when(user.last_login_at),
          user.email === app.me.email ? '(you)' : actions(user),
        ])));
    } catch (error) {
      list.replaceChildren(message('error', `Could not load the users: ${error.message}`));
    }
    work.replaceChildren(done ? message('done', done) : '');
  };
  const failed = (error) => work.replaceChildren(message('error', error.message));
  const actions = (user) => h('span', { class: 'row-actions' },
    h('button', { type: 'button', 'aria-label': `Edit ${user.email}`, onclick: () => {
      work.replaceChildren(editForm(user, siteList, close, load));
      work.querySelector('input')?.focus();
    } }, 'Edit'), ' ',
    h('button', { type: 'button', 'aria-label': `${user.disabled ? 'Enable' : 'Disable'} ${user.email}`, onclick: () =>
      call('PATCH', userPath(user), { body: { disabled: !user.disabled } })
        .then(() => load(`${user.disabled ? 'Enabled' : 'Disabled'} ${user.email}.`), failed),
    }, user.disabled ? 'Enable' : 'Disable'), ' ',
    h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${user.email}`, onclick: () => {
      work.replaceChildren(confirmStep({
        question: `Delete the account ${user.email}? Its sessions end now.`,
        label: 'Delete user',
        run: async () => {
          await call('DELETE', userPath(user));
          await load(`Deleted ${user.email}.`);
        },
        onCancel: close,
      }));
      work.querySelector('button')?.focus();
    } }, 'Delete'));
  page.append(
    h('header', { class: 'page-head' }, h('h1', {}, 'Users'),
      h('p', {}, `Viewers read private sites and device health; editors also change sites and cameras; admins also manage users and tokens. Times in your timezone (${browserZone}).`)),
    section('Add a user', createForm(siteList, shown, load), shown),
    section('Accounts', work, list),
  );
  await load();
}
