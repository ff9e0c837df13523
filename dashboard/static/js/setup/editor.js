// The scene map editor: an SVG in the frame's pixel coordinates with the scene layer below
// and the draft's lines, zones and calibration points on top. Points move by pointer (mouse,
// pen, touch) and by keyboard; new lines and zones are drawn by clicks, taps or a drag.
import { h } from '../dom.js';
import {
  centredLine, centredZone, clampToFrame, crossingDirections, distance, midpoint, unitOf,
} from './geometry.js';
import { markers, sceneLayer } from './scene.js';
import { pointList, s } from './svg.js';

const KEY_STEPS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
const LARGE_STEP = 10;
const INSTRUCTIONS = {
  line: 'Click or tap where the line starts, then where it ends (or drag from one end to the other). Escape cancels.',
  zone: 'Click or tap each corner of the zone; click the first corner again, press Enter or "Finish zone" to close it. Escape cancels.',
  pick: 'Click or tap the calibration points on the scene map (four or more, spread over the road). Escape stops.',
};
const PART = { line: 'end', zone: 'corner', pick: 'point' };
let editors = 0;

const rounded = ([x, y]) => `${Math.round(x)}, ${Math.round(y)}`;

function itemName(draft, kind, index) {
  if (kind === 'pick') return `Calibration point ${index + 1}`;
  return `${kind === 'line' ? 'Line' : 'Zone'} ${draft.itemsOf(kind)[index].name}`;
}

function handleLabel(draft, kind, index, point) {
  const where = rounded(draft.pointsOf(kind, index)[point]);
  if (kind === 'pick') return `${itemName(draft, kind, index)} at ${where}`;
  return `${itemName(draft, kind, index)}, ${PART[kind]} ${point + 1} at ${where}`;
}

/** The editor for `draft` over `scene` (a SceneMap or null); `onRename(kind, index)` focuses
 * the item's name field. */
export function sceneEditor(draft, { scene, classes, onRename }) {
  editors += 1;
  const { frame } = draft.mode;
  const unit = unitOf(frame);
  const step = Math.max(1, Math.round(unit / 2));
  const hintId = `scene-keys-${editors}`;
  const draftGroup = s('g', { class: 'draft' });
  const pendingGroup = s('g', { class: 'pending', 'aria-hidden': 'true' });
  const svg = s('svg', {
    viewBox: `0 0 ${frame.width} ${frame.height}`, class: 'scene-map', role: 'group', tabindex: -1,
    'aria-label': `Scene map, ${frame.width} × ${frame.height} pixels: traffic density, flow, proposals and the draft's lines and zones`,
  }, markers(unit), s('rect', { class: 'frame', x: 0, y: 0, width: frame.width, height: frame.height }),
  sceneLayer(scene, classes), draftGroup, pendingGroup);
  const status = h('p', { class: 'draw-status', role: 'status' });
  let pending = [];
  let pointer = null;
  let drag = null;

  const svgPoint = (event) => {
    const at = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
    return clampToFrame([at.x, at.y], frame);
  };

  function lineShape(line) {
    const [[x1, y1], [x2, y2]] = line.points;
    const [mx, my] = midpoint(line.points);
    const arrows = crossingDirections(line.points).flatMap(({ geometric, normal: [nx, ny] }) => [
      s('line', { x1: mx, y1: my, x2: mx + nx * 5 * unit, y2: my + ny * 5 * unit, class: 'direction', 'marker-end': 'url(#direction-arrow)' }),
      s('text', {
        x: mx + nx * 7.5 * unit, y: my + ny * 7.5 * unit, class: 'direction-label', 'font-size': 2 * unit,
        'text-anchor': 'middle', 'dominant-baseline': 'middle', 'data-direction': geometric,
      }, line.names[geometric] || geometric),
    ]);
    return [
      s('line', { x1, y1, x2, y2, class: 'count-line' }),
      s('line', { x1, y1, x2, y2, class: 'hit' }),
      arrows,
      s('text', { x: x1, y: y1 - 2 * unit, class: 'item-label', 'font-size': 2.2 * unit }, line.name),
    ];
  }

  function zoneShape(zone) {
    const [cx, cy] = midpoint(zone.polygon);
    return [
      s('polygon', { points: pointList(zone.polygon), class: 'zone-area' }),
      s('text', { x: cx, y: cy, class: 'item-label', 'font-size': 2.2 * unit, 'text-anchor': 'middle' }, zone.name),
    ];
  }

  function pickShape(pick, index) {
    const [x, y] = pick.point;
    return [
      s('path', { d: `M${x - 2 * unit},${y} h${4 * unit} M${x},${y - 2 * unit} v${4 * unit}`, class: 'pick-cross' }),
      s('text', { x: x + 1.8 * unit, y: y - 1.8 * unit, class: 'pick-label', 'font-size': 2.2 * unit }, String(index + 1)),
    ];
  }

  const SHAPES = { line: lineShape, zone: zoneShape, pick: pickShape };

  function handle(kind, index, point) {
    const [cx, cy] = draft.pointsOf(kind, index)[point];
    const el = s('circle', {
      class: 'handle', cx, cy, r: 1.6 * unit, tabindex: 0, role: 'button',
      'aria-roledescription': 'movable point', 'aria-label': handleLabel(draft, kind, index, point),
      'aria-describedby': hintId, 'data-handle': `${kind}:${index}:${point}`,
    });
    el.addEventListener('focus', () => draft.select(kind, index));
    el.addEventListener('keydown', (event) => onHandleKey(event, kind, index, point));
    el.addEventListener('pointerdown', (event) => {
      if (event.button > 0) return;
      event.stopPropagation();
      event.preventDefault();
      el.setPointerCapture(event.pointerId);
      el.focus({ preventScroll: true });
      drag = { kind, index, point, id: event.pointerId };
    });
    el.addEventListener('pointermove', (event) => {
      if (drag?.id === event.pointerId) draft.movePoint(kind, index, point, svgPoint(event));
    });
    const release = (event) => { if (drag?.id === event.pointerId) drag = null; };
    el.addEventListener('pointerup', release);
    el.addEventListener('pointercancel', release);
    return el;
  }

  function onHandleKey(event, kind, index, point) {
    const direction = KEY_STEPS[event.key];
    if (direction) {
      event.preventDefault();
      const size = step * (event.shiftKey ? LARGE_STEP : 1);
      const [x, y] = draft.pointsOf(kind, index)[point];
      draft.movePoint(kind, index, point, [x + direction[0] * size, y + direction[1] * size]);
    } else if (event.key === 'Delete' || event.key === 'Backspace') {
      event.preventDefault();
      draft.remove(kind, index);
    } else if (event.key === 'Enter' && kind !== 'pick') {
      event.preventDefault();
      onRename(kind, index);
    }
  }

  function itemGroup(kind, index) {
    const item = draft.itemsOf(kind)[index];
    const group = s('g', { class: `item ${kind}`, 'data-item': `${kind}:${index}` },
      s('g', { class: 'shape' }, SHAPES[kind](item, index)),
      draft.pointsOf(kind, index).map((_, point) => handle(kind, index, point)));
    group.addEventListener('pointerdown', () => {
      if (!draft.drawing) draft.select(kind, index);
    });
    return group;
  }

  /** Rebuild every item; the handle that had focus (or the one at the same place) keeps it. */
  function drawItems() {
    const focused = document.activeElement?.dataset?.handle;
    draftGroup.replaceChildren(
      ...draft.zones.map((_, i) => itemGroup('zone', i)),
      ...draft.lines.map((_, i) => itemGroup('line', i)),
      ...draft.picks.map((_, i) => itemGroup('pick', i)));
    markSelected();
    if (!focused) return;
    const target = draftGroup.querySelector(`[data-handle="${focused}"]`) || draftGroup.querySelector('.handle') || drawLine;
    target.focus({ preventScroll: true });
  }

  function markSelected() {
    const { kind, index } = draft.selected || {};
    for (const group of draftGroup.children) {
      group.classList.toggle('selected', group.dataset.item === `${kind}:${index}`);
    }
  }

  /** After a move only the item's shape and its handles' places change (focus and pointer
   * capture stay on the handle). */
  function moveItem({ kind, index }) {
    const group = draftGroup.querySelector(`[data-item="${kind}:${index}"]`);
    if (!group) return;
    group.querySelector('.shape').replaceChildren(...SHAPES[kind](draft.itemsOf(kind)[index], index).flat());
    group.querySelectorAll('.handle').forEach((el, point) => {
      const [x, y] = draft.pointsOf(kind, index)[point];
      el.setAttribute('cx', x);
      el.setAttribute('cy', y);
      el.setAttribute('aria-label', handleLabel(draft, kind, index, point));
    });
  }

  function drawPending() {
    const points = pointer ? [...pending, pointer] : pending;
    pendingGroup.replaceChildren(
      points.length > 1 ? s('polyline', { points: pointList(points), class: 'pending-path' }) : '',
      ...pending.map(([cx, cy]) => s('circle', { cx, cy, r: unit, class: 'pending-point' })));
    finish.disabled = !(draft.drawing === 'zone' && pending.length >= 3);
  }

  const stopDrawing = () => draft.setDrawing(null);

  /** Focus the first point of the line or zone just drawn, ready for the arrow keys. */
  function focusNew(kind) {
    draftGroup.querySelector(`[data-handle="${kind}:${draft.itemsOf(kind).length - 1}:0"]`)?.focus({ preventScroll: true });
  }

  function add(kind, points) {
    stopDrawing();
    if (kind === 'line') draft.addLine(points);
    else draft.addZone(points);
    focusNew(kind);
  }

  function finishZone() {
    if (pending.length >= 3) add('zone', pending);
  }

  function placePoint(at) {
    if (draft.drawing === 'pick') {
      draft.addPick(at);
    } else if (draft.drawing === 'line') {
      if (!pending.length) pending = [at];
      else if (distance(pending[0], at) >= unit) {
        add('line', [pending[0], at]);
        return;
      }
    } else if (pending.length >= 3 && distance(pending[0], at) < 2 * unit) {
      finishZone();
      return;
    } else {
      pending.push(at);
    }
    drawPending();
  }

  svg.addEventListener('pointerdown', (event) => {
    if (!draft.drawing || event.button > 0) return;
    event.preventDefault();
    svg.focus({ preventScroll: true }); // so that Escape and Enter reach the editor
    const at = svgPoint(event);
    if (draft.drawing === 'line' && !pending.length) {
      pending = [at];
      svg.setPointerCapture(event.pointerId);
      drawPending();
    }
  });
  svg.addEventListener('pointermove', (event) => {
    if (!draft.drawing || !pending.length) return;
    pointer = svgPoint(event);
    drawPending();
  });
  svg.addEventListener('pointerup', (event) => {
    if (!draft.drawing || event.button > 0) return;
    const at = svgPoint(event);
    // The press of a line's first end already placed it; its release ends a drag, not a click.
    if (draft.drawing === 'line' && pending.length === 1 && distance(pending[0], at) < unit) return;
    placePoint(at);
  });

  const toggle = (mode) => () => draft.setDrawing(draft.drawing === mode ? null : mode);
  const drawLine = h('button', { type: 'button', 'aria-pressed': 'false', onclick: toggle('line') }, 'Draw line');
  const drawZone = h('button', { type: 'button', 'aria-pressed': 'false', onclick: toggle('zone') }, 'Draw zone');
  const finish = h('button', { type: 'button', disabled: true, onclick: finishZone }, 'Finish zone');
  const addLine = h('button', { type: 'button', onclick: () => add('line', centredLine(frame)) }, 'Add line at centre');
  const addZone = h('button', { type: 'button', onclick: () => add('zone', centredZone(frame)) }, 'Add zone at centre');

  draft.on((what, detail) => {
    if (what === 'move') moveItem(detail);
    if (what === 'select') markSelected();
    if (what === 'structure' || what === 'rename') drawItems();
    if (what === 'mode') {
      pending = [];
      pointer = null;
      drawLine.setAttribute('aria-pressed', String(draft.drawing === 'line'));
      drawZone.setAttribute('aria-pressed', String(draft.drawing === 'zone'));
      svg.classList.toggle('drawing', Boolean(draft.drawing));
      status.textContent = INSTRUCTIONS[draft.drawing] || '';
      drawPending();
    }
  });

  const figure = h('figure', {
    class: 'scene-editor',
    onkeydown: (event) => {
      if (event.key === 'Escape' && draft.drawing) stopDrawing();
      if (event.key === 'Enter' && draft.drawing === 'zone' && event.target === svg) finishZone();
    },
  },
  h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Drawing tools' }, drawLine, drawZone, finish, addLine, addZone),
  status,
  svg,
  h('figcaption', { id: hintId, class: 'hint' },
    'Tab to a point and move it with the arrow keys (Shift: larger steps); Delete removes its line, zone or calibration point; Enter renames it.'));
  drawItems();
  return figure;
}
