// Fault scenarios: the file format, the --inject shorthand, checks against a run, and the faults
// a seed draws. Pure: the caller reads the file and passes its text in.
import { parseDocument } from 'yaml';
import { parseSize } from '../protocol/units.js';

export const FAULT_KINDS = ['kill', 'hang', 'crash', 'link', 'corrupt'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Kinds that slow a rank or a link down without failing it: stragglers. */
export const STRAGGLER_KINDS = ['slow', 'slow-link', 'jitter', 'pause'] as const;
export type StragglerKind = (typeof STRAGGLER_KINDS)[number];

/** What an entry of `faults:` may be: a fault, a straggler, or a spec of random faults. */
const ENTRY_KINDS = [...FAULT_KINDS, ...STRAGGLER_KINDS, 'random'] as const;
type EntryKind = (typeof ENTRY_KINDS)[number];

export const PHASES = ['reduce-scatter', 'all-gather'] as const;
export type Phase = (typeof PHASES)[number];

/** When a fault fires: at a training step (optionally a phase and a chunk of it), or `ms` after training starts. */
export type Trigger = { step: number; phase?: Phase; chunk?: number } | { ms: number };

/** SIGKILL the worker process. */
export interface KillFault {
  id: number;
  kind: 'kill';
  rank: number;
  at: Trigger;
}

/** SIGSTOP the worker, then SIGCONT after `ms`; without `ms` it stays stopped. */
export interface HangFault {
  id: number;
  kind: 'hang';
  rank: number;
  at: Trigger;
  ms?: number;
}

/** The worker exits by itself with `code`. */
export interface CrashFault {
  id: number;
  kind: 'crash';
  rank: number;
  at: Trigger;
  code: number;
}

/**
 * The directed link from rank `from` to its successor, for `ms` (without it: for good). Either
 * `cut` is true and neither `delayMs` nor `bandwidth` (bytes per second) is set, or `cut` is false
 * and at least one of them is.
 */
export interface LinkFault {
  id: number;
  kind: 'link';
  from: number;
  at: Trigger;
  cut: boolean;
  delayMs?: number;
  bandwidth?: number;
  ms?: number;
}

/** Flip bytes in the next `frames` data frames the rank sends. */
export interface CorruptFault {
  id: number;
  kind: 'corrupt';
  rank: number;
  at: Trigger;
  frames: number;
}

/** A normalised fault; `id` is its index in the expanded list. */
export type Fault = KillFault | HangFault | CrashFault | LinkFault | CorruptFault;

/**
 * The rank computes slower from `at`, for `steps` steps (without it: for good): each step takes
 * `factor` (> 1) times as long, or `addMs` longer. Exactly one of them is set.
 */
export interface SlowFault {
  id: number;
  kind: 'slow';
  rank: number;
  at: Trigger;
  factor?: number;
  addMs?: number;
  steps?: number;
}

/**
 * The directed link from rank `from` to its successor is slowed from `at`, for `steps` steps
 * (without it: for good): to `bandwidth` bytes per second, and/or by `delayMs`; at least one is set.
 */
export interface SlowLinkFault {
  id: number;
  kind: 'slow-link';
  from: number;
  at: Trigger;
  bandwidth?: number;
  delayMs?: number;
  steps?: number;
}

/** Every rank, every step, waits a time from 0 to `maxMs` drawn from the run's seed. */
export interface JitterFault {
  id: number;
  kind: 'jitter';
  maxMs: number;
}

/**
 * The rank stops for `ms` every `everyMs` (ms < everyMs), from `at` (without it: from the start),
 * for `steps` steps or `forMs` milliseconds (at most one; without both: for good).
 */
export interface PauseFault {
  id: number;
  kind: 'pause';
  rank: number;
  ms: number;
  everyMs: number;
  at?: Trigger;
  steps?: number;
  forMs?: number;
}

/** A normalised straggler; `id` continues after the scenario's faults. */
export type StragglerFault = SlowFault | SlowLinkFault | JitterFault | PauseFault;

/** Faults drawn from the run's seed: gaps of `meanSteps` on average, kinds drawn from `kinds` (repeat one to weight it). */
export interface RandomSpec {
  meanSteps: number;
  kinds: FaultKind[];
}

export interface Scenario {
  faults: Fault[];
  random: RandomSpec[];
  /**
   * Where each of `faults` was written ("faults[2]", "--inject[0]"), so that later checks name the
   * user's own path. Without it, fault i is called "faults[i]".
   */
  origins?: string[];
  /** Stragglers, apart from `faults` so that code handling Fault does not meet them. Ids follow the faults'. */
  stragglers: StragglerFault[];
  /** Where each of `stragglers` was written, as `origins` for faults. Without it, straggler i is "stragglers[i]". */
  stragglerOrigins?: string[];
}

/** One entry of a scenario before validation: a mapping from a file, or a parsed --inject word. */
export type FaultInput = Record<string, unknown>;

/** Defaults, in one place. */
const DEFAULT_CRASH_CODE = 1;
const DEFAULT_CORRUPT_FRAMES = 1;
const DEFAULT_RANDOM_KINDS: readonly FaultKind[] = FAULT_KINDS;

/** What the issues of --inject flags are reported against (a ScenarioError names its source). */
const COMMAND_LINE = 'command line';

/** A scenario that fails to parse or validate; `issues` are "path: message", in source order. */
export class ScenarioError extends Error {
  readonly source: string;
  readonly issues: string[];

  constructor(source: string, issues: string[]) {
    super(`${source}: ${issues.join('; ')}`);
    this.name = 'ScenarioError';
    this.source = source;
    this.issues = issues;
  }
}

// ---------------------------------------------------------------------------------------------
// Files

/**
 * Parses a scenario file's text: YAML for .yaml/.yml, JSON for .json, otherwise JSON if it parses
 * as JSON and YAML if not. Throws ScenarioError listing every problem found.
 */
export function parseScenario(text: string, fileName: string): Scenario {
  const doc = readDocument(text.replace(/^\uFEFF/, ''), fileName);
  if ('issue' in doc) throw new ScenarioError(fileName, [doc.issue]);
  const issues: string[] = [];
  const scenario = scenarioFrom(doc.value, issues);
  if (issues.length > 0) throw new ScenarioError(fileName, issues);
  return scenario;
}

const ROOT_HELP = 'expected a mapping with a faults list';

function scenarioFrom(value: unknown, issues: string[]): Scenario {
  const scenario = emptyScenario();
  if (!isMapping(value)) {
    issues.push(`(root): ${ROOT_HELP} (got ${show(value)})`);
    return scenario;
  }
  for (const key of Object.keys(value)) {
    if (key !== 'faults') issues.push(`${key}: unknown field (the file takes faults)`);
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
  return numberStragglers(scenario);
}

function emptyScenario(): Scenario {
  return { faults: [], random: [], origins: [], stragglers: [], stragglerOrigins: [] };
}

/** Stragglers are numbered after every fault, wherever they were written among them. */
function numberStragglers(scenario: Scenario): Scenario {
  scenario.stragglers = scenario.stragglers.map((f, i) => ({ ...f, id: scenario.faults.length + i }));
  return scenario;
}

function addEntry(scenario: Scenario, raw: unknown, path: string, issues: string[]): void {
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

type Parsed = { value: unknown } | { issue: string };

function readDocument(text: string, fileName: string): Parsed {
  if (text.trim() === '') return { issue: `(root): the file is empty; ${ROOT_HELP}` };
  const ext = /\.([^./\\]+)$/.exec(fileName)?.[1]?.toLowerCase();
  if (ext === 'json') return readJson(text);
  if (ext === 'yaml' || ext === 'yml') return readYaml(text);
  const json = readJson(text);
  // YAML is (nearly) a superset of JSON, so when both fail its error is the one worth showing.
  return 'value' in json ? json : readYaml(text);
}

function readYaml(text: string): Parsed {
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error !== undefined) {
    const where = error.linePos ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : '(root)';
    // yaml appends " at line L, column C:" and a source excerpt; the location is already in front.
    return { issue: `${where}: ${error.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '')}` };
  }
  try {
    return { value: doc.toJS() };
  } catch (e) {
    // Alias bombs and the like: yaml refuses to expand them.
    return { issue: `(root): ${(e as Error).message}` };
  }
}

function readJson(text: string): Parsed {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    // Node 20's messages often carry no position; find it ourselves and keep only the reason.
    const reason = (e as Error).message.replace(/ at position \d+[\s\S]*$/, '').replace(/, "[\s\S]*" is not valid JSON$/, '');
    const offset = jsonErrorOffset(text);
    if (offset === undefined) return { issue: `(root): ${reason}` };
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    return { issue: `line ${line}, column ${column}: ${reason}` };
  }
}

class JsonStop {
  constructor(readonly offset: number) {}
}

/** The offset of the first JSON syntax error in `t` (a small recogniser of RFC 8259), or undefined if none is found. */
function jsonErrorOffset(t: string): number | undefined {
  let i = 0;
  const stop = (): never => {
    throw new JsonStop(i);
  };
  const space = () => {
    while (i < t.length && ' \t\n\r'.includes(t[i]!)) i++;
  };
  const expect = (c: string) => {
    if (t[i] !== c) stop();
    i++;
  };
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const literal = (word: string) => {
    for (const c of word) expect(c);
  };
  const escape = /["\\/bfnrt]|u[0-9a-fA-F]{4}/y;
  const string = () => {
    i++;
    for (;;) {
      if (i >= t.length || t.charCodeAt(i) < 0x20) stop();
      const c = t[i++];
      if (c === '"') return;
      if (c === '\\') {
        escape.lastIndex = i;
        if (!escape.test(t)) stop();
        i = escape.lastIndex;
      }
    }
  };
  const value = (): void => {
    space();
    const c = t[i];
    if (c === '"') return string();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      space();
      if (t[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          space();
          if (t[i] !== '"') stop();
          string();
          space();
          expect(':');
        }
        value();
        space();
        if (t[i] !== ',') return expect(close);
        i++;
      }
    }
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    number.lastIndex = i;
    if (!number.test(t)) stop();
    i = number.lastIndex;
  };
  try {
    value();
    space();
    return i < t.length ? i : undefined;
  } catch (e) {
    if (e instanceof JsonStop) return e.offset;
    return undefined; // nesting too deep for the recogniser: no location, the reason still shows
  }
}

// ---------------------------------------------------------------------------------------------
// The --inject shorthand

/**
 * One --inject word as the entry it stands for: `kill:rank=3:step=4:phase=reduce-scatter` is
 * `{ kind: 'kill', rank: 3, at: { step: 4, phase: 'reduce-scatter' } }`. `step`, `phase` and
 * `chunk` go into `at`; `atMs=T` is `at: { ms: T }`. Numbers become numbers, true/false booleans,
 * `kinds` a comma list. Not validated (parseInjects does that); throws ScenarioError only when the
 * word is not `kind:field=value:...`.
 */
export function parseInject(spec: string): FaultInput {
  const issues: string[] = [];
  const input = injectInput(spec, '--inject', issues);
  if (issues.length > 0) throw new ScenarioError(COMMAND_LINE, issues);
  return input;
}

/** The faults of the --inject flags, validated like a file's, with paths `--inject[i]`. */
export function parseInjects(specs: string[]): Scenario {
  const issues: string[] = [];
  const scenario = emptyScenario();
  specs.forEach((spec, i) => {
    const path = `--inject[${i}]`;
    const before = issues.length;
    const input = injectInput(spec, path, issues);
    // A word that does not split cleanly would only add confusing follow-on issues.
    if (issues.length === before) addEntry(scenario, input, path, issues);
  });
  if (issues.length > 0) throw new ScenarioError(COMMAND_LINE, issues);
  return numberStragglers(scenario);
}

const INJECT_EXAMPLE = 'e.g. kill:rank=3:step=4';
/** Shorthand keys that are fields of `at`, and the field each one is. */
const INJECT_TRIGGER_KEYS: Record<string, string> = { step: 'step', phase: 'phase', chunk: 'chunk', atMs: 'ms' };

function injectInput(spec: string, path: string, issues: string[]): FaultInput {
  const [kind = '', ...pairs] = spec.split(':');
  const input: FaultInput = {};
  if (kind === '' || kind.includes('=')) {
    issues.push(`${path}.kind: the shorthand starts with the kind, one of ${ENTRY_KINDS.join(', ')} (${INJECT_EXAMPLE}; got ${show(spec)})`);
  } else {
    input.kind = kind;
  }
  const at: Record<string, unknown> = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/s.exec(pair);
    if (!m) {
      issues.push(`${path}: ${show(pair)} is not field=value (${INJECT_EXAMPLE})`);
      continue;
    }
    const [, key, text] = m as unknown as [string, string, string];
    if (key === 'at') {
      issues.push(`${path}.at: in the shorthand write step=N (with phase= and chunk=) or atMs=T`);
      continue;
    }
    const atField = INJECT_TRIGGER_KEYS[key];
    const [target, field, fieldPath] = atField === undefined ? [input, key, `${path}.${key}`] : [at, atField, `${path}.at.${atField}`];
    if (Object.hasOwn(target, field)) {
      issues.push(`${fieldPath}: given twice`);
      continue;
    }
    target[field] = key === 'kinds' ? text.split(',') : injectValue(text);
  }
  if (Object.keys(at).length > 0) input.at = at;
  return input;
}

function injectValue(text: string): string | number | boolean {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?\d+(?:\.\d+)?$/.test(text)) return Number(text);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Validation of one entry

/** Fields each entry kind takes, in the order messages list them. */
const ENTRY_FIELDS: Record<EntryKind, readonly string[]> = {
  kill: ['kind', 'rank', 'at'],
  hang: ['kind', 'rank', 'at', 'ms'],
  crash: ['kind', 'rank', 'at', 'code'],
  link: ['kind', 'from', 'at', 'cut', 'delayMs', 'bandwidth', 'ms'],
  corrupt: ['kind', 'rank', 'at', 'frames'],
  slow: ['kind', 'rank', 'at', 'factor', 'addMs', 'steps'],
  'slow-link': ['kind', 'from', 'at', 'bandwidth', 'delayMs', 'steps'],
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
      if (!known.includes(key)) this.issue(key, `unknown field (${taker} takes ${known.join(', ')})`);
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

type Entry = { fault: Fault } | { straggler: StragglerFault } | { random: RandomSpec };

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

function readFault(kind: FaultKind, f: Fields, id: number): Fault {
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
      return { id, kind, rank: f.requiredInt('rank', INDEX), at: readTrigger(f), code: f.int('code', EXIT_CODE) ?? DEFAULT_CRASH_CODE };
    case 'corrupt':
      return { id, kind, rank: f.requiredInt('rank', INDEX), at: readTrigger(f), frames: f.int('frames', COUNT) ?? DEFAULT_CORRUPT_FRAMES };
    case 'link':
      return readLink(f, id);
  }
}

function readLink(f: Fields, id: number): LinkFault {
  const from = f.requiredInt('from', INDEX);
  const at = readTrigger(f);
  const cut = f.bool('cut');
  const fault: LinkFault = { id, kind: 'link', from, at, cut: cut ?? false };
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

function readStraggler(kind: StragglerKind, f: Fields, id: number): StragglerFault {
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
      const fault: SlowLinkFault = { id, kind, from: f.requiredInt('from', INDEX), at: readTrigger(f) };
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
  if (!f.has('kinds')) return { meanSteps, kinds: [...DEFAULT_RANDOM_KINDS] };
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

// ---------------------------------------------------------------------------------------------
// Checks against a run, and merging

/**
 * Issues with a scenario for a run of `workers` ranks and `steps` steps: ranks that do not exist,
 * steps that never come, a chunk without its phase. Empty when the scenario fits.
 */
export function validateAgainst(s: Scenario, o: { workers: number; steps: number }): string[] {
  const issues: string[] = [];
  const ranks = `0..${o.workers - 1}`;
  s.faults.forEach((f, i) => {
    const where = s.origins?.[i] ?? `faults[${i}]`;
    if (f.kind === 'link') {
      if (o.workers < 2) issues.push(`${where}.from: a ring of ${o.workers} worker has no links`);
      else if (!isRank(f.from, o.workers)) issues.push(`${where}.from: ${f.from} is not a rank (${ranks})`);
    } else if (!isRank(f.rank, o.workers)) {
      issues.push(`${where}.rank: ${f.rank} is not a rank (${ranks})`);
    }
    checkTrigger(f.at, where, o.steps, issues);
  });
  (s.stragglers ?? []).forEach((f, i) => {
    const where = s.stragglerOrigins?.[i] ?? `stragglers[${i}]`;
    if (f.kind === 'jitter') return;
    if (f.kind === 'slow-link') {
      if (o.workers < 2) issues.push(`${where}.from: a ring of ${o.workers} worker has no links`);
      else if (!isRank(f.from, o.workers)) issues.push(`${where}.from: ${f.from} is not a rank (${ranks})`);
    } else if (!isRank(f.rank, o.workers)) {
      issues.push(`${where}.rank: ${f.rank} is not a rank (${ranks})`);
    }
    if (f.at !== undefined) checkTrigger(f.at, where, o.steps, issues);
  });
  return issues;
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

/**
 * One scenario from several (a file and --inject flags): faults renumbered in order, then
 * stragglers numbered after every fault, origins kept.
 */
export function mergeScenarios(...parts: Scenario[]): Scenario {
  const merged = emptyScenario();
  for (const part of parts) {
    part.faults.forEach((f, i) => {
      merged.origins!.push(part.origins?.[i] ?? `faults[${i}]`);
      merged.faults.push({ ...f, id: merged.faults.length });
    });
    (part.stragglers ?? []).forEach((f, i) => {
      merged.stragglerOrigins!.push(part.stragglerOrigins?.[i] ?? `stragglers[${i}]`);
      merged.stragglers.push(f);
    });
    merged.random.push(...part.random);
  }
  return numberStragglers(merged);
}

/**
 * The stragglers of a run, ids from `firstId` (by default, after the scenario's own faults). Pass
 * `expandScenario(s, o).length` to keep them apart from the ids of randomly drawn faults too.
 */
export function expandStragglers(s: Scenario, firstId: number = s.faults.length): StragglerFault[] {
  return (s.stragglers ?? []).map((f, i) => ({ ...f, id: firstId + i }));
}

// ---------------------------------------------------------------------------------------------
// Random faults

/**
 * The faults `r` draws for a run, in step order, ids from `firstId`. Deterministic in the seed.
 * Gaps between faults are geometric with mean `meanSteps` (the whole-step counterpart of an
 * exponential, never less than 1), so no two share a step and none is at step 0: the first
 * checkpoint must exist before anything fails.
 */
export function expandRandom(r: RandomSpec, o: { seed: number; workers: number; steps: number; firstId: number }): Fault[] {
  if (!(Number.isFinite(r.meanSteps) && r.meanSteps >= 1)) throw new RangeError(`meanSteps must be a number >= 1, got ${r.meanSteps}`);
  if (r.kinds.length === 0) throw new RangeError('kinds must name at least one fault kind');
  if (!Number.isSafeInteger(o.workers) || o.workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${o.workers}`);
  if (!Number.isSafeInteger(o.steps) || o.steps < 0) throw new RangeError(`steps must be an integer >= 0, got ${o.steps}`);
  const random = seededRandom(o.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  // The chance that a given step has no fault; 0 puts one at every step.
  const quiet = 1 - 1 / r.meanSteps;
  const faults: Fault[] = [];
  let step = 0;
  for (;;) {
    step += quiet === 0 ? 1 : 1 + Math.floor(Math.log(1 - random()) / Math.log(quiet));
    if (step >= o.steps) return faults;
    const id = o.firstId + faults.length;
    const kind = r.kinds[int(0, r.kinds.length - 1)]!;
    const rank = int(0, o.workers - 1);
    const at: Trigger = { step, phase: PHASES[int(0, 1)]!, chunk: int(0, 1) };
    switch (kind) {
      case 'kill':
        faults.push({ id, kind, rank, at });
        break;
      case 'hang':
        faults.push({ id, kind, rank, at, ms: int(200, 1500) });
        break;
      case 'crash':
        faults.push({ id, kind, rank, at, code: int(1, 9) });
        break;
      case 'corrupt':
        faults.push({ id, kind, rank, at, frames: int(1, 3) });
        break;
      case 'link': {
        const ms = int(200, 1500);
        faults.push(random() < 0.5 ? { id, kind, from: rank, at, cut: true, ms } : { id, kind, from: rank, at, cut: false, delayMs: int(20, 100), ms });
        break;
      }
    }
  }
}

/**
 * Every fault of a run: the scenario's own, then each random spec's draws (spec j from its own
 * seed derived from `seed`), skipping draws at a step another fault already has. Ids are indices.
 */
export function expandScenario(s: Scenario, o: { seed: number; workers: number; steps: number }): Fault[] {
  const faults: Fault[] = s.faults.map((f, id) => ({ ...f, id }));
  const taken = new Set(faults.flatMap((f) => ('step' in f.at ? [f.at.step] : [])));
  s.random.forEach((r, j) => {
    for (const f of expandRandom(r, { ...o, seed: j === 0 ? o.seed : mix32(seedBits(o.seed) ^ mix32(j)), firstId: 0 })) {
      const step = (f.at as { step: number }).step;
      if (taken.has(step)) continue;
      taken.add(step);
      faults.push({ ...f, id: faults.length });
    }
  });
  return faults;
}

/** Keeps scenario draws apart from other streams drawn from the same run seed. */
const SCENARIO_SALT = 0x5ce2a710;

/** A generator of numbers in [0, 1) from a seed: splitmix32 (a Weyl sequence through a 32-bit finaliser). */
function seededRandom(seed: number): () => number {
  let state = mix32(seedBits(seed) ^ SCENARIO_SALT);
  return () => {
    state = (state + 0x9e3779b9) | 0;
    return (mix32(state) >>> 0) / 2 ** 32;
  };
}

/** 32 bits of a safe-integer seed, high half folded in. */
function seedBits(seed: number): number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  return (seed >>> 0) ^ mix32(Math.floor(seed / 2 ** 32) >>> 0);
}

/** The murmur3 32-bit finaliser: a bijection that mixes every input bit into every output bit. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as a message names it: numbers and short strings as written, containers by kind. */
function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}

function listOf(values: readonly string[]): string {
  return values.length === 2 ? `${values[0]} or ${values[1]}` : `one of ${values.join(', ')}`;
}
