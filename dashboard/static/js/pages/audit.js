// Audit log (admins): who changed what, when and from where, newest first, a page at a time.
import { getJSON } from '../api.js';
import { h, message, section, table } from '../dom.js';
import { toQuery } from '../state.js';
import { browserZone, localStamp } from '../time.js';

const PAGE_SIZE = 50;

function pager(state, events) {
  const link = (label, before) => h('a', { href: toQuery({ ...state, before }), dataset: { route: '' } }, label);
  const older = events.length === PAGE_SIZE ? link('Older events', String(events.at(-1).id)) : null;
  return h('p', { class: 'pager' }, state.before ? link('Newest events', '') : null, ' ', older);
}

export default async function audit(page, state) {
  const body = await getJSON('/api/v1/admin/audit', { limit: PAGE_SIZE, before_id: state.before });
  page.append(
    h('header', { class: 'page-head' }, h('h1', {}, 'Audit log'),
      h('p', {}, `Every editor and admin action, newest first. Times in your timezone (${browserZone}).`)),
    section(state.before ? `Events before #${state.before}` : 'Latest events',
      body.events.length
        ? table('Audit events', ['#', 'When', 'Who', 'Role', 'Action', 'Target', 'From', 'Details'],
          body.events.map((event) => [
            String(event.id),
            localStamp(event.at, browserZone),
            event.actor,
            event.role,
            event.action,
            event.target || '–',
            event.client_ip || '–',
            Object.keys(event.details || {}).length ? JSON.stringify(event.details) : '–',
          ]))
        : message('empty', 'No events yet.'),
      pager(state, body.events)),
  );
}
