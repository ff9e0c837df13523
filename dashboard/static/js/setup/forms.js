// Form fields of the draft's lines and zones: names, direction labels, lanes and length.
// The map and these fields edit the same draft; each redraws when the other changes it.
import { field, h } from '../dom.js';
import { crossingDirections } from './geometry.js';

const ARROWS = { down: '↓', up: '↑', left: '←', right: '→' };
const LABEL_HINT = 'Lower-case letters, digits, - and _ (up to 32).';

const ends = (points) => points.map(([x, y]) => `(${Math.round(x)}, ${Math.round(y)})`).join(' – ');
const orientation = (line) => crossingDirections(line.points).map((d) => d.geometric).join('/');

function nameInput(draft, item, label) {
  const input = h('input', {
    name: 'name', value: item.name, required: true, maxlength: 32,
    autocomplete: 'off', spellcheck: 'false',
  });
  input.addEventListener('input', () => {
    item.name = input.value;
    draft.changed('rename');
  });
  return field(label, input, LABEL_HINT);
}

function directionFields(draft, line) {
  return crossingDirections(line.points).map(({ geometric }) => {
    const input = h('input', {
      name: `direction-${geometric}`, value: line.names[geometric] || '', placeholder: geometric,
      maxlength: 32, autocomplete: 'off', spellcheck: 'false',
    });
    input.addEventListener('input', () => {
      line.names[geometric] = input.value;
      draft.changed('rename');
    });
    return field(`Label for crossings ${geometric} ${ARROWS[geometric]}`, input, `Empty: reported as "${geometric}".`);
  });
}

function removeButton(draft, kind, index, name) {
  return h('button', {
    type: 'button', class: 'danger', onclick: () => draft.remove(kind, index),
    'aria-label': `Remove ${kind} ${name}`,
  }, `Remove ${kind}`);
}

function lineFieldset(draft, index) {
  const line = draft.lines[index];
  return h('fieldset', { class: 'item-form', dataset: { item: `line:${index}`, orientation: orientation(line) } },
    h('legend', {}, `Line ${index + 1}`),
    h('p', { class: 'item-problem', role: 'alert' }),
    h('div', { class: 'form-grid' },
      nameInput(draft, line, 'Line name'),
      h('div', { class: 'directions' }, directionFields(draft, line))),
    h('p', { class: 'hint' }, 'Ends (frame pixels): ', h('span', { class: 'ends' }, ends(line.points))),
    removeButton(draft, 'line', index, line.name));
}

function numberInput(name, value, attrs, onValue) {
  const input = h('input', { name, type: 'number', value: value ?? '', ...attrs });
  input.addEventListener('input', () => onValue(Number.isFinite(input.valueAsNumber) ? input.valueAsNumber : null));
  return input;
}

function zoneFieldset(draft, index) {
  const zone = draft.zones[index];
  return h('fieldset', { class: 'item-form', dataset: { item: `zone:${index}` } },
    h('legend', {}, `Zone ${index + 1}`),
    h('p', { class: 'item-problem', role: 'alert' }),
    h('div', { class: 'form-grid' },
      nameInput(draft, zone, 'Zone name'),
      field('Lanes', numberInput('lanes', zone.lanes, { min: 1, max: 12, step: 1, required: true },
        (value) => { zone.lanes = value; })),
      field('Length along the road (m)', numberInput('length_m', zone.length_m, { min: 0, max: 2000, step: 'any' },
        (value) => { zone.length_m = value; }), 'For density per km and lane; empty if unknown.')),
    h('p', { class: 'hint' }, 'Corners (frame pixels): ', h('span', { class: 'ends' }, ends(zone.polygon))),
    removeButton(draft, 'zone', index, zone.name));
}

/** Fieldsets for every line and zone of `draft`, kept in step with the map. */
export function itemForms(draft) {
  const lines = h('div', { class: 'item-forms' });
  const zones = h('div', { class: 'item-forms' });
  const draw = () => {
    lines.replaceChildren(...(draft.lines.length ? draft.lines.map((_, i) => lineFieldset(draft, i))
      : [h('p', { class: 'hint' }, 'No lines yet: draw one on the scene map or accept a proposal.')]));
    zones.replaceChildren(...(draft.zones.length ? draft.zones.map((_, i) => zoneFieldset(draft, i))
      : [h('p', { class: 'hint' }, 'No zones yet.')]));
    markSelected();
  };
  const fieldsetOf = (kind, index) => (kind === 'line' ? lines : zones).querySelector(`[data-item="${kind}:${index}"]`);
  const markSelected = () => {
    const { kind, index } = draft.selected || {};
    for (const set of [...lines.children, ...zones.children]) {
      set.classList.toggle('selected', set.dataset.item === `${kind}:${index}`);
    }
  };
  const moved = ({ kind, index }) => {
    const set = fieldsetOf(kind, index);
    if (!set) return;
    const points = kind === 'line' ? draft.lines[index].points : draft.zones[index].polygon;
    set.querySelector('.ends').textContent = ends(points);
    if (kind === 'line' && set.dataset.orientation !== orientation(draft.lines[index])) {
      set.replaceWith(lineFieldset(draft, index));
      markSelected();
    }
  };
  draft.on((what, detail) => {
    if (what === 'structure') draw();
    if (what === 'select') markSelected();
    if (what === 'move' && detail.kind !== 'pick') moved(detail);
  });
  draw();
  return {
    lines,
    zones,
    /** Put the caret in an item's name field (Enter on its point on the map). */
    focusName(kind, index) {
      const input = fieldsetOf(kind, index)?.querySelector('input[name=name]');
      input?.focus();
      input?.select();
    },
    /** Show each problem at its line or zone; returns the problems that belong to none. */
    showProblems(problems) {
      for (const slot of [...lines.querySelectorAll('.item-problem'), ...zones.querySelectorAll('.item-problem')]) {
        slot.textContent = '';
        slot.closest('fieldset').removeAttribute('aria-invalid');
      }
      return problems.filter(({ kind, index, text }) => {
        const set = kind ? fieldsetOf(kind, index) : null;
        if (!set) return true;
        const slot = set.querySelector('.item-problem');
        slot.textContent = [slot.textContent, text].filter(Boolean).join(' ');
        set.setAttribute('aria-invalid', 'true');
        return false;
      });
    },
  };
}
