// The intersection diagram: one arm per leg (from its compass bearing), one arrow per movement
// whose width grows with its volume. Right-hand traffic: vehicles arrive on the left of an arm
// (seen from the centre) and leave on its right. Every label is a text node.
import { s } from './setup/svg.js';

const ARM_FROM = 46;
const ARM_TO = 128;
const ARM_HALF_WIDTH = 46;
const ARROW_FROM = 118;
const ARROW_TO = 114;
const LANE = 10;
const WIDTH = [2, 14];
const ORDER = { u_turn: 0, left: 1, through: 2, right: 3 };
const WORDS = { u_turn: 'U-turn', left: 'left', through: 'through', right: 'right' };

const add = (...points) => points.reduce(([x, y], [a, b]) => [x + a, y + b], [0, 0]);
const scale = ([x, y], k) => [x * k, y * k];
const fmt = ([x, y]) => `${x.toFixed(1)} ${y.toFixed(1)}`;

/** Unit vector out along a compass bearing (0 = up, 90 = right) and the one to its right. */
function axes(bearing) {
  const rad = (bearing * Math.PI) / 180;
  return { out: [Math.sin(rad), -Math.cos(rad)], right: [Math.cos(rad), Math.sin(rad)] };
}

/** Where two lines p + t·a and q + u·b meet, or null when they are (nearly) parallel. */
function meet(p, a, q, b) {
  const det = a[0] * -b[1] + b[0] * a[1];
  if (Math.abs(det) < 1e-6) return null;
  const t = ((q[0] - p[0]) * -b[1] + b[0] * (q[1] - p[1])) / det;
  return add(p, scale(a, t));
}

/** Each gate's bearing: the layout's, else spread evenly round the centre in the given order. */
export function legBearings(gates, bearings) {
  const known = Object.fromEntries(Object.entries(bearings).filter(([, b]) => b != null));
  const unplaced = gates.filter((g) => !(g in known));
  return Object.fromEntries(gates.map((g) => [g, known[g] ?? (360 * unplaced.indexOf(g)) / unplaced.length]));
}

function arrow(movement, legs, width) {
  const origin = axes(legs[movement.origin]);
  const destination = axes(legs[movement.destination]);
  const lane = LANE * (1.5 + (ORDER[movement.movement] ?? 1.5));
  const start = add(scale(origin.out, ARROW_FROM), scale(origin.right, -lane));
  const enter = add(scale(origin.out, ARM_FROM), scale(origin.right, -lane));
  const leave = add(scale(destination.out, ARM_FROM), scale(destination.right, lane));
  const head = 6 + 1.2 * width;
  const tip = add(scale(destination.out, ARROW_TO), scale(destination.right, lane));
  const end = add(tip, scale(destination.out, -head));
  const bend = meet(enter, scale(origin.out, -1), leave, destination.out)
    || (movement.origin === movement.destination ? [0, 0] : scale(add(enter, leave), 0.5));
  const wing = scale(destination.right, 3 + width);
  const words = `${movement.origin} → ${movement.destination}`
    + `${movement.movement ? ` (${WORDS[movement.movement]})` : ''}: ${movement.count} vehicles`;
  return s('g', {
    class: `movement movement-${movement.movement || 'unnamed'}`,
    'data-origin': movement.origin,
    'data-destination': movement.destination,
    'data-count': movement.count,
  },
  s('title', {}, words),
  s('path', { d: `M ${fmt(start)} L ${fmt(enter)} Q ${fmt(bend)} ${fmt(leave)} L ${fmt(end)}`, 'stroke-width': width.toFixed(1) }),
  s('polygon', { points: [tip, add(end, wing), add(end, scale(wing, -1))].map(fmt).join(' ') }));
}

/**
 * The diagram of `movements` ({origin, destination, movement, count}) between the legs
 * `gates`, placed by `bearings` ({gate: degrees | null}); `label` names it for screen readers.
 */
export function movementDiagram(gates, bearings, movements, label) {
  const legs = legBearings(gates, bearings);
  const most = Math.max(1, ...movements.map((m) => m.count));
  const arms = gates.map((gate) => {
    const { out, right } = axes(legs[gate]);
    const corner = (r, side) => fmt(add(scale(out, r), scale(right, side * ARM_HALF_WIDTH)));
    const labelAt = add(scale(out, ARM_TO + 10), [0, 5 + 8 * out[1]]);
    const anchor = out[0] > 0.5 ? 'start' : out[0] < -0.5 ? 'end' : 'middle';
    const arriving = movements.filter((m) => m.origin === gate).reduce((n, m) => n + m.count, 0);
    return s('g', { class: 'leg', 'data-gate': gate },
      s('polygon', { class: 'arm', points: [corner(ARM_FROM, -1), corner(ARM_TO, -1), corner(ARM_TO, 1), corner(ARM_FROM, 1)].join(' ') }),
      s('line', { class: 'centre-line', x1: out[0] * ARM_FROM, y1: out[1] * ARM_FROM, x2: out[0] * ARM_TO, y2: out[1] * ARM_TO }),
      s('text', { class: 'leg-label', x: labelAt[0].toFixed(1), y: labelAt[1].toFixed(1), 'text-anchor': anchor }, `${gate} (${arriving} in)`));
  });
  const arrows = movements.filter((m) => m.count > 0 && m.origin in legs && m.destination in legs)
    .sort((a, b) => b.count - a.count) // thin arrows on top of thick ones
    .map((m) => arrow(m, legs, WIDTH[0] + ((WIDTH[1] - WIDTH[0]) * m.count) / most));
  return s('svg', { class: 'intersection-diagram', viewBox: '-250 -175 500 350', role: 'img', 'aria-label': label },
    s('title', {}, label),
    s('circle', { class: 'junction', r: ARM_FROM + 6 }),
    ...arms,
    s('g', { class: 'movements' }, ...arrows));
}
