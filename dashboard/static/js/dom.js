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

/** Text made inert for the few library options that take HTML (Leaflet attribution, chart tooltips). */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

let fields = 0;

/** A labelled form control with a slot for what the API said about it. */
export function field(label, control, hint = '') {
  fields += 1;
  control.id = `field-${fields}`;
  const problem = h('p', { class: 'field-problem', id: `${control.id}-problem` });
  control.setAttribute('aria-describedby', problem.id);
  return h('div', { class: `field field-${control.type || control.tagName.toLowerCase()}` },
    h('label', { for: control.id }, label), control, hint ? h('p', { class: 'hint' }, hint) : null, problem);
}

/** A form's own message line (errors that belong to no single field). */
export function formProblem() {
  return h('p', { class: 'form-problem', role: 'alert' });
}

/** Show an ApiError on `form`: each field's message beside it, the rest on its message line. */
export function showProblems(form, error) {
  const placed = new Set();
  for (const control of form.elements) {
    const slot = control.id ? document.getElementById(`${control.id}-problem`) : null;
    if (!slot) continue;
    const text = error?.fields?.[control.name] || '';
    slot.textContent = text;
    if (text) {
      control.setAttribute('aria-invalid', 'true');
      placed.add(control.name);
    } else {
      control.removeAttribute('aria-invalid');
    }
  }
  const rest = Object.entries(error?.fields || {}).filter(([name]) => !placed.has(name))
    .map(([name, text]) => (name && name !== 'body' ? `${name}: ${text}` : text));
  const line = form.querySelector('.form-problem');
  if (!line) return;
  if (!error) line.textContent = '';
  else if (!placed.size && !rest.length) line.textContent = error.message;
  else line.textContent = [placed.size ? 'Please correct the fields marked below.' : '', ...rest].filter(Boolean).join(' ');
}

/** A secret shown exactly once (a device token, a generated password), with a copy button. */
export function shownOnce(label, secret) {
  const code = h('code', { class: 'secret', dataset: { secret: '' } }, secret);
  const state = h('span', { class: 'hint', role: 'status' });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      state.textContent = 'Copied.';
    } catch {
      window.getSelection().selectAllChildren(code);
      state.textContent = 'Selected: copy it with Ctrl+C.';
    }
  };
  return h('div', { class: 'shown-once', role: 'region', 'aria-label': label },
    h('p', {}, h('strong', {}, label), ' (shown only this once: store it now)'),
    h('p', {}, code, ' ', h('button', { type: 'button', onclick: copy }, 'Copy'), ' ', state));
}

/**
 * A confirmation step for something that cannot be undone. With `expect`, the reader must
 * type it (a site id) before `label` is enabled; `run(typed)` does the work.
 */
export function confirmStep({ question, label, expect = null, run, onCancel }) {
  const problem = formProblem();
  const go = h('button', { type: 'submit', class: 'danger', disabled: expect !== null }, label);
  const typed = expect === null ? null
    : h('input', { name: 'confirm', autocomplete: 'off', spellcheck: 'false' });
  typed?.addEventListener('input', () => { go.disabled = typed.value !== expect; });
  const submit = async (event) => {
    event.preventDefault();
    go.disabled = true;
    try {
      await run(typed?.value);
    } catch (error) {
      problem.textContent = error.message;
      go.disabled = false;
    }
  };
  return h('form', { class: 'confirm', onsubmit: submit, 'aria-label': question },
    h('p', {}, question),
    typed ? field(`Type ${expect} to confirm`, typed) : null,
    problem,
    h('p', { class: 'actions' }, go, ' ', h('button', { type: 'button', onclick: onCancel }, 'Cancel')));
}
