// Random faults: what a `random` entry draws from the run's seed, on its own sub-stream.
import { randomInt, substream } from '../../collective/random.js';
import { MAX_SCENARIO_FAULTS, PHASES, ScenarioError, type Fault, type RandomSpec, type Trigger } from './types.js';

/** The sub-stream of the run's seed that random faults are drawn from. */
export const RANDOM_FAULTS_STREAM = 'scenario.random-faults';

/**
 * The faults `r` draws for a run, in step order, ids from `firstId`. Deterministic in the seed.
 * Gaps between faults are geometric with mean `meanSteps` (the whole-step counterpart of an
 * exponential, never less than 1), so no two share a step and none is at step 0: the first
 * checkpoint must exist before anything fails. A link fault joins two distinct ranks drawn among
 * all pairs; with one worker there are no links, and `link` draws nothing. Throws ScenarioError
 * (naming `source`) when the draws would pass `limit` faults (by default MAX_SCENARIO_FAULTS).
 */
export function expandRandom(
  r: RandomSpec,
  o: { seed: number; workers: number; steps: number; firstId: number; limit?: number; source?: string },
): Fault[] {
  if (!(Number.isFinite(r.meanSteps) && r.meanSteps >= 1)) throw new RangeError(`meanSteps must be a number >= 1, got ${r.meanSteps}`);
  if (r.kinds.length === 0) throw new RangeError('kinds must name at least one fault kind');
  if (!Number.isSafeInteger(o.workers) || o.workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${o.workers}`);
  if (!Number.isSafeInteger(o.steps) || o.steps < 0) throw new RangeError(`steps must be an integer >= 0, got ${o.steps}`);
  const limit = o.limit ?? MAX_SCENARIO_FAULTS;
  const random = substream(o.seed, RANDOM_FAULTS_STREAM);
  const int = (lo: number, hi: number) => randomInt(random, lo, hi);
  const kinds = o.workers < 2 ? r.kinds.filter((k) => k !== 'link') : r.kinds;
  // The chance that a given step has no fault; 0 puts one at every step.
  const quiet = 1 - 1 / r.meanSteps;
  const faults: Fault[] = [];
  if (kinds.length === 0) return faults;
  let step = 0;
  for (;;) {
    step += quiet === 0 ? 1 : 1 + Math.floor(Math.log(1 - random()) / Math.log(quiet));
    if (step >= o.steps) return faults;
    if (faults.length >= limit) {
      throw new ScenarioError(o.source ?? 'scenario', [
        `random (meanSteps ${r.meanSteps} over ${o.steps} steps): draws more than ${limit} faults, past the ${MAX_SCENARIO_FAULTS} a scenario may hold with its other faults: raise meanSteps or run fewer steps`,
      ]);
    }
    const id = o.firstId + faults.length;
    const kind = kinds[int(0, kinds.length - 1)]!;
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
        // Any other rank: every directed pair is equally likely.
        const to = (rank + int(1, o.workers - 1)) % o.workers;
        const ms = int(200, 1500);
        faults.push(random() < 0.5 ? { id, kind, from: rank, to, at, cut: true, ms } : { id, kind, from: rank, to, at, cut: false, delayMs: int(20, 100), ms });
        break;
      }
    }
  }
}
