// Device tokens (admins): who may report for which camera; issue, see last use, revoke.
import { call, getJSON } from '../api.js';
import { confirmStep, field, formProblem, h, message, section, showProblems, shownOnce, table } from '../dom.js';
import { browserZone, localStamp } from '../time.js';

const when = (iso) => (iso ? localStamp(iso, browserZone) : '–');

function tokenRows(list, revoke) {
  return list.map((token) => [
    token.token_id,
    token.kind,
    token.camera_id || '–',
    token.name || '–',
    when(token.created_at),
    token.expires_at ? when(token.expires_at) : 'never',
    token.last_used_at ? when(token.last_used_at) : 'never',
    h('span', { class: `status token-${token.status}` }, token.status),
    token.status === 'live'
      ? h('button', { type: 'button', class: 'danger', onclick: () => revoke(token), 'aria-label': `Revoke ${token.token_id}` }, 'Revoke')
      : '–',
  ]);
}

function issueForm(cameras, issued, done) {
  const camera = h('select', { name: 'camera_id', required: true }, cameras.map((id) => h('option', { value: id }, id)));
  const days = h('input', { name: 'expires_in_days', type: 'number', min: 1, step: 1, inputmode: 'numeric' });
  const rotate = h('input', { name: 'rotate', type: 'checkbox' });
  const submit = async (event) => {
    event.preventDefault();
    try {
      const token = await call('POST', `/api/v1/admin/cameras/${encodeURIComponent(camera.value)}/tokens`, {
        params: { expires_in_days: days.value, rotate: rotate.checked || null },
      });
      showProblems(form, null);
      const expiry = token.expires_at ? `Expires ${when(token.expires_at)}.` : 'Does not expire.';
      issued.replaceChildren(shownOnce(`Device token ${token.token_id} for ${token.camera_id}`, token.token),
        h('p', { class: 'hint', dataset: { tokenId: token.token_id } }, expiry));
      done();
    } catch (error) {
      showProblems(form, error);
    }
  };
  const form = h('form', { class: 'edit-form', novalidate: true, onsubmit: submit, 'aria-label': 'Issue a device token' },
    formProblem(),
    h('div', { class: 'form-grid' },
      field('Camera', camera),
      field('Expires after (days)', days, 'Empty: never expires.'),
      field('Revoke the camera\'s other tokens', rotate, 'For replacing a lost or leaked token.')),
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Issue token')));
  return form;
}

export default async function tokens(page, state, siteList) {
  const cameras = siteList.flatMap((site) => site.cameras.map((camera) => camera.id)).sort();
  const issued = h('div', {});
  const work = h('div', { class: 'work' });
  const list = h('div', {}, message('loading', 'Loading…'));
  const load = async () => {
    try {
      const body = await getJSON('/api/v1/admin/tokens');
      list.replaceChildren(body.tokens.length
        ? table('Tokens, newest first', ['Token', 'Kind', 'Camera', 'Name', 'Created', 'Expires', 'Last used', 'Status', 'Revoke'],
          tokenRows(body.tokens, revoke))
        : message('empty', 'No tokens have been issued yet.'));
    } catch (error) {
      list.replaceChildren(message('error', `Could not load the tokens: ${error.message}`));
    }
  };
  const revoke = (token) => {
    work.replaceChildren(confirmStep({
      question: `Revoke ${token.token_id}${token.camera_id ? ` of camera ${token.camera_id}` : ''}? Whatever uses it is refused from now on.`,
      label: 'Revoke token',
      run: async () => {
        await call('DELETE', `/api/v1/admin/tokens/${encodeURIComponent(token.token_id)}`);
        await load();
        work.replaceChildren(message('done', `Revoked ${token.token_id}.`));
      },
      onCancel: () => work.replaceChildren(),
    }));
    work.querySelector('button')?.focus();
  };
  page.append(
    h('header', { class: 'page-head' }, h('h1', {}, 'Device tokens'),
      h('p', {}, `A camera's worker reports with its token. Times in your timezone (${browserZone}).`)),
    section('Issue a device token', cameras.length
      ? issueForm(cameras, issued, load) : message('empty', 'Register a camera first.'), issued),
    section('Tokens', work, list),
  );
  await load();
}
