// Validating a scenario: each entry of a file or of --inject flags, normalised (every issue found,
// with the user's own path), and the whole scenario against a run (ranks and steps that exist).
import { parseSize } from '../../protocol/units.js';
import {
  emptyScenario,
  ENTRY_KINDS,
  FAULT_DEFAULTS,
  FAULT_KINDS,
  isMapping,
  listOf,
  MAX_SCENARIO_FAULTS,
  numberStragglers,
  PHASES,
  show,
  showKey,
  STRAGGLER_KINDS,
  type EntryKind,
  type FaultKind,
  type HangFault,
  type PauseFault,
  type Phase,
  type RandomSpec,
  type Scenario,
  type ScenarioFault,
  type ScenarioStraggler,
  type SlowFault,
  type StragglerKind,
  type Trigger,
} from './types.js';

export const ROOT_HELP = 'expected a mapping with a faults list';

export function scenarioFrom(value: unknown, issues: string[]): Scenario {
  const scenario = emptyScenario();
  if (!isMapping(value)) {
    issues.push(`(root): ${ROOT_HELP} (got ${show(value)})`);
    return scenario;
  }
  for (const key of Object.keys(value)) {
    if (key !== 'faults') issues.push(`${showKey(key)}: unknown field (the file takes faults)`);
  }
  if (!Object.hasOwn(value, 'faults')) {
    issues.push('faults: required (a list of faults)');
    return scenario;
  }
  // `faults:` with every entry commented out reads as null: that is an empty list, not a mistake.
  const list = value.faults ?? [];
  if (!Array.isArray(list)) {
    issues.push(`faults: expected a list of faults (got ${show(list)})`);
    return scenario;
  }
  list.forEach((raw: unknown, i) => addEntry(scenario, raw, `faults[${i}]`, issues));
  for (const [what, n] of [['faults', scenario.faults.length], ['stragglers', scenario.stragglers.length]] as const) {
    if (n > MAX_SCENARIO_FAULTS) issues.push(`faults: ${n} ${what}; a scenario may hold at most ${MAX_SCENARIO_FAULTS} (use a random entry to draw many)`);
  }
  return numberStragglers(scenario);
}

export function addEntry(scenario: Scenario, raw: unknown, path: string, issues: string[]): void {
  const entry = normaliseEntry(raw, path, scenario.faults.length, issues);
  if (entry === undefined) return;
  if ('random' in entry) {
    scenario.random.push(entry.random);
  } else if ('straggler' in entry) {
    scenario.stragglers.push(entry.straggler);
    scenario.stragglerOrigins!.push(path);
  } else {
    scenario.faults.push(entry.fault);
    scenario.origins!.push(path);
  }
}

// ---------------------------------------------------------------------------------------------
// One entry

/** Fields each entry kind takes, in the order messages list them. */
const ENTRY_FIELDS: Record<EntryKind, readonly string[]> = {
  kill: ['kind', 'rank', 'at'],
  hang: ['kind', 'rank', 'at', 'ms'],
  crash: ['kind', 'rank', 'at', 'code'],
  link: ['kind', 'from', 'to', 'at', 'cut', 'delayMs', 'bandwidth', 'ms'],
  corrupt: ['kind', 'rank', 'at', 'frames'],
  slow: ['kind', 'rank', 'at', 'factor', 'addMs', 'steps'],
  'slow-link': ['kind', 'from', 'to', 'at', 'bandwidth', 'delayMs', 'steps'],
  jitter: ['kind', 'maxMs'],
  pause: ['kind', 'rank', 'ms', 'everyMs', 'at', 'steps', 'forMs'],
  random: ['kind', 'meanSteps', 'kinds'],
};
const TRIGGER_FIELDS = ['step', 'phase', 'chunk', 'ms'] as const;
const TRIGGER_HELP = '{ step: N, phase?, chunk? } or { ms: T }';

interface IntRule {
  min: number;
  max?: number;
  /** What the number counts, if not a plain integer ("milliseconds"). */
  unit?: string;
}
const INDEX: IntRule = { min: 0 };
const DURATION: IntRule = { min: 1, unit: 'milliseconds' };
/** Milliseconds after training starts. */
const INSTANT: IntRule = { min: 0, unit: 'milliseconds' };
const EXIT_CODE: IntRule = { min: 1, max: 255 };
const COUNT: IntRule = { min: 1 };

function describeInt(r: IntRule): string {
  const what = r.unit ? `a whole number of ${r.unit}` : 'an integer';
  return r.max === undefined ? `${what} >= ${r.min}` : `${what} from ${r.min} to ${r.max}`;
}

/**
 * The fields of one mapping. Each reader records an issue for a bad field and then returns a
 * placeholder, so reading goes on and every issue is found; `failed` says to discard the result.
 */
class Fields {
  private readonly start: number;

  constructor(
    private readonly raw: Record<string, unknown>,
    readonly path: string,
    private readonly issues: string[],
  ) {
    this.start = issues.length;
  }

  get failed(): boolean {
    return this.issues.length > this.start;
  }

  pathOf(key: string): string {
    return `${this.path}.${key}`;
  }

  issue(key: string | undefined, message: string): void {
    this.issues.push(`${key === undefined ? this.path : this.pathOf(key)}: ${message}`);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.raw, key);
  }

  get(key: string): unknown {
    return this.raw[key];
  }

  /** The fields of the mapping at `key`; its issues count as this mapping's too. */
  child(key: string, raw: Record<string, unknown>): Fields {
    return new Fields(raw, this.pathOf(key), this.issues);
  }

  onlyKnown(known: readonly string[], taker: string): void {
    for (const key of Object.keys(this.raw)) {
      if (!known.includes(key)) this.issue(showKey(key), `unknown field (${taker} takes ${known.join(', ')})`);
    }
  }

  int(key: string, rule: IntRule): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.get(key);
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= rule.min && (rule.max === undefined || v <= rule.max)) return v;
    this.issue(key, `expected ${describeInt(rule)} (got ${show(v)})`);
    return undefined;
  }

  requiredInt(key: string, rule: IntRule): number {
    if (!this.has(key)) this.issue(key, `required (${describeInt(rule)})`);
    return this.int(key, rule) ?? rule.min;
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T | undefined {
    if (!this.has(key)) return undefined;
    const v = this.get(key);
    if ((values as readonly unknown[]).includes(v)) return v as T;
    this.issue(key, `expected ${listOf(values)} (got ${show(v)})`);
    return undefined;
  }

  bool(key: string): boolean | undefined {
    if (!this.has(key)) return undefined;
    const v = this.get(key);
    if (typeof v === 'boolean') return v;
    this.issue(key, `expected true or false (got ${show(v)})`);
    return undefined;
  }

  /** A finite number greater than `above`. */
  number(key: string, above: number): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.get(key);
    if (typeof v === 'number' && Number.isFinite(v) && v > above) return v;
    this.issue(key, `expected a number > ${above} (got ${show(v)})`);
    return undefined;
  }

  /** Bytes per second: a number, or a size string such as "10MiB". */
  rate(key: string): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.get(key);
    let bytes: number | undefined;
    if (typeof v === 'number' && Number.isSafeInteger(v)) bytes = v;
    else if (typeof v === 'string') bytes = sizeOrUndefined(v);
    if (bytes !== undefined && bytes > 0) return bytes;
    this.issue(key, `expected bytes per second > 0: a number, or a size with suffix K, KiB, M, MiB, G or GiB such as 10MiB (got ${show(v)})`);
    return undefined;
  }
}

function sizeOrUndefined(text: string): number | undefined {
  try {
    return parseSize(text);
  } catch {
    return undefined;
  }
}

type Entry = { fault: ScenarioFault } | { straggler: ScenarioStraggler } | { random: RandomSpec };

/** Validates one entry of a scenario (file or --inject) and normalises it; undefined if it has issues (pushed). */
function normaliseEntry(raw: unknown, path: string, id: number, issues: string[]): Entry | undefined {
  if (!isMapping(raw)) {
    issues.push(`${path}: expected a mapping with a kind, one of ${ENTRY_KINDS.join(', ')} (got ${show(raw)})`);
    return undefined;
  }
  const f = new Fields(raw, path, issues);
  if (!f.has('kind')) {
    f.issue('kind', `required (one of ${ENTRY_KINDS.join(', ')})`);
    return undefined;
  }
  const kind = f.oneOf('kind', ENTRY_KINDS);
  if (kind === undefined) return undefined;
  f.onlyKnown(ENTRY_FIELDS[kind], kind === 'random' ? 'a random entry' : `a ${kind} fault`);
  if (kind === 'random') {
    const random = readRandom(f);
    return f.failed ? undefined : { random };
  }
  if (isStragglerKind(kind)) {
    // The id is a placeholder: numberStragglers sets it once every fault is known.
    const straggler = readStraggler(kind, f, 0);
    return f.failed ? undefined : { straggler };
  }
  const fault = readFault(kind, f, id);
  return f.failed ? undefined : { fault };
}

function readFault(kind: FaultKind, f: Fields, id: number): ScenarioFault {
  switch (kind) {
    case 'kill':
      return { id, kind, rank: f.requiredInt('rank', INDEX), at: readTrigger(f) };
    case 'hang': {
      const fault: HangFault = { id, kind, rank: f.requiredInt('rank', INDEX), at: readTrigger(f) };
      const ms = f.int('ms', DURATION);
      if (ms !== undefined) fault.ms = ms;
      return fault;
    }
    case 'crash':
      return { id, kind, rank: f.requiredInt('rank', INDEX), at: readTrigger(f), code: f.int('code', EXIT_CODE) ?? FAULT_DEFAULTS.crashCode };
    case 'corrupt':
      return { id, kind, rank: f.requiredInt('rank', INDEX), at: readTrigger(f), frames: f.int('frames', COUNT) ?? FAULT_DEFAULTS.corruptFrames };
    case 'link':
      return readLink(f, id);
  }
}

function readLink(f: Fields, id: number): ScenarioFault {
  const from = f.requiredInt('from', INDEX);
  const to = readTo(f, from);
  const at = readTrigger(f);
  const cut = f.bool('cut');
  const fault: ScenarioFault & { kind: 'link' } = { id, kind: 'link', from, ...(to === undefined ? {} : { to }), at, cut: cut ?? false };
  const delayMs = f.int('delayMs', DURATION);
  const bandwidth = f.rate('bandwidth');
  const ms = f.int('ms', DURATION);
  if (fault.cut) {
    // A cut link delivers nothing, so a delay or a rate on it would mean nothing.
    for (const key of ['delayMs', 'bandwidth']) if (f.has(key)) f.issue(key, 'not with cut: true (a cut link delivers nothing)');
  } else if ((cut === false || !f.has('cut')) && !f.has('delayMs') && !f.has('bandwidth')) {
    f.issue(undefined, 'a link fault needs cut: true, delayMs or bandwidth');
  }
  if (delayMs !== undefined) fault.delayMs = delayMs;
  if (bandwidth !== undefined) fault.bandwidth = bandwidth;
  if (ms !== undefined) fault.ms = ms;
  return fault;
}

function isStragglerKind(kind: EntryKind): kind is StragglerKind {
  return (STRAGGLER_KINDS as readonly string[]).includes(kind);
}

/** A link's optional `to`: another rank than `from` (absent: `from`'s successor, filled in by expansion). */
function readTo(f: Fields, from: number): number | undefined {
  const to = f.int('to', INDEX);
  if (to !== undefined && f.has('from') && to === from) f.issue('to', `expected another rank than from (${from}): a link joins two workers`);
  return to;
}

function readStraggler(kind: StragglerKind, f: Fields, id: number): ScenarioStraggler {
  switch (kind) {
    case 'slow': {
      const fault: SlowFault = { id, kind, rank: f.requiredInt('rank', INDEX), at: readTrigger(f) };
      const factor = f.number('factor', 1);
      const addMs = f.int('addMs', DURATION);
      if (!f.has('factor') && !f.has('addMs')) f.issue(undefined, 'a slow fault needs factor (> 1) or addMs (> 0)');
      else if (f.has('factor') && f.has('addMs')) f.issue('addMs', 'not with factor (a slow rank is slowed by a factor or by addMs, not both)');
      if (factor !== undefined) fault.factor = factor;
      if (addMs !== undefined) fault.addMs = addMs;
      const steps = f.int('steps', COUNT);
      if (steps !== undefined) fault.steps = steps;
      return fault;
    }
    case 'slow-link': {
      const from = f.requiredInt('from', INDEX);
      const to = readTo(f, from);
      const fault: ScenarioStraggler & { kind: 'slow-link' } = { id, kind, from, ...(to === undefined ? {} : { to }), at: readTrigger(f) };
      const bandwidth = f.rate('bandwidth');
      const delayMs = f.int('delayMs', DURATION);
      if (!f.has('bandwidth') && !f.has('delayMs')) f.issue(undefined, 'a slow-link fault needs bandwidth or delayMs');
      if (bandwidth !== undefined) fault.bandwidth = bandwidth;
      if (delayMs !== undefined) fault.delayMs = delayMs;
      const steps = f.int('steps', COUNT);
      if (steps !== undefined) fault.steps = steps;
      return fault;
    }
    case 'jitter':
      return { id, kind, maxMs: f.requiredInt('maxMs', DURATION) };
    case 'pause': {
      const rank = f.requiredInt('rank', INDEX);
      const [ms, everyMs] = (['ms', 'everyMs'] as const).map((key) => {
        if (!f.has(key)) f.issue(key, `required (${describeInt(DURATION)})`);
        return f.int(key, DURATION);
      });
      // Compared only when both are valid, so a bad one is reported once.
      if (ms !== undefined && everyMs !== undefined && ms >= everyMs) f.issue('ms', `expected less than everyMs (${everyMs}), or the rank never runs (got ${ms})`);
      const fault: PauseFault = { id, kind, rank, ms: ms ?? DURATION.min, everyMs: everyMs ?? DURATION.min };
      if (f.has('at')) fault.at = readTrigger(f);
      const steps = f.int('steps', COUNT);
      const forMs = f.int('forMs', DURATION);
      if (f.has('steps') && f.has('forMs')) f.issue('forMs', 'not with steps (a pause lasts a number of steps or a time, not both)');
      if (steps !== undefined) fault.steps = steps;
      if (forMs !== undefined) fault.forMs = forMs;
      return fault;
    }
  }
}

function readTrigger(parent: Fields): Trigger {
  const placeholder: Trigger = { step: 0 };
  if (!parent.has('at')) {
    parent.issue('at', `required (${TRIGGER_HELP})`);
    return placeholder;
  }
  const raw = parent.get('at');
  if (!isMapping(raw)) {
    parent.issue('at', `expected ${TRIGGER_HELP} (got ${show(raw)})`);
    return placeholder;
  }
  const at = parent.child('at', raw);
  at.onlyKnown(TRIGGER_FIELDS, 'a trigger');
  let trigger: Trigger = placeholder;
  if (at.has('ms')) {
    if (at.has('step')) {
      at.issue('ms', 'not with step (a trigger is a step or a time, not both)');
    } else {
      for (const key of ['phase', 'chunk']) if (at.has(key)) at.issue(key, 'goes with step, not with ms');
      trigger = { ms: at.requiredInt('ms', INSTANT) };
    }
  } else if (!at.has('step')) {
    at.issue(undefined, `needs step or ms (${TRIGGER_HELP})`);
  } else {
    const step: { step: number; phase?: Phase; chunk?: number } = { step: at.requiredInt('step', INDEX) };
    const phase = at.oneOf('phase', PHASES);
    const chunk = at.int('chunk', INDEX);
    if (phase !== undefined) step.phase = phase;
    if (chunk !== undefined) step.chunk = chunk;
    if (at.has('chunk') && !at.has('phase')) at.issue('chunk', `needs a phase too (${listOf(PHASES)}): chunks are counted within a phase`);
    trigger = step;
  }
  return trigger;
}

function readRandom(f: Fields): RandomSpec {
  let meanSteps = 1;
  if (!f.has('meanSteps')) {
    f.issue('meanSteps', 'required (a number >= 1: the mean number of steps between faults)');
  } else {
    const v = f.get('meanSteps');
    if (typeof v === 'number' && Number.isFinite(v) && v >= 1) meanSteps = v;
    else f.issue('meanSteps', `expected a number >= 1: the mean number of steps between faults (got ${show(v)})`);
  }
  if (!f.has('kinds')) return { meanSteps, kinds: [...FAULT_DEFAULTS.randomKinds] };
  const list = f.get('kinds');
  if (!Array.isArray(list) || list.length === 0) {
    f.issue('kinds', `expected a non-empty list of ${FAULT_KINDS.join(', ')} (got ${show(list)})`);
    return { meanSteps, kinds: [] };
  }
  const kinds: FaultKind[] = [];
  list.forEach((k: unknown, i) => {
    if ((FAULT_KINDS as readonly unknown[]).includes(k)) kinds.push(k as FaultKind);
    else f.issue(`kinds[${i}]`, `expected one of ${FAULT_KINDS.join(', ')} (got ${show(k)})`);
  });
  return { meanSteps, kinds };
}

/**
 * Issues with a scenario for a run of `workers` ranks and `steps` steps: ranks that do not exist,
 * steps that never come, a chunk without its phase, a link from a rank to itself. Empty when the
 * scenario fits.
 */
export function validateAgainst(s: Scenario, o: { workers: number; steps: number }): string[] {
  const issues: string[] = [];
  const ranks = `0..${o.workers - 1}`;
  s.faults.forEach((f, i) => {
    const where = s.origins?.[i] ?? `faults[${i}]`;
    if (f.kind === 'link') checkLink(f, where, o.workers, issues);
    else if (!isRank(f.rank, o.workers)) {
      issues.push(`${where}.rank: ${f.rank} is not a rank (${ranks})`);
    }
    checkTrigger(f.at, where, o.steps, issues);
  });
  (s.stragglers ?? []).forEach((f, i) => {
    const where = s.stragglerOrigins?.[i] ?? `stragglers[${i}]`;
    if (f.kind === 'jitter') return;
    if (f.kind === 'slow-link') checkLink(f, where, o.workers, issues);
    else if (!isRank(f.rank, o.workers)) {
      issues.push(`${where}.rank: ${f.rank} is not a rank (${ranks})`);
    }
    if (f.at !== undefined) checkTrigger(f.at, where, o.steps, issues);
  });
  return issues;
}

function checkLink(f: { from: number; to?: number }, where: string, workers: number, issues: string[]): void {
  const ranks = `0..${workers - 1}`;
  if (workers < 2) {
    issues.push(`${where}.from: a ring of ${workers} worker has no links`);
    return;
  }
  if (!isRank(f.from, workers)) issues.push(`${where}.from: ${f.from} is not a rank (${ranks})`);
  if (f.to === undefined) return;
  if (!isRank(f.to, workers)) issues.push(`${where}.to: ${f.to} is not a rank (${ranks})`);
  else if (f.to === f.from) issues.push(`${where}.to: expected another rank than from (${f.from}): a link joins two workers`);
}

function checkTrigger(at: Trigger, where: string, steps: number, issues: string[]): void {
  if (!('step' in at)) return;
  if (at.step >= steps) {
    issues.push(`${where}.at.step: ${at.step} never comes, the run has ${steps} steps (0..${steps - 1}): this fault would never fire`);
  }
  if (at.chunk !== undefined && at.phase === undefined) {
    issues.push(`${where}.at.chunk: needs a phase too (${listOf(PHASES)}): chunks are counted within a phase`);
  }
}

function isRank(r: number, workers: number): boolean {
  return Number.isInteger(r) && r >= 0 && r < workers;
}
