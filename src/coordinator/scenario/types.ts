// The types of fault scenarios, the limits on them, and the error every part throws. The kinds,
// phases and defaults themselves are the wire contract's (src/protocol/faults.ts).
import { FAULT_KINDS, STRAGGLER_KINDS, type StepTrigger } from '../../protocol/faults.js';

export {
  FAULT_DEFAULTS,
  FAULT_KINDS,
  FAULT_PHASES,
  FAULT_PHASES as PHASES,
  STRAGGLER_KINDS,
  type FaultKind,
  type FaultPhase,
  type FaultPhase as Phase,
  type StepTrigger,
  type StragglerKind,
} from '../../protocol/faults.js';
import type { FaultKind } from '../../protocol/faults.js';

/** What an entry of `faults:` may be: a fault, a straggler, or a spec of random faults. */
export const ENTRY_KINDS = [...FAULT_KINDS, ...STRAGGLER_KINDS, 'random'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/**
 * Largest scenario file read, in bytes: a bigger one is refused before it is read. 1 MiB holds
 * some 20,000 faults written out (random entries draw more); the yaml parser takes about 3 s and
 * 150 MB per MiB here, so a 4 MiB file would cost half a minute and most of a GiB.
 */
export const MAX_SCENARIO_BYTES = 2 ** 20;
/** Most faults, and separately most stragglers, a scenario may hold once expanded (random draws included). */
export const MAX_SCENARIO_FAULTS = 100_000;
/** Issues a ScenarioError lists; the rest are counted ("... and N more"). */
export const MAX_LISTED_ISSUES = 10;
/** Longest issue shown, in characters (a line quoting a huge key or value is cut). */
const MAX_ISSUE_CHARS = 300;

/** When a fault fires: at a training step (optionally a phase and a chunk of it), or `ms` after training starts. */
export type Trigger = StepTrigger | { ms: number };

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
 * The directed link from rank `from` to rank `to` (ranks are launch identities: the physical
 * cable, whatever algorithm runs over it), for `ms` (without it: for good). Either `cut` is true
 * and neither `delayMs` nor `bandwidth` (bytes per second) is set, or `cut` is false and at least
 * one of them is. In a scenario `to` may be left out: it is then `from`'s successor in the launch
 * ring, (from + 1) % workers, which expansion fills in.
 */
export interface LinkFault {
  id: number;
  kind: 'link';
  from: number;
  to: number;
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

/** A normalised fault; `id` is its index in the expanded list. Links have both ends. */
export type Fault = KillFault | HangFault | CrashFault | LinkFault | CorruptFault;

/** `to` as written: absent means `from`'s successor, filled in by expansion (it needs the ring size). */
type OptionalTo<F extends { to: number }> = Omit<F, 'to'> & { to?: number };

/** A fault as a scenario holds it, before expansion: a link's `to` may be missing. */
export type ScenarioFault = Exclude<Fault, LinkFault> | OptionalTo<LinkFault>;

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
 * The directed link from rank `from` to rank `to` is slowed from `at`, for `steps` steps (without
 * it: for good): to `bandwidth` bytes per second, and/or by `delayMs`; at least one is set. `to`
 * as for LinkFault: optional in a scenario, `from`'s successor by default.
 */
export interface SlowLinkFault {
  id: number;
  kind: 'slow-link';
  from: number;
  to: number;
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

/** A normalised straggler; `id` continues after the scenario's faults. Links have both ends. */
export type StragglerFault = SlowFault | SlowLinkFault | JitterFault | PauseFault;

/** A straggler as a scenario holds it, before expansion: a slow link's `to` may be missing. */
export type ScenarioStraggler = Exclude<StragglerFault, SlowLinkFault> | OptionalTo<SlowLinkFault>;

/** Faults drawn from the run's seed: gaps of `meanSteps` on average, kinds drawn from `kinds` (repeat one to weight it). */
export interface RandomSpec {
  meanSteps: number;
  kinds: FaultKind[];
}

export interface Scenario {
  faults: ScenarioFault[];
  random: RandomSpec[];
  /**
   * Where each of `faults` was written ("faults[2]", "--inject[0]"), so that later checks name the
   * user's own path. Without it, fault i is called "faults[i]".
   */
  origins?: string[];
  /** Stragglers, apart from `faults` so that code handling Fault does not meet them. Ids follow the faults'. */
  stragglers: ScenarioStraggler[];
  /** Where each of `stragglers` was written, as `origins` for faults. Without it, straggler i is "stragglers[i]". */
  stragglerOrigins?: string[];
}

/** One entry of a scenario before validation: a mapping from a file, or a parsed --inject word. */
export type FaultInput = Record<string, unknown>;

/** A scenario that fails to parse or validate; `issues` are "path: message", in source order. */
export class ScenarioError extends Error {
  readonly source: string;
  readonly issues: string[];

  /** Issues found beyond the MAX_LISTED_ISSUES kept in `issues`. */
  readonly more: number;

  constructor(source: string, issues: readonly string[]) {
    const listed = issues.slice(0, MAX_LISTED_ISSUES).map(clip);
    const more = issues.length - listed.length;
    super(`${clip(source)}: ${listed.join('; ')}${more > 0 ? `; ... and ${more} more` : ''}`);
    this.name = 'ScenarioError';
    this.source = source;
    this.issues = listed;
    this.more = more;
  }
}

function clip(line: string): string {
  return line.length > MAX_ISSUE_CHARS ? `${line.slice(0, MAX_ISSUE_CHARS)}…` : line;
}

/** What the issues of --inject flags are reported against (a ScenarioError names its source). */
export const COMMAND_LINE = 'command line';

export function emptyScenario(): Scenario {
  return { faults: [], random: [], origins: [], stragglers: [], stragglerOrigins: [] };
}

/** Stragglers are numbered after every fault, wherever they were written among them. */
export function numberStragglers(scenario: Scenario): Scenario {
  scenario.stragglers = scenario.stragglers.map((f, i) => ({ ...f, id: scenario.faults.length + i }));
  return scenario;
}

// ---------------------------------------------------------------------------------------------
// How messages name values

export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as a message names it: numbers and short strings as written, containers by kind. */
export function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}

export function listOf(values: readonly string[]): string {
  return values.length === 2 ? `${values[0]} or ${values[1]}` : `one of ${values.join(', ')}`;
}

/** A key as a message names it: cut if long (a file may hold a megabyte-long key). */
export function showKey(key: string): string {
  return key.length > 40 ? `${JSON.stringify(key.slice(0, 40))}…` : key;
}
