// One size of `ringswarm bench` on one worker, like one line of nccl-tests' *_perf: warmup ops,
// timed ops, then a check of the last result against the known exact answer.
import { allocElements, combiningOp, elementBytes, reduceInto, type Elements } from '../collective/dtypes.js';
import { countWrong, fillExpected, fillGradient, fillGradients, type InputSpec } from '../collective/inputs.js';
import { segmentRange } from '../collective/ring.js';
import type { BenchSpec, JobSpec } from '../protocol/control.js';
import type { FramePool } from '../runtime/frame-pool.js';
import type { OpRunner } from '../runtime/op-runner.js';
import { arenaAlloc, workerArena } from './arena.js';
import type { SpanLog } from './spans.js';

export interface BenchSizeContext {
  pool: FramePool | undefined;
  runner: OpRunner;
  nextOpSeq(): number;
  now(): number;
  rank: number;
  size: number;
  firstCard: number;
  job: JobSpec;
  spec: BenchSpec;
  bytes: number;
  /** The emulated card-to-card time of a local reduce or broadcast. */
  intraTransfer(): Promise<void>;
  /** --trace: where the first timed iterations' ops go (null: not tracing). */
  spans?: SpanLog | null;
}

/** --trace: timed iterations per size whose op and phases are traced (the size's whole span always is). */
export const TRACED_ITERS_PER_SIZE = 16;

export interface BenchSizeResult {
  count: number;
  timeUs: number;
  /** Each timed iteration's time, in order. */
  itersUs: number[];
  wrong: number;
  /** The size's first warmup op began, and its last timed op ended (its clock, ms). */
  startedAt: number;
  endedAt: number;
}

export async function runBenchSize(c: BenchSizeContext): Promise<BenchSizeResult> {
  const { job, spec, rank, size } = c;
  const g = job.cardsPerWorker;
  const count = Math.floor(c.bytes / elementBytes(job.dtype));
  const totalCards = size * g;
  const input: InputSpec = { dtype: job.dtype, op: job.op, seed: job.seed, step: 0, totalCards };
  const mine = segmentRange(count, size, rank);
  const kind = spec.collective;
  const reduces = kind === 'allreduce' || kind === 'reducescatter';
  // The buffers reductions touch live in a fresh arena per size (with the frames in flight).
  const arena = workerArena(c.pool, g + 2, count * elementBytes(job.dtype), job.chunkBytes);
  const fast = arenaAlloc(arena);
  // Per card input; for all-gather and broadcast a card contributes only what the collective moves.
  const cards: Elements[] = Array.from({ length: g }, () => fast(job.dtype, count));
  if (kind === 'allreduce' || kind === 'reducescatter') fillGradients(cards, input, c.firstCard);
  const work = fast(job.dtype, count);
  const outputs: Elements[] = g > 1 ? Array.from({ length: g }, () => allocElements(job.dtype, count)) : [work];

  const prepare = () => {
    if (kind === 'allgather') {
      work.fill(0);
      fillGradient(work.subarray(mine.offset, mine.offset + mine.count), input, rank * g, mine.offset);
    } else if (kind === 'broadcast') {
      if (rank === 0) fillGradient(work, input, 0);
      else work.fill(0);
    }
  };
  // With one card, the ring reads that card's gradient as it is (out of place); with more, their
  // local reduction, which is part of the timed op.
  const local = reduces && g > 1 ? fast(job.dtype, count) : cards[0];
  let lastOpSeq = 0;
  const op = async () => {
    if (reduces && g > 1) {
      local.set(cards[0]);
      for (let j = 1; j < g; j++) reduceInto(combiningOp(job.op), local, local, cards[j]);
      await c.intraTransfer();
    }
    const input = reduces ? local : undefined;
    lastOpSeq = c.nextOpSeq();
    await c.runner.run(kind, lastOpSeq, { size, op: job.op, buffer: work, input, divisor: totalCards, root: 0, algo: spec.algo });
    if (g > 1) {
      for (const o of outputs) o.set(work);
      await c.intraTransfer();
    }
  };

  const startedAt = c.now();
  for (let i = 0; i < spec.warmup; i++) {
    prepare();
    await op();
  }
  let total = 0;
  const itersUs: number[] = [];
  for (let i = 0; i < spec.iters; i++) {
    prepare();
    const t0 = c.now();
    await op();
    const ms = c.now() - t0;
    total += ms;
    itersUs.push(ms * 1000);
    if (c.spans && i < TRACED_ITERS_PER_SIZE) c.spans.addOp(`${kind} iteration ${i}`, c.runner.last, i, lastOpSeq);
  }
  const endedAt = c.now();

  let wrong = 0;
  if (spec.check) {
    const expected = allocElements(job.dtype, count);
    if (kind === 'allreduce' || kind === 'reducescatter') fillExpected(expected, input);
    else if (kind === 'broadcast') fillGradient(expected, input, 0);
    else {
      for (let r = 0; r < size; r++) {
        const s = segmentRange(count, size, r);
        fillGradient(expected.subarray(s.offset, s.offset + s.count), input, r * g, s.offset);
      }
    }
    // Reduce-scatter leaves only this rank's segment defined.
    const [from, to] = kind === 'reducescatter' ? [mine.offset, mine.offset + mine.count] : [0, count];
    for (const o of outputs) wrong += countWrong(o.subarray(from, to), expected.subarray(from, to));
  }
  return { count, timeUs: spec.iters > 0 ? (total / spec.iters) * 1000 : 0, itersUs, wrong, startedAt, endedAt };
}
