// Small DOM helpers: elements, cards, messages and accessible data tables.

/** h('p', {class: 'x'}, 'text', child) -> element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

export function section(title, ...children) {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** A headline figure: label, value, and an optional note. */
export function card(label, value, note = '') {
  return h('div', { class: 'card' },
    h('p', { class: 'card-label' }, label),
    h('p', { class: 'card-value' }, value),
    note ? h('p', { class: 'card-note' }, note) : null);
}

export function message(kind, text) {
  return h('p', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

export function table(caption, headers, rows) {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((text) => h('th', { scope: 'col' }, text)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell, i) => {
      const tag = i === 0 ? 'th' : 'td';
      return cell instanceof Node ? h(tag, i === 0 ? { scope: 'row' } : {}, cell)
        : h(tag, i === 0 ? { scope: 'row' } : {}, String(cell));
    })))));
}

export const number = new Intl.NumberFormat('en-GB');
export const percent = (share) => (share == null ? '–' : `${(share * 100).toFixed(1)} %`);
