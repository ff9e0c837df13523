// SVG elements for the set-up page's scene map (dom.js's h() makes HTML elements only).
const NS = 'http://www.w3.org/2000/svg';

/** s('circle', {cx: 1}, child) -> SVG element; `on*` attributes become listeners. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

/** "x1,y1 x2,y2 …" for a polygon's or polyline's points attribute. */
export const pointList = (points) => points.map(([x, y]) => `${x},${y}`).join(' ');
