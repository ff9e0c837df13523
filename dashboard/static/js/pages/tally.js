// Validation tally (editors): someone at the roadside taps once per vehicle, by line, direction
// and class, for whole report intervals; the API compares that tally with the camera's own
// counts of the same window. The tally lives in the page (and localStorage) first and is sent
// whole after every change (the PUT is idempotent), so a dropped request loses nothing.
import { call, getJSON } from '../api.js';
import { card, confirmStep, field, formProblem, h, message, number, percent, section, showProblems, table } from '../dom.js';
import { go } from '../nav.js';
import { toQuery } from '../state.js';
import { localStamp } from '../time.js';

const TICK_MS = 250;
const RETRY_MS = 3000;
const POLL_MS = 3000;
const DEFAULT_MINUTES = 15;
const STORE_PREFIX = 'tally-validation-';
/** The 4xx answers that a resend may cure; any other 4xx is final (a lost connection or a 5xx is retried). */
const TRANSIENT = new Set([408, 429]);

const cameraPath = (camera) => `/api/v1/cameras/${encodeURIComponent(camera)}`;
const sessionPath = (id) => `/api/v1/validations/${encodeURIComponent(id)}`;
const keyOf = (line, direction, cls) => `${line}/${direction}/${cls}`;
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const finite = (value) => (Number.isFinite(value) ? value : null);

/** Whole minutes of a session's window. */
export function minutesOf(session) {
  return Math.round((Date.parse(session.ends_at) - Date.parse(session.starts_at)) / 60_000);
}

/** "1 minute", "15 minutes". */
const minutesText = (session) => {
  const minutes = minutesOf(session);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
};

/** A camera as people know it: its name, and its id when that differs. */
export function cameraName(camera) {
  return camera.name && camera.name !== camera.id ? `${camera.name} (${camera.id})` : camera.id;
}

/** Finished validations that have an accuracy, newest first (as the API lists them). */
export function scored(sessions) {
  return sessions.filter((s) => s.status === 'finished' && s.accuracy != null);
}

/** "2026-03-02 08:15 · 15 min · 96.0 %", marked while the camera's reports are still due. */
export function validationSummary(session, timeZone) {
  const waiting = session.result && !session.result.complete ? ' (waiting for reports)' : '';
  return `${localStamp(session.starts_at, timeZone)} · ${minutesOf(session)} min · ${percent(session.accuracy)}${waiting}`;
}

/** Timers of one view, all stopped when the reader leaves it. */
function timerGroup() {
  const stops = new Set();
  const track = (stop) => {
    stops.add(stop);
    return stop;
  };
  return {
    every(ms, run) {
      const id = window.setInterval(run, ms);
      track(() => window.clearInterval(id));
    },
    after(ms, run) {
      const stop = track(() => window.clearTimeout(id));
      const id = window.setTimeout(() => {
        stops.delete(stop);
        run();
      }, ms);
    },
    stop() {
      stops.forEach((stop) => stop());
      stops.clear();
    },
  };
}

/** Milliseconds to add to this device's clock to read the server's (a tablet's may be off). */
async function clockOffset(camera) {
  const sent = Date.now();
  try {
    const live = await getJSON(`${cameraPath(camera)}/live`, { minutes: 1 });
    return Date.parse(live.now) - (sent + Date.now()) / 2;
  } catch {
    return 0; // the device's own clock, then: tallying still works
  }
}

function clockText(ms, timeZone) {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).format(ms);
}

/** "4:05" or "1:02:03" until `ms` has passed (never negative). */
function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const pad = (n) => String(n).padStart(2, '0');
  const [hours, minutes, seconds] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return hours ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${minutes}:${pad(seconds)}`;
}

/** The tally this browser kept for a session (survives a reload or a lapsed sign-in). */
function kept(id) {
  try {
    return JSON.parse(window.localStorage.getItem(STORE_PREFIX + id));
  } catch {
    return null;
  }
}

function keep(id, tally) {
  try {
    window.localStorage.setItem(STORE_PREFIX + id, JSON.stringify(tally));
  } catch {
    // Storage full or refused: the page's own copy still holds the tally.
  }
}

const forget = (id) => window.localStorage.removeItem(STORE_PREFIX + id);

const sameTally = (a, b) => {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((key) => (a[key] || 0) === (b[key] || 0));
};

/**
 * One session's tally and its copy on the server. `save()` sends the whole tally until the
 * server holds the latest revision; `onState()` hears each change of that; a refusal that a
 * resend cannot cure (the session finished elsewhere) stops the sending and goes to `onRefused`.
 */
function tallySync(session, { onState, onRefused }) {
  const local = kept(session.id);
  const manual = { ...(local?.manual ?? session.manual) };
  const history = [...(local?.history ?? [])];
  let revision = local && !sameTally(local.manual, session.manual) ? 1 : 0;
  let saved = 0;
  let running = null;
  let refused = false;

  const flush = async () => {
    while (!refused && saved < revision) {
      const sending = revision;
      try {
        await call('PUT', `${sessionPath(session.id)}/tally`, { body: { manual: { ...manual } } });
        saved = Math.max(saved, sending);
      } catch (error) {
        refused = error.status >= 400 && error.status < 500 && !TRANSIENT.has(error.status);
        onState(false);
        if (refused) onRefused(error);
        return false;
      }
    }
    onState(saved >= revision);
    return saved >= revision;
  };
  const save = () => {
    running ??= flush().finally(() => { running = null; });
    return running;
  };
  const changed = () => {
    revision += 1;
    keep(session.id, { manual, history });
    onState(false);
    save();
  };
  return {
    count: (key) => manual[key] || 0,
    get canUndo() { return history.length > 0; },
    get saved() { return saved >= revision; },
    add(key) {
      manual[key] = (manual[key] || 0) + 1;
      history.push(key);
      changed();
    },
    /** Take back the last tap; returns its key (null when there is none). */
    undo() {
      const key = history.pop();
      if (key == null) return null;
      manual[key] = Math.max(0, (manual[key] || 0) - 1);
      if (!manual[key]) delete manual[key];
      changed();
      return key;
    },
    save,
    retry: () => (refused || saved >= revision ? null : save()),
  };
}

/** A heading that takes the focus when its view appears (keyboard and screen-reader users). */
const viewHeading = (text) => h('h2', { id: 'tally-heading', tabindex: '-1' }, text);

function tapButton(key, cls, count, onTap) {
  const value = h('span', { class: 'tap-count' }, number.format(count));
  const button = h('button', { type: 'button', class: 'tap', dataset: { key }, onclick: () => onTap(key) },
    h('span', { class: 'tap-class' }, capital(cls)), value);
  return { button, value };
}

/** One group of class buttons per line and direction, and their running totals. */
function tapGroups(session, tally, onTap) {
  const buttons = new Map();
  const totals = [];
  const groups = session.lines.flatMap(({ line, directions }) => directions.map((direction) => {
    const keys = session.classes.map((cls) => keyOf(line, direction, cls));
    const total = h('span', { class: 'tally-group-total' });
    const update = () => { total.textContent = `: ${number.format(keys.reduce((n, key) => n + tally.count(key), 0))}`; };
    totals.push(update);
    const row = session.classes.map((cls) => {
      const made = tapButton(keyOf(line, direction, cls), cls, tally.count(keyOf(line, direction, cls)), onTap);
      buttons.set(made.button.dataset.key, made);
      return made.button;
    });
    return h('fieldset', { class: 'tally-group' },
      h('legend', {}, `${line} · ${direction}`, total), h('div', { class: 'tally-buttons' }, row));
  }));
  const show = (key) => {
    const made = buttons.get(key);
    made.value.textContent = number.format(tally.count(key));
    totals.forEach((update) => update());
  };
  totals.forEach((update) => update());
  return { el: h('div', { class: 'tally-groups' }, groups), buttons, show };
}

const PHASES = {
  waiting: { timer: 'Counting starts in', text: (at) => `Get ready: counting starts at ${at.start}.` },
  counting: { timer: 'Time left', text: (at) => `Counting until ${at.end}: tap once per vehicle as it crosses.` },
  ended: { timer: 'Window ended', text: (at) => `The window ended at ${at.end}. Finish to compare with the camera.` },
};

/** A session's window on the server's clock: its phase at any moment, and its times as text. */
function sessionWindow(session, ctx) {
  const start = Date.parse(session.starts_at);
  const end = Date.parse(session.ends_at);
  return {
    start,
    end,
    at: { start: clockText(start, ctx.timeZone), end: clockText(end, ctx.timeZone) },
    now: () => Date.now() + ctx.offset,
    phase: (moment) => (moment < start ? 'waiting' : moment < end ? 'counting' : 'ended'),
  };
}

/** What the phase is, the countdown to its end, and why a tap was not counted. */
function phaseBar(win) {
  const phaseText = h('p', { class: 'tally-phase', role: 'status' });
  const timerLabel = h('span', { class: 'tally-timer-label' });
  const timerValue = h('span', { class: 'tally-timer-value', role: 'timer' });
  const refusal = h('p', { class: 'tally-refused', role: 'alert' });
  return {
    phaseText,
    refusal,
    timer: h('p', { class: 'tally-timer' }, timerLabel, timerValue),
    refuse(moment) {
      refusal.textContent = moment < win.start
        ? `Not counted: counting starts at ${win.at.start}.`
        : `Not counted: the window ended at ${win.at.end}.`;
    },
    clear: () => { refusal.textContent = ''; },
    show(phase, moment) {
      timerValue.textContent = countdown((phase === 'waiting' ? win.start : win.end) - moment);
      timerLabel.textContent = PHASES[phase].timer;
      phaseText.textContent = PHASES[phase].text(win.at);
    },
  };
}

function flash(button) {
  button.classList.remove('tapped');
  void button.offsetWidth; // restart the animation
  button.classList.add('tapped');
}

/** Send the last taps, then close the session; the API compares it once the window is over. */
async function finishSession(session, tally, ctx) {
  if (!(await tally.save())) throw new Error('the tally is not saved yet; check the connection and try again');
  await call('POST', `${sessionPath(session.id)}/finish`);
  forget(session.id);
  ctx.showResult(session.id);
}

function discardStep(session, ctx, close) {
  return confirmStep({
    question: 'Discard this validation? Its tally is thrown away and nothing is compared.',
    label: 'Discard validation',
    run: async () => {
      await call('POST', `${sessionPath(session.id)}/cancel`);
      forget(session.id);
      ctx.reload();
    },
    onCancel: close,
  });
}

/** The tally itself: countdowns, one button per line, direction and class, undo and finish. */
function tallyView(session, ctx, timers) {
  const win = sessionWindow(session, ctx);
  const bar = phaseBar(win);
  const savedText = h('p', { class: 'tally-saved', role: 'status' });
  const problem = formProblem();
  const work = h('div', { class: 'work' });
  const panel = h('section', { class: 'panel tally', 'aria-labelledby': 'tally-heading', dataset: { session: session.id } });
  const showSaved = (isSaved) => {
    panel.dataset.saved = String(isSaved);
    savedText.textContent = isSaved ? 'Saved.' : 'Not saved yet: kept on this device and sent again shortly.';
  };
  const tally = tallySync(session, {
    onState: showSaved,
    onRefused: (error) => {
      if (error.status === 409) ctx.showResult(session.id, 'This validation was finished elsewhere; later taps were not counted.');
      else problem.textContent = `The tally was refused: ${error.message}`;
    },
  });
  const undo = h('button', { type: 'button', disabled: !tally.canUndo }, 'Undo last tap');
  const finish = h('button', { type: 'button', class: 'primary', disabled: true }, 'Finish and compare');
  const groups = tapGroups(session, tally, (key) => {
    const moment = win.now();
    if (win.phase(moment) !== 'counting') {
      bar.refuse(moment);
      return;
    }
    bar.clear();
    tally.add(key);
    groups.show(key);
    flash(groups.buttons.get(key).button);
    undo.disabled = false;
  });
  let phase = null;
  const tick = () => {
    const moment = win.now();
    const next = win.phase(moment);
    bar.show(next, moment);
    if (next === phase) return;
    phase = next;
    panel.dataset.phase = phase;
    for (const { button } of groups.buttons.values()) button.setAttribute('aria-disabled', String(phase !== 'counting'));
    finish.disabled = phase !== 'ended';
    if (phase === 'counting') bar.clear();
  };
  undo.addEventListener('click', () => {
    const key = tally.undo();
    if (key != null) groups.show(key);
    undo.disabled = !tally.canUndo;
  });
  finish.addEventListener('click', async () => {
    finish.disabled = true;
    problem.textContent = '';
    try {
      await finishSession(session, tally, ctx);
    } catch (error) {
      problem.textContent = `Could not finish: ${error.message}`;
      finish.disabled = phase !== 'ended';
    }
  });
  const discard = h('button', { type: 'button', class: 'danger', onclick: () => {
    work.replaceChildren(discardStep(session, ctx, () => work.replaceChildren()));
    work.querySelector('button')?.focus();
  } }, 'Discard');
  // A held-down Enter would repeat clicks: one press is one vehicle.
  groups.el.addEventListener('keydown', (event) => {
    if (event.repeat && (event.key === 'Enter' || event.key === ' ')) event.preventDefault();
  });
  panel.append(
    viewHeading(`Tally for ${ctx.camera}`),
    h('div', { class: 'tally-bar' }, h('div', { class: 'tally-state' }, bar.phaseText, savedText, bar.refusal), bar.timer),
    h('p', { class: 'hint' }, `Window ${win.at.start}–${win.at.end} (${minutesText(session)}, site time ${ctx.timeZone}).`),
    groups.el, problem, h('p', { class: 'actions tally-actions' }, undo, finish, discard), work,
  );
  showSaved(tally.saved);
  tick();
  timers.every(TICK_MS, tick);
  timers.every(RETRY_MS, tally.retry);
  tally.retry();
  return panel;
}

function resultRow(row) {
  const difference = row.automatic - row.manual;
  return [row.line, row.direction, capital(row.vehicle_class), number.format(row.manual),
    number.format(row.automatic), difference > 0 ? `+${number.format(difference)}` : number.format(difference)];
}

/** Manual against automatic, with the accuracy and how much of the window the camera covered. */
function resultParts(session, timeZone) {
  if (session.status === 'cancelled') return [message('empty', 'This validation was discarded.')];
  const { result } = session;
  if (!result) return [message('empty', 'This validation has not been finished.')];
  const totalRow = { line: 'All', direction: '', vehicle_class: '', manual: result.manual_total, automatic: result.automatic_total };
  return [
    h('div', { class: 'cards' },
      card('Accuracy', percent(session.accuracy), session.accuracy == null ? 'nothing was tallied' : '1 − |camera − manual| ÷ manual'),
      card('Manual count', number.format(result.manual_total)),
      card('Camera count', number.format(result.automatic_total)),
      card('Camera coverage', percent(result.coverage), 'share of the window the camera reported')),
    result.complete ? null
      : message('loading', "Waiting for the camera's last reports: the result is final once every interval of the window has reported."),
    table(`Manual and camera counts, ${localStamp(session.starts_at, timeZone)}, ${minutesText(session)}`,
      ['Line', 'Direction', 'Class', 'Manual', 'Camera', 'Camera − manual'],
      [...result.rows.map(resultRow), resultRow(totalRow)]),
  ].filter(Boolean);
}

/** A session's result, polled until the camera's reports for the whole window are in. */
function resultView(id, ctx, timers, notice) {
  const body = h('div', { class: 'tally-result' }, message('loading', 'Loading…'));
  const load = async () => {
    try {
      const session = await getJSON(sessionPath(id));
      body.dataset.complete = String(Boolean(session.result?.complete));
      body.replaceChildren(...resultParts(session, ctx.timeZone));
      if (session.status === 'finished' && !session.result?.complete) timers.after(POLL_MS, load);
    } catch (error) {
      body.replaceChildren(message('error', `Could not load the result: ${error.message}`));
      if (!(error.status < 500)) timers.after(POLL_MS, load); // a lost connection or a 5xx passes
    }
  };
  load();
  return h('section', { class: 'panel', 'aria-labelledby': 'tally-heading' },
    viewHeading(`Validation result for ${ctx.camera}`),
    notice ? message('done', notice) : null,
    body,
    h('p', { class: 'actions' }, h('button', { type: 'button', onclick: ctx.reload }, 'Back to validations')));
}

function startForm(ctx) {
  const minutes = h('input', { name: 'minutes', type: 'number', min: 1, max: 120, step: 1, value: DEFAULT_MINUTES, inputmode: 'numeric' });
  const start = async (event) => {
    event.preventDefault();
    try {
      const session = await call('POST', `${cameraPath(ctx.camera)}/validations`, { body: { minutes: finite(minutes.valueAsNumber) } });
      ctx.showTally(session);
    } catch (error) {
      showProblems(form, error);
    }
  };
  const form = h('form', { class: 'tally-start', novalidate: true, onsubmit: start, 'aria-label': `Start a validation of ${ctx.camera}` },
    formProblem(),
    field('Minutes to count', minutes, 'Whole report intervals: counting starts at the next interval boundary.'),
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start')));
  return form;
}

/** Start a new validation, and the camera's earlier ones with their results. */
function startView(sessions, ctx) {
  const done = sessions.filter((s) => s.status !== 'open');
  const show = (session) => h('button', {
    type: 'button', onclick: () => ctx.showResult(session.id), 'aria-label': `Show the result of ${localStamp(session.starts_at, ctx.timeZone)}`,
  }, 'Show');
  return h('div', {},
    h('section', { class: 'panel', 'aria-labelledby': 'tally-heading' },
      viewHeading(`Validate ${ctx.camera}`),
      h('p', {}, 'Stand where you can see the count lines, start, and tap once per vehicle by line, direction and class until the window ends. No imagery is used: your tally is compared with the counts the camera reports for the same minutes.'),
      startForm(ctx)),
    section('Earlier validations', done.length
      ? table(`Validations of ${ctx.camera} (site time)`, ['Started', 'Minutes', 'Status', 'Manual', 'Camera', 'Accuracy', 'Result'],
        done.map((s) => [localStamp(s.starts_at, ctx.timeZone), String(minutesOf(s)), s.status,
          s.result ? number.format(s.result.manual_total) : '–', s.result ? number.format(s.result.automatic_total) : '–',
          percent(s.accuracy), show(s)]))
      : message('empty', 'This camera has not been validated yet.')));
}

function cameraPicker(info, camera, state) {
  const select = h('select', { name: 'camera' },
    info.cameras.map((c) => h('option', { value: c.id, selected: c.id === camera.id }, cameraName(c))));
  select.addEventListener('change', () => go(toQuery({ ...state, camera: select.value })));
  return h('div', { class: 'tally-camera' }, field('Camera', select));
}

export default async function tally(page, state, sites) {
  page.append(h('header', { class: 'page-head' }, h('h1', {}, 'Validation tally'),
    h('p', {}, 'A manual count at the roadside, compared with the camera (the 15-minute check).')));
  const info = sites.find((s) => s.id === state.site);
  if (!info?.cameras.length) {
    page.append(section('Cameras', message('empty', info ? 'This site has no cameras.' : 'No sites are registered yet.')));
    return null;
  }
  const camera = info.cameras.find((c) => c.id === state.camera) || info.cameras[0];
  if (camera.id !== state.camera) window.history.replaceState(null, '', toQuery({ ...state, camera: camera.id }));
  const view = h('div', { class: 'tally-view' });
  let timers = timerGroup();
  /** Replace the view; after the reader's own action, its heading takes the focus. */
  const show = (build, focus = true) => {
    timers.stop();
    timers = timerGroup();
    view.replaceChildren(build(timers));
    if (focus) view.querySelector('h2')?.focus();
  };
  const ctx = {
    camera: camera.id,
    timeZone: info.timezone,
    offset: 0,
    showTally: (session, focus = true) => show((t) => tallyView(session, ctx, t), focus),
    showResult: (id, notice = '') => show((t) => resultView(id, ctx, t, notice)),
    reload: () => go(window.location.search),
  };
  page.append(cameraPicker(info, camera, state), view);
  const [sessions, offset] = await Promise.all([getJSON(`${cameraPath(camera.id)}/validations`), clockOffset(camera.id)]);
  ctx.offset = offset;
  sessions.filter((s) => s.status !== 'open').forEach((s) => forget(s.id)); // closed elsewhere
  const open = sessions.find((s) => s.status === 'open');
  if (open) ctx.showTally(open, false);
  else view.replaceChildren(startView(sessions, ctx));
  return () => timers.stop();
}
