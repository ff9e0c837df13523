// Camera set-up (editors): the scene map (density and flow, never an image), the worker's
// proposals and the draft's lines, zones and calibration; saving pushes a new configuration
// version that the worker pulls at its next heartbeat. A live check shows what it counts.
import { call, getJSON } from '../api.js';
import { field, h, message, percent, section } from '../dom.js';
import { go } from '../nav.js';
import { toQuery } from '../state.js';
import { localStamp } from '../time.js';
import { calibrationPanel } from '../setup/calibration.js';
import { Draft } from '../setup/draft.js';
import { sceneEditor } from '../setup/editor.js';
import { itemForms } from '../setup/forms.js';
import { NOMINAL_FRAME, coordinateMode } from '../setup/geometry.js';
import { livePanel } from '../setup/live.js';
import { sceneSummary } from '../setup/scene.js';

const POLL_MS = 5000;

/** GET `path`; a 404 is an answer here (nothing stored yet): `{ missing: detail }`. */
async function maybe(path) {
  try {
    return await getJSON(path);
  } catch (error) {
    if (error.status === 404) return { missing: error.message };
    throw error;
  }
}

function cameraPicker(state, site, camera) {
  const select = h('select', { name: 'camera' },
    site.cameras.map((c) => h('option', { value: c.id, selected: c.id === camera.id }, c.name ? `${c.name} (${c.id})` : c.id)));
  select.addEventListener('change', () => go(toQuery({ ...state, camera: select.value })));
  return h('form', { class: 'camera-picker', 'aria-label': 'Camera', onsubmit: (e) => e.preventDefault() },
    field('Camera', select));
}

/** What the stored configuration is and what the worker did with it. */
function statusView(config, timeZone) {
  if (config.missing) {
    return [h('p', {}, 'No configuration stored for this camera yet: it counts with its site file\'s set-up. Saving creates the first version.')];
  }
  const pull = config.config_pull;
  const pulled = !pull ? 'The worker has not reported pulling a configuration yet.'
    : pull.status === 'applied' ? `Last pull: version ${pull.version} applied ${localStamp(pull.at, timeZone)}.`
      : `Last pull: version ${pull.version} refused ${localStamp(pull.at, timeZone)}: ${pull.reason || 'no reason given'}.`;
  return [
    h('p', { dataset: { version: String(config.version) } },
      `Latest version: ${config.version}, saved ${localStamp(config.created_at, timeZone)} by ${config.created_by}`,
      config.note ? ` (“${config.note}”)` : '', '.'),
    h('p', { dataset: { reported: String(config.reported_version ?? '') } }, config.reported_version == null
      ? 'The worker has not reported which version it counts with.'
      : `The worker counts with version ${config.reported_version}${config.reported_version === config.version ? ' (the latest)' : ''}.`),
    h('p', { class: pull?.status === 'refused' ? 'refused' : '' }, pulled),
  ];
}

function proposalItem(draft, proposal, kind) {
  const accept = h('button', { type: 'button', 'aria-label': `Accept proposal ${proposal.name}` }, 'Accept proposal');
  accept.addEventListener('click', () => {
    if (kind === 'line') draft.addLine(proposal.points.map((p) => [...p]), proposal.name, proposal.direction_names);
    else draft.addZone(proposal.polygon.map((p) => [...p]), proposal.name, proposal.lanes);
    accept.disabled = true;
    accept.textContent = 'Accepted';
  });
  const what = kind === 'line'
    ? Object.entries(proposal.direction_names).map(([g, label]) => `${g}: ${label}`).join(', ')
    : `${proposal.lanes} lane${proposal.lanes === 1 ? '' : 's'}`;
  return h('li', { class: 'proposal-item', dataset: { proposal: proposal.name } },
    h('p', {}, h('strong', {}, `${kind === 'line' ? 'Line' : 'Zone'} ${proposal.name}`),
      ` · confidence ${percent(proposal.confidence)} · ${what}`),
    h('p', { class: 'hint' }, proposal.reason),
    accept);
}

function proposalList(draft, map) {
  if (!map) return [message('empty', 'Proposals come with the scene map.')];
  const items = [
    ...map.proposals.lines.map((p) => proposalItem(draft, p, 'line')),
    ...map.proposals.zones.map((p) => proposalItem(draft, p, 'zone')),
  ];
  return items.length ? [h('ul', { class: 'proposals' }, items)]
    : [message('empty', 'The worker proposes nothing from this scene map (too little traffic seen).')];
}

function countingForm(draft, classes, intervals) {
  const interval = h('select', { name: 'interval_seconds' },
    intervals.map((seconds) => h('option', { value: seconds, selected: seconds === draft.interval_seconds }, `${seconds} s`)));
  interval.addEventListener('change', () => { draft.interval_seconds = Number(interval.value); });
  const boxes = classes.map((name) => h('input', {
    type: 'checkbox', name: 'classes', value: name, checked: !draft.classes || draft.classes.includes(name),
  }));
  const chosen = () => {
    const picked = boxes.filter((box) => box.checked).map((box) => box.value);
    // Every class ticked is "count whatever is detected", the default a set-up leaves unset.
    draft.classes = picked.length === classes.length ? null : picked;
  };
  boxes.forEach((box) => box.addEventListener('change', chosen));
  return h('div', { class: 'counting' },
    field('Report interval', interval, 'Counts are summed per interval, aligned to the clock.'),
    h('fieldset', { class: 'classes' }, h('legend', {}, 'Vehicle classes counted on the lines'),
      boxes.map((box) => h('label', {}, box, ` ${box.value}`))));
}

/** Where each problem of a refused save belongs. pydantic's `loc` (["body", "setup", "lines",
 * 0, …]) names a line or zone by index; a camera-wide rule names it in its text. */
function locate(error, draft) {
  const detail = Array.isArray(error.detail) ? error.detail : [{ loc: [], msg: error.message }];
  return detail.flatMap(({ loc = [], msg }) => {
    const text = String(msg).replace(/^Value error, /, '');
    const [, , list, index, ...rest] = loc;
    if ((list === 'lines' || list === 'zones') && Number.isInteger(index)) {
      return [{ kind: list.slice(0, -1), index, text: rest.length ? `${rest.join('.')}: ${text}` : text }];
    }
    return text.split('; ').map((part) => {
      const named = /\b(line|zone) '([^']+)'/.exec(part);
      const at = named ? draft.itemsOf(named[1]).findIndex((item) => item.name === named[2]) : -1;
      return at >= 0 ? { kind: named[1], index: at, text: part } : { text: part };
    });
  });
}

/** When a scene map was requested and none newer has arrived since (else null). */
function pendingRequest(answer) {
  const { requested_at: requested, received_at: received } = answer;
  return requested && (!received || Date.parse(requested) > Date.parse(received)) ? requested : null;
}

function modeNote(mode) {
  return mode.reference
    ? `Coordinates are saved as pixels of the configuration's reference resolution, ${mode.reference[0]} × ${mode.reference[1]}.`
    : 'Coordinates are saved relative to the frame (0–1).';
}

/** The editing workspace over `draft`: map, proposals, lines, zones, counting, calibration. */
function workspace(draft, scene, { camera, site, app }) {
  const forms = itemForms(draft);
  const editor = sceneEditor(draft, { scene, classes: app.meta.vehicle_classes, onRename: forms.focusName });
  const calibration = calibrationPanel(draft, { cameraId: camera.id, site, tiles: app.meta.map });
  const { width, height } = draft.mode.frame;
  const info = scene ? h('p', { class: 'hint scene-info' }, sceneSummary(scene),
    `. Learnt ${localStamp(scene.window_start, site.timezone)}–${localStamp(scene.window_end, site.timezone)}.`)
    : h('p', { class: 'hint scene-info' }, `Without a scene map the frame is drawn as ${width} × ${height} pixels`,
      draft.mode.reference ? ' (the reference resolution).' : ' (its shape assumed: 16:9).');
  const parts = {
    map: [info, editor, h('p', { class: 'hint' }, modeNote(draft.mode))],
    proposals: proposalList(draft, scene),
    lines: forms.lines,
    zones: forms.zones,
    counting: countingForm(draft, app.meta.vehicle_classes, app.meta.interval_choices),
    calibration: calibration.el,
  };
  return { parts, forms, stop: calibration.stop };
}

export default async function setup(page, state, sites, app) {
  const site = sites.find((s) => s.id === state.site);
  const head = h('header', { class: 'page-head' }, h('h1', {}, 'Camera set-up'));
  page.append(head);
  if (!site) {
    page.append(message('empty', 'No sites are registered yet.'));
    return null;
  }
  if (!site.cameras.length) {
    head.append(h('p', {}, site.name));
    page.append(message('empty', `${site.name} has no cameras yet: register one first.`));
    return null;
  }
  const camera = site.cameras.find((c) => c.id === state.camera) || site.cameras[0];
  window.history.replaceState(null, '', toQuery({ ...state, camera: camera.id }));
  const base = `/api/v1/cameras/${encodeURIComponent(camera.id)}`;
  head.append(h('p', {}, `${site.name} · camera ${camera.id}`), cameraPicker(state, site, camera));
  const [config, sceneAnswer] = await Promise.all([maybe(`${base}/config`), maybe(`${base}/scene-map`)]);
  return setupPage(page, { config, sceneAnswer, camera, site, app, base });
}

function setupPage(page, { config: loaded, sceneAnswer, camera, site, app, base }) {
  const timeZone = site.timezone;
  let config = loaded;
  let scene = sceneAnswer.scene_map || null;
  const reference = config.missing ? null : config.setup.reference_resolution ?? null;
  const frameOf = (map) => (map ? { width: map.frame_width, height: map.frame_height }
    : reference ? { width: reference[0], height: reference[1] } : NOMINAL_FRAME);
  let draft = new Draft(config.missing ? null : config.setup, coordinateMode(reference, frameOf(scene)));
  let work = null;
  let awaiting = false;
  const timers = new Set();
  const live = livePanel(camera.id, timeZone);

  const status = h('div', { class: 'config-status' });
  const sceneState = h('div', { class: 'scene-state' });
  const slots = Object.fromEntries(['map', 'proposals', 'lines', 'zones', 'counting', 'calibration']
    .map((name) => [name, h('div', { class: `slot slot-${name}` })]));

  const later = (fn) => {
    const timer = window.setTimeout(() => { timers.delete(timer); if (page.isConnected) fn(); }, POLL_MS);
    timers.add(timer);
  };

  function build() {
    work?.stop();
    draft.forgetViews();
    work = workspace(draft, scene, { camera, site, app });
    for (const [name, slot] of Object.entries(slots)) slot.replaceChildren(...[work.parts[name]].flat().filter(Boolean));
  }

  function drawStatus() {
    status.replaceChildren(...statusView(config, timeZone));
  }

  /** Keep the worker's report on the stored version fresh while the page is open, and say
   * so (once: the page is stale then) when someone else saves a newer version. */
  async function refreshStatus() {
    try {
      const latest = await getJSON(`${base}/config`);
      if (latest.version > config.version) {
        staleNotice(`Version ${latest.version} was saved by ${latest.created_by} since you opened this page.`);
        return;
      }
      // An answer overtaken by this page's own save is older still: keep the saved version.
      if (latest.version === config.version) config = latest;
      drawStatus();
    } catch {
      // The next round tries again; the page keeps what it showed.
    }
    later(refreshStatus);
  }

  // --- the scene map: show, request, wait -------------------------------------------------
  function drawSceneState(answer, waiting) {
    const request = h('button', { type: 'button', onclick: () => requestMap(answer) },
      scene ? 'Request a fresh scene map' : 'Request a scene map');
    sceneState.replaceChildren(
      scene ? h('p', { class: 'hint' }, `Scene map received ${localStamp(answer.received_at, timeZone)}.`)
        : h('div', { class: 'no-scene' },
          h('p', {}, 'No scene map yet. It shows where vehicles drive (how many and which way) without any image; the worker learns it over a few minutes of stream once you request it.'),
          h('p', { class: 'hint' }, answer.missing)),
      waiting ? h('p', { role: 'status', class: 'waiting' }, `Requested ${localStamp(waiting, timeZone)}: waiting for the worker to learn and send it (checked every ${POLL_MS / 1000} s).`) : '',
      h('p', { class: 'actions' }, request));
  }

  async function requestMap(answer) {
    try {
      const { requested_at: requested } = await call('POST', `${base}/scene-map/request`);
      drawSceneState(answer, requested);
      awaitMap(answer.received_at);
    } catch (error) {
      sceneState.append(message('error', `Could not request a scene map: ${error.message}`));
    }
  }

  /** Check every few seconds until a map newer than `previous` arrives (one watch at a time). */
  function awaitMap(previous) {
    if (awaiting) return;
    awaiting = true;
    later(() => checkMap(previous));
  }

  async function checkMap(previous) {
    const answer = await maybe(`${base}/scene-map`).catch(() => ({ missing: 'could not check' }));
    if (!answer.scene_map || answer.received_at === previous) {
      later(() => checkMap(previous));
      return;
    }
    awaiting = false;
    const before = draft.mode.frame;
    scene = answer.scene_map;
    const frame = frameOf(scene);
    if (frame.width !== before.width || frame.height !== before.height) {
      // The frame's pixels changed: carry the draft over through configuration units.
      draft = new Draft(draft.toSetup(), coordinateMode(draft.mode.reference, frame));
    }
    build();
    drawSceneState(answer, null);
  }

  // --- saving --------------------------------------------------------------------------------
  const note = h('input', { name: 'note', maxlength: 500, autocomplete: 'off' });
  const saveButton = h('button', { type: 'submit', class: 'primary' }, 'Save as a new version');
  const saveProblem = h('div', { class: 'form-problem', role: 'alert' });
  const saved = h('p', { class: 'message done', role: 'status' });

  function staleNotice(text) {
    saveProblem.replaceChildren(
      h('p', {}, `${text} Saving now would undo their change.`),
      h('button', { type: 'button', onclick: () => go(window.location.search) }, 'Load the latest version (discards your changes)'));
  }

  function showRefusal(error) {
    if (error.status === 409) {
      staleNotice(error.message);
      return;
    }
    const rest = work.forms.showProblems(error.status === 422 ? locate(error, draft) : [{ text: error.message }]);
    const lines = rest.length ? rest.map((p) => p.text) : ['Please correct the lines and zones marked above.'];
    saveProblem.replaceChildren(...lines.map((text) => h('p', {}, text)));
  }

  async function save(event) {
    event.preventDefault();
    saveProblem.replaceChildren();
    saved.textContent = '';
    work.forms.showProblems([]);
    saveButton.disabled = true;
    const first = Boolean(config.missing);
    try {
      const body = { setup: draft.toSetup(), note: note.value, base_version: first ? null : config.version };
      config = await call('PUT', `${base}/config`, { body });
      note.value = '';
      saved.textContent = `Saved version ${config.version}. The worker switches to it at its next heartbeat and reports back here.`;
      drawStatus();
      if (first) later(refreshStatus);
    } catch (error) {
      showRefusal(error);
    } finally {
      saveButton.disabled = false;
    }
  }

  const saveForm = h('form', { class: 'save-form', onsubmit: save, 'aria-label': 'Save the set-up' },
    field('Note for this version (optional)', note), saveProblem, h('p', { class: 'actions' }, saveButton), saved);

  drawStatus();
  const pending = pendingRequest(sceneAnswer);
  drawSceneState(sceneAnswer, pending);
  if (pending) awaitMap(sceneAnswer.received_at);
  build();
  page.append(
    section('Configuration', status),
    h('div', { class: 'setup-layout' },
      section('Scene map', sceneState, slots.map),
      h('div', { class: 'setup-side' },
        section('Live check', h('p', { class: 'hint' }, 'Crossings counted in the last minutes: let a few vehicles pass and watch the numbers.'), live.el),
        section('Proposals', slots.proposals))),
    h('div', { class: 'two-up' }, section('Lines', slots.lines), section('Zones', slots.zones)),
    h('div', { class: 'two-up' }, section('Counting', slots.counting), section('Calibration', slots.calibration)),
    section('Save', saveForm),
  );
  live.start();
  if (!config.missing) later(refreshStatus);
  return () => {
    live.stop();
    work?.stop();
    for (const timer of timers) window.clearTimeout(timer);
    timers.clear();
  };
}
