// From scenarios to a run's faults: merging a file with --inject flags, drawing the random
// faults, giving every link its other end, and the bounds on how much a scenario may hold.
import { deriveSeed } from '../../collective/random.js';
import { validateAgainst } from './validate.js';
import { expandRandom, RANDOM_FAULTS_STREAM } from './random-faults.js';
import {
  emptyScenario,
  MAX_SCENARIO_FAULTS,
  numberStragglers,
  ScenarioError,
  type Fault,
  type Scenario,
  type ScenarioFault,
  type ScenarioStraggler,
  type StragglerFault,
} from './types.js';

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

/** `from`'s successor in the launch ring: the other end of a link written without `to`. */
export function defaultLinkTo(from: number, workers: number): number {
  return (from + 1) % workers;
}

/** A fault with its link's `to` filled in (every other kind as it is). */
export function resolveFault(f: ScenarioFault, workers: number): Fault {
  return f.kind === 'link' ? { ...f, to: f.to ?? defaultLinkTo(f.from, workers) } : f;
}

/** A straggler with its slow link's `to` filled in (every other kind as it is). */
export function resolveStraggler(f: ScenarioStraggler, workers: number): StragglerFault {
  return f.kind === 'slow-link' ? { ...f, to: f.to ?? defaultLinkTo(f.from, workers) } : f;
}

/**
 * The stragglers of a run, ids from `firstId` (by default, after the scenario's own faults), each
 * slow link with its `to`. Pass `expandScenario(s, o).length` to keep them apart from the ids of
 * randomly drawn faults too. Throws ScenarioError past MAX_SCENARIO_FAULTS stragglers.
 */
export function expandStragglers(s: Scenario, o: { workers: number; firstId?: number; source?: string }): StragglerFault[] {
  const stragglers = s.stragglers ?? [];
  if (stragglers.length > MAX_SCENARIO_FAULTS) {
    throw new ScenarioError(o.source ?? 'scenario', [`(root): ${stragglers.length} stragglers; a scenario may hold at most ${MAX_SCENARIO_FAULTS}`]);
  }
  const firstId = o.firstId ?? s.faults.length;
  return stragglers.map((f, i) => ({ ...resolveStraggler(f, o.workers), id: firstId + i }));
}

/**
 * Every fault of a run: the scenario's own, then each random spec's draws (spec j from its own
 * sub-stream of `seed`), skipping draws at a step another fault already has. Ids are indices;
 * every link has its `to`. Throws ScenarioError (naming `source`) when the scenario holds, or its
 * random specs would draw, more than MAX_SCENARIO_FAULTS faults in all.
 */
export function expandScenario(s: Scenario, o: { seed: number; workers: number; steps: number; source?: string }): Fault[] {
  const source = o.source ?? 'scenario';
  if (s.faults.length > MAX_SCENARIO_FAULTS) {
    throw new ScenarioError(source, [`(root): ${s.faults.length} faults; a scenario may hold at most ${MAX_SCENARIO_FAULTS}`]);
  }
  const faults: Fault[] = s.faults.map((f, id) => ({ ...resolveFault(f, o.workers), id }));
  const taken = new Set(faults.flatMap((f) => ('step' in f.at ? [f.at.step] : [])));
  // What the random specs may still draw, all together: bounds the work as well as the result.
  let budget = MAX_SCENARIO_FAULTS - faults.length;
  s.random.forEach((r, j) => {
    const seed = j === 0 ? o.seed : deriveSeed(o.seed, RANDOM_FAULTS_STREAM, 'spec', j);
    const drawn = expandRandom(r, { seed, workers: o.workers, steps: o.steps, firstId: 0, limit: budget, source });
    budget -= drawn.length;
    for (const f of drawn) {
      const step = (f.at as { step: number }).step;
      if (taken.has(step)) continue;
      taken.add(step);
      faults.push({ ...f, id: faults.length });
    }
  });
  return faults;
}

/**
 * A run's faults and stragglers from its scenario parts (a file's, the --inject flags'): merged,
 * checked against the run, expanded. Throws ScenarioError naming `source` with the issues found.
 * Straggler ids follow every fault's, the randomly drawn ones included.
 */
export function scenarioForRun(
  parts: Scenario[],
  o: { seed: number; workers: number; steps: number },
  source: string,
): { faults: Fault[]; stragglers: StragglerFault[] } {
  const scenario = mergeScenarios(...parts);
  const issues = validateAgainst(scenario, o);
  if (issues.length > 0) throw new ScenarioError(source, issues);
  const faults = expandScenario(scenario, { ...o, source });
  return { faults, stragglers: expandStragglers(scenario, { workers: o.workers, firstId: faults.length, source }) };
}
