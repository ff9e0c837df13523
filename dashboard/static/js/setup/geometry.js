// Coordinates of the set-up page. The editor works in frame pixels (the scene map's native
// resolution); a configuration stores relative 0–1 coordinates or pixels of its
// reference_resolution, and is saved back in the mode it came in.

/** Frame size assumed when no scene map says it (relative coordinates only need its shape). */
export const NOMINAL_FRAME = { width: 1280, height: 720 };
const DECIMALS = { relative: 6, pixels: 2 };

/** How a configuration's coordinates map onto `frame`: reference [w, h], or null for relative. */
export function coordinateMode(reference, frame) {
  const [width, height] = reference || [1, 1];
  return { reference: reference || null, sx: frame.width / width, sy: frame.height / height, frame };
}

/** A configured point in frame pixels. */
export function toFrame([x, y], mode) {
  return [x * mode.sx, y * mode.sy];
}

const round = (value, decimals) => Number(value.toFixed(decimals));

/** A frame-pixel point in the configuration's units, kept inside the frame. */
export function toConfig(point, mode) {
  const [x, y] = clampToFrame(point, mode.frame);
  const decimals = mode.reference ? DECIMALS.pixels : DECIMALS.relative;
  return [round(x / mode.sx, decimals), round(y / mode.sy, decimals)];
}

export function clampToFrame([x, y], frame) {
  return [Math.min(Math.max(x, 0), frame.width), Math.min(Math.max(y, 0), frame.height)];
}

export const distance = ([x1, y1], [x2, y2]) => Math.hypot(x2 - x1, y2 - y1);

/** One unit of drawing size (text, handles, keyboard steps): 1 % of the frame's long side. */
export const unitOf = (frame) => Math.max(frame.width, frame.height) / 100;

/**
 * A line's two crossing directions as the worker names them (detector/count.py): a line
 * more horizontal than vertical in pixels has `down` (towards larger y) and `up`, any other
 * `left` and `right`. Each comes with the unit normal a vehicle crosses along.
 */
export function crossingDirections([[x1, y1], [x2, y2]]) {
  const dx = x2 - x1;
  const dy = y2 - y1;
  const length = Math.hypot(dx, dy) || 1;
  let normal = [-dy / length, dx / length];
  if (Math.abs(dx) >= Math.abs(dy)) {
    if (normal[1] < 0) normal = [-normal[0], -normal[1]];
    return [{ geometric: 'down', normal }, { geometric: 'up', normal: [-normal[0], -normal[1]] }];
  }
  if (normal[0] > 0) normal = [-normal[0], -normal[1]];
  return [{ geometric: 'left', normal }, { geometric: 'right', normal: [-normal[0], -normal[1]] }];
}

export const midpoint = (points) => [
  points.reduce((sum, [x]) => sum + x, 0) / points.length,
  points.reduce((sum, [, y]) => sum + y, 0) / points.length,
];

/** `base`, or `base-2`, `base-3`… whichever no name in `taken` has (within the label length). */
export function uniqueName(base, taken) {
  const names = new Set(taken);
  if (!names.has(base)) return base;
  for (let n = 2; ; n += 1) {
    const candidate = `${base.slice(0, 31 - String(n).length)}-${n}`;
    if (!names.has(candidate)) return candidate;
  }
}

/** A line across the middle third of the frame (what the keyboard's "Add line" places). */
export function centredLine(frame) {
  const y = frame.height / 2;
  return [[frame.width / 3, y], [(2 * frame.width) / 3, y]];
}

/** A rectangle in the middle of the frame (what the keyboard's "Add zone" places). */
export function centredZone(frame) {
  const [w, h] = [frame.width, frame.height];
  return [[w * 0.35, h * 0.35], [w * 0.65, h * 0.35], [w * 0.65, h * 0.65], [w * 0.35, h * 0.65]];
}
