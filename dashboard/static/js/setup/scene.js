// The scene map drawn as vectors: density-shaded cells, a flow arrow per cell, and the
// worker's proposals. Aggregates only; there is no image of the scene, by design.
import { percent } from '../dom.js';
import { midpoint, unitOf } from './geometry.js';
import { pointList, s } from './svg.js';

const MIN_SHADE = 0.12;

/** Arrowheads of the flow and direction arrows, sized to the frame (`unit`: unitOf(frame)). */
export function markers(unit) {
  const head = (id, size) => s('marker', {
    id, viewBox: '0 0 10 10', refX: 8, refY: 5, markerWidth: size, markerHeight: size,
    orient: 'auto-start-reverse', markerUnits: 'userSpaceOnUse',
  }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: `${id}-head` }));
  return s('defs', {}, head('flow-arrow', 1.2 * unit), head('direction-arrow', 2.5 * unit));
}

/** `classes`: the contract's class order, which a cell's `k` follows (meta.vehicle_classes). */
function cellTitle(cell, classes) {
  const mix = classes.map((name, i) => (cell.k[i] ? `${cell.k[i]} ${name}` : ''))
    .filter(Boolean).join(', ');
  return `${cell.n} vehicles (${mix}); ${Math.round(cell.s * 100)} % of the time stopped`;
}

/** One rect per reported cell, darker where more distinct vehicles passed. */
function densityCells(map, [width, height], classes) {
  const most = Math.max(1, ...map.cells.map((cell) => cell.n));
  return s('g', { class: 'scene-cells' }, map.cells.map((cell) => s('rect', {
    x: cell.c * width, y: cell.r * height, width, height,
    'fill-opacity': (MIN_SHADE + (1 - MIN_SHADE) * (cell.n / most)).toFixed(3),
    'data-n': cell.n,
  }, s('title', {}, cellTitle(cell, classes)))));
}

/** An arrow through each moving cell's centre along its mean motion, as long as the cell. */
function flowArrows(map, [width, height]) {
  const length = 0.8 * Math.min(width, height);
  const arrows = map.cells.filter((cell) => cell.vx || cell.vy).map((cell) => {
    const speed = Math.hypot(cell.vx, cell.vy);
    const [cx, cy] = [(cell.c + 0.5) * width, (cell.r + 0.5) * height];
    const [dx, dy] = [(cell.vx / speed) * (length / 2), (cell.vy / speed) * (length / 2)];
    return s('line', {
      x1: cx - dx, y1: cy - dy, x2: cx + dx, y2: cy + dy,
      class: cell.s > 0.5 ? 'flow stopped' : 'flow', 'marker-end': 'url(#flow-arrow)',
    });
  });
  return s('g', { class: 'scene-flows', 'aria-hidden': 'true' }, arrows);
}

const counted = (n, noun) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function proposalLabel(text, [x, y], unit) {
  return s('text', { x, y: y - unit, class: 'proposal-label', 'font-size': 2 * unit }, text);
}

/** Proposed lines and zones, dashed, each with its name and confidence. */
function proposalShapes(map, unit) {
  const { lines, zones } = map.proposals;
  return s('g', { class: 'scene-proposals', 'aria-hidden': 'true' },
    zones.map((zone) => s('g', { class: 'proposal zone', 'data-proposal': zone.name },
      s('polygon', { points: pointList(zone.polygon) }),
      proposalLabel(`${zone.name} (${percent(zone.confidence)})`, midpoint(zone.polygon), unit))),
    lines.map((line) => s('g', { class: 'proposal line', 'data-proposal': line.name },
      s('line', { x1: line.points[0][0], y1: line.points[0][1], x2: line.points[1][0], y2: line.points[1][1] }),
      proposalLabel(`${line.name} (${percent(line.confidence)})`, midpoint(line.points), unit))));
}

/** The whole scene layer of `map` (empty group without one). */
export function sceneLayer(map, classes) {
  if (!map) return s('g', { class: 'scene' });
  const frame = { width: map.frame_width, height: map.frame_height };
  const cell = [map.frame_width / map.cols, map.frame_height / map.rows];
  return s('g', { class: 'scene' },
    densityCells(map, cell, classes), flowArrows(map, cell), proposalShapes(map, unitOf(frame)));
}

/** A sentence on what the map holds, for the figure caption and screen readers. */
export function sceneSummary(map) {
  return [
    `${map.vehicles} vehicles over ${Math.round(map.analysed_s / 60)} minutes of analysed stream`,
    `${map.cells.length} cells shown, ${map.withheld_cells} withheld (fewer than ${map.k} vehicles)`,
    `${counted(map.proposals.lines.length, 'proposed line')}, ${counted(map.proposals.zones.length, 'proposed zone')}`,
  ].join('; ');
}
