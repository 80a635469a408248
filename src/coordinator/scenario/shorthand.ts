// The --inject shorthand: `kind:field=value:...` words, read into the entries a file would hold
// and validated like a file's.
import { resolveFault } from './expand.js';
import { addEntry, validateAgainst } from './validate.js';
import { COMMAND_LINE, emptyScenario, ENTRY_KINDS, FAULT_KINDS, numberStragglers, ScenarioError, show, type EntryKind, type Fault, type FaultInput, type FaultKind, type Scenario } from './types.js';

/**
 * One --inject word as the entry it stands for: `kill:rank=3:step=4:phase=reduce-scatter` is
 * `{ kind: 'kill', rank: 3, at: { step: 4, phase: 'reduce-scatter' } }`. `step`, `phase` and
 * `chunk` go into `at`; `atMs=T` is `at: { ms: T }`. Numbers become numbers, true/false booleans,
 * `kinds` a comma list. A link's other end is `to=N` (`link:from=2:to=5:step=3:cut=true`). Not validated (parseInjects does that); throws ScenarioError only when the
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

/** What a live job's issues are reported against (`ringswarm inject`, startRun().inject). */
export const LIVE_INJECT = 'inject';

/**
 * A fault for a job that runs (`ringswarm inject 'kill:rank=3'`): one shorthand word (or the entry
 * a scenario file would hold), validated
 * against the job like a --inject flag, with id `id`. Without a trigger it fires now (written as
 * `at: { ms: 0 }`: the start of training, which has passed); `atMs=T` is T ms after training
 * started (at once if that has passed); `step=N` arms it for step N. Stragglers and random specs
 * shape a run from its launch and are refused here. Throws ScenarioError.
 */
export function parseLiveInject(spec: string | FaultInput, o: { workers: number; steps: number; id: number }): Fault {
  const issues: string[] = [];
  const input = typeof spec === 'string' ? injectInput(spec, 'fault', issues) : { ...spec };
  if (issues.length > 0) throw new ScenarioError(LIVE_INJECT, issues);
  const scenario = emptyScenario();
  if (ENTRY_KINDS.includes(input.kind as EntryKind) && !FAULT_KINDS.includes(input.kind as FaultKind)) {
    issues.push(`fault.kind: ${show(input.kind)} is set when a run starts (--inject or --scenario); a running job takes the faults ${FAULT_KINDS.join(', ')}`);
  } else {
    input.at ??= { ms: 0 };
    addEntry(scenario, input, 'fault', issues);
  }
  if (issues.length === 0) issues.push(...validateAgainst(scenario, o));
  if (issues.length > 0) throw new ScenarioError(LIVE_INJECT, issues);
  return { ...resolveFault(scenario.faults[0]!, o.workers), id: o.id };
}
