// The set-up being edited: lines, zones and calibration points in frame pixels, what is
// selected and which drawing mode is on. Views listen and redraw; nothing here touches the DOM.
import { clampToFrame, toConfig, toFrame, uniqueName } from './geometry.js';

/** Editing state of one camera's set-up. Changes are announced to `on()` listeners as
 * 'structure' (items added, removed, renamed), 'move' (a point of one item moved), 'select',
 * 'mode' and 'calibration'. */
export class Draft {
  constructor(setup, mode) {
    this.mode = mode;
    this.lines = (setup?.lines || []).map((line) => ({
      name: line.name,
      points: line.points.map((p) => toFrame(p, mode)),
      names: { ...line.direction_names },
    }));
    this.zones = (setup?.zones || []).map((zone) => ({
      name: zone.name,
      polygon: zone.polygon.map((p) => toFrame(p, mode)),
      lanes: zone.lanes,
      length_m: zone.length_m,
    }));
    const calibration = setup?.calibration;
    /** Calibration points: where on the frame, and where on the ground (text the reader typed). */
    this.picks = calibration ? calibration.image_points.map((p, i) => ({
      point: toFrame(p, mode),
      east: String(calibration.ground_points_m[i][0]),
      north: String(calibration.ground_points_m[i][1]),
      lat: '',
      lon: '',
    })) : [];
    /** What the set-up to save holds (configuration units): the last fit, or the stored one. */
    this.calibration = calibration || null;
    this.calibrationStale = false;
    this.interval_seconds = setup?.interval_seconds ?? 60;
    this.classes = setup?.classes ?? null;
    this.selected = null;
    this.drawing = null;
    this.listeners = new Set();
  }

  on(listener) {
    this.listeners.add(listener);
  }

  /** Drop every view's listener: the views are being built anew. */
  forgetViews() {
    this.listeners.clear();
  }

  changed(what, detail = {}) {
    for (const listener of this.listeners) listener(what, detail);
  }

  /** The points of an item: a line's two ends, a zone's corners, a calibration point. */
  pointsOf(kind, index) {
    if (kind === 'line') return this.lines[index].points;
    if (kind === 'zone') return this.zones[index].polygon;
    return [this.picks[index].point];
  }

  itemsOf(kind) {
    return { line: this.lines, zone: this.zones, pick: this.picks }[kind];
  }

  movePoint(kind, index, point, to) {
    this.pointsOf(kind, index)[point] = clampToFrame(to, this.mode.frame);
    if (kind === 'pick') this.calibrationEdited();
    this.changed('move', { kind, index });
  }

  select(kind, index) {
    const same = this.selected?.kind === kind && this.selected?.index === index;
    if (same) return;
    this.selected = kind == null ? null : { kind, index };
    this.changed('select');
  }

  setDrawing(drawing) {
    this.drawing = drawing;
    this.changed('mode');
  }

  addLine(points, name = 'line', names = {}) {
    this.lines.push({ name: uniqueName(name, this.lines.map((l) => l.name)), points, names: { ...names } });
    this.selected = { kind: 'line', index: this.lines.length - 1 };
    this.changed('structure', { added: { kind: 'line', index: this.lines.length - 1 } });
  }

  addZone(polygon, name = 'zone', lanes = 1) {
    this.zones.push({ name: uniqueName(name, this.zones.map((z) => z.name)), polygon, lanes, length_m: null });
    this.selected = { kind: 'zone', index: this.zones.length - 1 };
    this.changed('structure', { added: { kind: 'zone', index: this.zones.length - 1 } });
  }

  addPick(point) {
    this.picks.push({ point: clampToFrame(point, this.mode.frame), east: '', north: '', lat: '', lon: '' });
    this.calibrationEdited();
    this.changed('structure', { added: { kind: 'pick', index: this.picks.length - 1 } });
  }

  remove(kind, index) {
    this.itemsOf(kind).splice(index, 1);
    if (kind === 'pick') this.calibrationEdited();
    this.selected = null;
    this.changed('structure', { removed: { kind, index } });
  }

  /** Points changed since the last fit: the calibration to save no longer matches them. */
  calibrationEdited() {
    this.calibrationStale = Boolean(this.calibration);
  }

  /** The fitted calibration (configuration units) goes into the set-up to save; null drops it. */
  useCalibration(calibration) {
    this.calibration = calibration;
    this.calibrationStale = false;
    this.changed('calibration');
  }

  /** Calibration points in the configuration's units, as the fit endpoint takes them. */
  pickPoints() {
    return this.picks.map((pick) => toConfig(pick.point, this.mode));
  }

  /** The set-up to save, in the configuration's own coordinate mode. */
  toSetup() {
    const config = (points) => points.map((p) => toConfig(p, this.mode));
    const labelled = (names) => Object.fromEntries(Object.entries(names).filter(([, label]) => label));
    return {
      ...(this.mode.reference ? { reference_resolution: this.mode.reference } : {}),
      lines: this.lines.map((line) => ({
        name: line.name, points: config(line.points), direction_names: labelled(line.names),
      })),
      zones: this.zones.map((zone) => ({
        name: zone.name, polygon: config(zone.polygon), lanes: zone.lanes, length_m: zone.length_m,
      })),
      calibration: this.calibration,
      interval_seconds: this.interval_seconds,
      classes: this.classes,
    };
  }
}
