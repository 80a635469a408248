// Recursive-doubling all-reduce: the latency-friendly algorithm. Pure.
//
// A ring all-reduce takes 2(n-1) steps one after the other; at 256 workers a small message is all
// latency. Recursive doubling takes log2(p) steps, p the largest power of two <= n: at step k rank v
// exchanges its whole partial result with v xor 2^k and both reduce, so after log2(p) steps every
// rank holds the reduction of all p. With n = p + q (q < p), the first 2q ranks pair up before and
// after (MPICH's scheme): each even one of them sends its input to the odd one above it (step 0)
// and gets the final result back from it at the end, so n-p ranks sit the doubling out. That is
// log2(p) + 2 steps instead of 2(n-1), each carrying the whole vector rather than 1/n of it: the
// right trade below a crossover size that `ringswarm bench --algo ring,rd` measures.
//
// Frames: the fold of the extra ranks is phase 'reduce-scatter' step 0; doubling step k is step
// 1 + k, of phase 'reduce-scatter' in the first half of the steps and 'all-gather' in the second
// (so that a fault armed at either phase strikes on every rank, from 4 ranks on); the final result
// to the extra ranks is 'all-gather' step 0 (doubling steps start at 1 in both phases). Each chunk
// moves on through the steps on its own (pipelined). Every rank reduces the same pairs in the same
// tree, up to the order of two operands, so all ranks end bit for bit equal.
import { RingswarmError } from '../protocol/errors.js';
import { allocElements, divideInPlace, reduceInto, type Elements } from './dtypes.js';
import { chunkCount, chunkRange, type Range } from './ring.js';
import type { ChunkIn, ChunkSend, Collective, CollectiveOptions, Phase, Progress } from './types.js';

/** The schedule of one rank: who it folds with, whom it exchanges with at each doubling step. */
export interface DoublingPlan {
  /** Doubling steps (log2 of the largest power of two <= size). */
  rounds: number;
  /** Ranks that sit the doubling out hand their input to this rank and get the result from it. */
  role: 'extra' | 'host' | 'plain';
  /** For 'extra': the host; for 'host': the extra; else -1. */
  buddy: number;
  /** Partner at each doubling step (empty for 'extra'). */
  partners: number[];
  /** Its rank among the p that double (-1 for 'extra'): partners[k] is the rank of virtual xor 2^k. */
  virtual: number;
}

export function doublingPlan(rank: number, size: number): DoublingPlan {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw new RangeError(`rank ${rank} out of range 0..${size - 1}`);
  let p = 1;
  let rounds = 0;
  while (p * 2 <= size) {
    p *= 2;
    rounds++;
  }
  const q = size - p;
  if (rank < 2 * q && rank % 2 === 0) return { rounds, role: 'extra', buddy: rank + 1, partners: [], virtual: -1 };
  const v = rank < 2 * q ? rank >> 1 : rank - q;
  const real = (u: number) => (u < q ? 2 * u + 1 : u + q);
  const partners = Array.from({ length: rounds }, (_, k) => real(v ^ (1 << k)));
  return rank < 2 * q ? { rounds, role: 'host', buddy: rank - 1, partners, virtual: v } : { rounds, role: 'plain', buddy: -1, partners, virtual: v };
}

/**
 * `plan`, remembering its last answer: a rank runs op after op with the same (rank, size), and its
 * plan is made once instead of per op. Plans are never changed by their users.
 */
export function lastPlanKept<P>(plan: (rank: number, size: number) => P): (rank: number, size: number) => P {
  let r = -1;
  let s = -1;
  let last: P | undefined;
  return (rank, size) => {
    if (rank !== r || size !== s || last === undefined) {
      last = plan(rank, size);
      r = rank;
      s = size;
    }
    return last;
  };
}

const cachedDoublingPlan = lastPlanKept(doublingPlan);

/** Every rank `rank` sends to or receives from under recursive doubling (the links it needs). */
export function doublingPeers(rank: number, size: number): number[] {
  const p = doublingPlan(rank, size);
  return [...new Set([...(p.buddy >= 0 ? [p.buddy] : []), ...p.partners])].sort((a, b) => a - b);
}

export interface ChunkState {
  range: Range;
  /** Steps done (-1: waiting for the extra's input, for a host). */
  stage: number;
  done: boolean;
}

/**
 * What recursive doubling and the tree share: the doubling plan's ranks (extras fold their input
 * into a host), the vector in chunks that each move on their own, the counts progress reports.
 */
export abstract class FoldedCollective<P extends DoublingPlan> implements Collective {
  protected readonly chunks: ChunkState[];
  protected readonly input: Elements;
  protected readonly buffer: Elements;
  protected readonly divisor: number;
  protected started = false;
  protected sent = 0;
  protected received = 0;
  protected finished = 0;

  constructor(
    protected readonly o: CollectiveOptions,
    protected readonly plan: P,
  ) {
    if (!Number.isInteger(o.chunkElems) || o.chunkElems < 1) throw new RangeError(`chunkElems must be an integer >= 1, got ${o.chunkElems}`);
    this.buffer = o.buffer;
    this.input = o.input ?? o.buffer;
    if (this.input.length !== this.buffer.length) throw new RangeError(`input has ${this.input.length} elements, buffer ${this.buffer.length}`);
    this.divisor = o.divisor ?? o.size;
    const whole = { offset: 0, count: this.buffer.length };
    this.chunks = Array.from({ length: chunkCount(whole.count, o.chunkElems) }, (_, j) => ({
      range: chunkRange(whole, o.chunkElems, j),
      stage: plan.role === 'host' ? -1 : 0,
      done: false,
    }));
  }

  get done(): boolean {
    return this.started && this.finished === this.chunks.length;
  }

  protected view(a: Elements, r: Range): Elements {
    return a.subarray(r.offset, r.offset + r.count);
  }

  protected emit(out: ChunkSend[], to: number, phase: Phase, step: number, chunk: number, data: Elements): void {
    this.sent++;
    out.push({ to, phase, step, chunk, offset: this.chunks[chunk].range.offset, data });
  }

  /** Chunk j has a new stage (a plain rank's from the start, its input in the buffer): send on what it can. */
  protected abstract begin(j: number, out: ChunkSend[]): void;

  /**
   * A partial for a reduction step of chunk `st`: the extra's input (step 0, at a host), the one
   * the chunk waits on next, or one that came early (held).
   */
  protected reduceIn(c: ChunkIn, st: ChunkState): ChunkSend[] {
    const out: ChunkSend[] = [];
    const mine = this.view(this.buffer, st.range);
    if (c.step === 0) {
      if (st.stage !== -1) throw new RingswarmError('RS_ERR_PROTOCOL', `step 0 chunk ${c.chunk} received twice`);
      reduceInto(this.o.op, mine, this.view(this.input, st.range), c.data);
      st.stage = 0;
    } else if (c.step === st.stage + 1 && !st.done) {
      reduceInto(this.o.op, mine, mine, c.data);
      st.stage++;
    } else {
      return this.hold(c, st);
    }
    this.begin(c.chunk, out);
    return out;
  }

  start(): ChunkSend[] {
    if (this.started) throw new RingswarmError('RS_ERR_PROTOCOL', 'collective started twice');
    this.started = true;
    const out: ChunkSend[] = [];
    this.chunks.forEach((c, j) => {
      if (this.plan.role === 'extra') {
        // The input itself goes: it is not changed during the op.
        this.emit(out, this.plan.buddy, 'reduce-scatter', 0, j, this.view(this.input, c.range));
        return;
      }
      if (this.plan.role === 'plain') {
        if (this.input !== this.buffer) this.view(this.buffer, c.range).set(this.view(this.input, c.range));
        this.begin(j, out);
      }
    });
    return out;
  }

  /** The chunk `c` names, checked against the schedule's ranges. */
  protected chunkOf(c: ChunkIn): ChunkState {
    if (!this.started) throw new RingswarmError('RS_ERR_PROTOCOL', 'chunk received before the collective started');
    const st = this.chunks[c.chunk];
    if (!Number.isInteger(c.chunk) || !st) throw new RingswarmError('RS_ERR_PROTOCOL', `chunk ${c.chunk} out of range 0..${this.chunks.length - 1}`);
    if (c.offset !== st.range.offset || c.data.length !== st.range.count) {
      throw new RingswarmError('RS_ERR_PROTOCOL', `${c.phase} step ${c.step} chunk ${c.chunk}: got offset ${c.offset} length ${c.data.length}, expected offset ${st.range.offset} length ${st.range.count}`);
    }
    return st;
  }

  /** Chunks that came for a step their chunk has not reached yet: copies, by step and chunk. */
  private readonly held = new Map<number, Elements>();

  private heldKey(step: number, chunk: number): number {
    return chunk * (this.plan.rounds + 1) + step;
  }

  /** Keep `c`, for a step after `st`'s next, as a copy (the frame is reused); twice is an error. */
  protected hold(c: ChunkIn, st: ChunkState): ChunkSend[] {
    const key = this.heldKey(c.step, c.chunk);
    if (c.step <= st.stage || this.held.has(key)) throw new RingswarmError('RS_ERR_PROTOCOL', `${c.phase} step ${c.step} chunk ${c.chunk} received twice`);
    const copy = allocElements(this.o.dtype, c.data.length);
    copy.set(c.data);
    this.held.set(key, copy);
    return [];
  }

  /** What was held for chunk j's step `step`, taken out; undefined if nothing came early. */
  protected takeHeld(step: number, j: number): Elements | undefined {
    const key = this.heldKey(step, j);
    const early = this.held.get(key);
    if (early) this.held.delete(key);
    return early;
  }

  abstract onChunk(c: ChunkIn): ChunkSend[];
  abstract progress(): Progress;
}

export class RecursiveDoubling extends FoldedCollective<DoublingPlan> {
  private readonly alloc: (count: number) => Elements;
  private readonly expected: number;

  constructor(o: CollectiveOptions) {
    super(o, cachedDoublingPlan(o.rank, o.size));
    this.alloc = o.alloc ?? ((n: number) => allocElements(o.dtype, n));
    const c = this.chunks.length;
    // Extra: the result. Host: the extra's input, and a partner's per step. Plain: a partner's per step.
    this.expected = this.plan.role === 'extra' ? c : c * (this.plan.rounds + (this.plan.role === 'host' ? 1 : 0));
  }

  /** A copy of the chunk's current partial result, to send while the buffer moves on. */
  private staged(r: Range): Elements {
    const s = this.alloc(r.count);
    s.set(this.view(this.buffer, r));
    return s;
  }

  protected begin(j: number, out: ChunkSend[]): void {
    this.advance(j, out);
  }

  /** Chunk j has done `stage` doubling steps: send it on, or finish it; then use what is held for it. */
  private advance(j: number, out: ChunkSend[]): void {
    const c = this.chunks[j];
    for (;;) {
      if (c.stage === this.plan.rounds) return this.finish(j, out);
      const step = 1 + c.stage;
      this.emit(out, this.plan.partners[c.stage], this.phaseOf(step), step, j, this.staged(c.range));
      const early = this.takeHeld(step, j);
      if (!early) return;
      const mine = this.view(this.buffer, c.range);
      reduceInto(this.o.op, mine, mine, early);
      c.stage++;
    }
  }

  /** Doubling step `step` (1-based): its first half is 'reduce-scatter', its second 'all-gather'. */
  private phaseOf(step: number): Phase {
    return step - 1 < Math.ceil(this.plan.rounds / 2) ? 'reduce-scatter' : 'all-gather';
  }

  private finish(j: number, out: ChunkSend[]): void {
    const c = this.chunks[j];
    const mine = this.view(this.buffer, c.range);
    if (this.o.op === 'avg') divideInPlace(mine, this.divisor);
    c.done = true;
    this.finished++;
    // Final: the buffer's chunk no longer changes, so it goes as it is.
    if (this.plan.role === 'host') this.emit(out, this.plan.buddy, 'all-gather', 0, j, mine);
  }

  onChunk(c: ChunkIn): ChunkSend[] {
    const st = this.chunkOf(c);
    const { role, buddy, partners, rounds } = this.plan;
    const doubling = role !== 'extra' && Number.isInteger(c.step) && c.step >= 1 && c.step <= rounds && c.phase === this.phaseOf(c.step);
    const expectFrom = doubling
      ? partners[c.step - 1]
      : c.step === 0 && c.phase === 'all-gather' && role === 'extra'
        ? buddy
        : c.step === 0 && c.phase === 'reduce-scatter' && role === 'host'
          ? buddy
          : -1;
    if (expectFrom < 0) throw new RingswarmError('RS_ERR_PROTOCOL', `unexpected ${c.phase} step ${c.step} on a ${role} rank of recursive doubling`);
    if (c.from !== expectFrom) throw new RingswarmError('RS_ERR_PROTOCOL', `${c.phase} step ${c.step} chunk ${c.chunk} from rank ${c.from}, expected rank ${expectFrom}`);
    this.received++;
    if (role === 'extra') {
      if (st.done) throw new RingswarmError('RS_ERR_PROTOCOL', `all-gather chunk ${c.chunk} received twice`);
      this.view(this.buffer, st.range).set(c.data);
      st.done = true;
      this.finished++;
      return [];
    }
    // The partner's partial for a doubling step (or, early, for a later one).
    return this.reduceIn(c, st);
  }

  progress(): Progress {
    const stages = this.chunks.map((c) => (c.done ? this.plan.rounds + 1 : c.stage));
    const low = stages.length ? Math.min(...stages) : 0;
    const { role, buddy, partners, rounds } = this.plan;
    const waitingFor = this.done ? null : role === 'extra' || low < 0 ? buddy : low < rounds ? partners[low] : null;
    return {
      waitingFor,
      phase: !this.started ? 'reduce-scatter' : this.done ? 'done' : this.plan.role === 'extra' ? 'all-gather' : 'reduce-scatter',
      step: Math.max(0, low + 1),
      chunksReceived: this.received,
      chunksExpected: this.expected,
      chunksSent: this.sent,
    };
  }
}

export function recursiveDoublingAllReduce(opts: CollectiveOptions): Collective {
  return new RecursiveDoubling(opts);
}
