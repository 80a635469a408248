// The stateDigest a fault-free run would end with, computed in this process without running it: a
// card's state after N steps is a pure function of (seed, card, step), since each step's
// all-reduce result, when exact, is the closed form (fillExpected). The workers' own CardGroup does
// the arithmetic, in their order (gradients, fold own, the result, broadcast, apply), so the bits
// are theirs. No ring, no processes, no clock: much cheaper than running the job again, in `sim` or
// for real (see the README's demo section for what it cost).
import { allocElements, elementBytes, type DType, type Elements, type ReduceOp } from '../collective/dtypes.js';
import { fillExpected } from '../collective/inputs.js';
import { CardGroup, jobDigest } from './cards.js';

/** What the digest of a fault-free run depends on (not how the cards are grouped, nor the algorithm or the timing). */
export interface DigestShape {
  workers: number;
  cardsPerWorker: number;
  bytesPerCard: number;
  dtype: DType;
  op: ReduceOp;
  steps: number;
  seed: number;
}

/** Beyond this, each step's result is recomputed per worker rather than kept for all of them. */
const CACHE_LIMIT_BYTES = 256 << 20;

/** SHA-256 over every card's final state digest, in card order: the stateDigest of a fault-free run (or of one healed by restart or spare). */
export function faultFreeDigest(o: DigestShape): string {
  const eb = elementBytes(o.dtype);
  if (!Number.isInteger(o.bytesPerCard / eb) || o.bytesPerCard <= 0) throw new RangeError(`bytesPerCard ${o.bytesPerCard} is not a whole number of ${o.dtype} elements`);
  if (!Number.isInteger(o.workers) || o.workers < 1 || !Number.isInteger(o.cardsPerWorker) || o.cardsPerWorker < 1) throw new RangeError('workers and cardsPerWorker must be integers >= 1');
  if (!Number.isInteger(o.steps) || o.steps < 0) throw new RangeError(`steps ${o.steps} must be an integer >= 0`);
  const count = o.bytesPerCard / eb;
  const totalCards = o.workers * o.cardsPerWorker;
  const cache = o.steps * o.bytesPerCard <= CACHE_LIMIT_BYTES;
  const results = new Map<number, Elements>();
  const scratch = allocElements(o.dtype, count);
  const resultOf = (step: number): Elements => {
    const hit = results.get(step);
    if (hit) return hit;
    const out = cache ? allocElements(o.dtype, count) : scratch;
    fillExpected(out, { dtype: o.dtype, op: o.op, seed: o.seed, step, totalCards });
    if (cache) results.set(step, out);
    return out;
  };
  const digests: string[] = [];
  for (let w = 0; w < o.workers; w++) {
    const g = new CardGroup({ firstCard: w * o.cardsPerWorker, cards: o.cardsPerWorker, totalCards, count, dtype: o.dtype, op: o.op, seed: o.seed });
    for (let step = 0; step < o.steps; step++) {
      g.computeGradients(step);
      g.foldOwnGradient();
      g.reduced.set(resultOf(step));
      g.broadcastLocal();
      g.applyResult();
    }
    digests.push(...g.stateDigests());
  }
  return jobDigest(digests);
}
