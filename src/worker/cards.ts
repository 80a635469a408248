// A worker's group of G emulated cards: each owns a gradient buffer and a private state.
// One step: fill gradients (verifiable inputs), fold them into the states, reduce them locally
// into the buffer the ring all-reduces; after the ring, copy the result back to every card,
// verify it, and apply it to the states.
import { createHash } from 'node:crypto';
import { allocElements, combiningOp, divideInPlace, reduceInto, type DType, type Elements, type ReduceOp } from '../collective/dtypes.js';
import { countWrong, fillExpected, fillGradient, fillGradients, type InputSpec } from '../collective/inputs.js';
import { arenaAxpy } from '../collective/simd.js';
import { nativeMemory } from '../native/kernels.js';

export interface CardGroupOptions {
  firstCard: number;
  cards: number;
  totalCards: number;
  count: number;
  dtype: DType;
  op: ReduceOp;
  seed: number;
  /** Where gradient buffers come from (an Arena, so local and ring reductions run as SIMD). */
  alloc?: (dtype: DType, count: number) => Elements;
  /** The card states, when they live elsewhere (a mapped checkpoint slot); else allocated with `alloc`. */
  states?: Elements[];
}

/** Learning rate of the emulated update: a power of two, so the update itself adds no rounding noise. */
const LR = 1 / 256;

export class CardGroup {
  readonly gradients: Elements[];
  /** Each card's state; the array is replaced when the states move (foldOwnGradient's `into`, a restore). */
  states: Elements[];
  /** What the ring all-reduces: the local reduction of this group's gradients. */
  readonly reduced: Elements;
  private readonly expected: Elements;

  constructor(private readonly o: CardGroupOptions) {
    const alloc = o.alloc ?? allocElements;
    this.gradients = Array.from({ length: o.cards }, () => alloc(o.dtype, o.count));
    this.reduced = alloc(o.dtype, o.count);
    // In the arena too where it has room (after what the reductions need), so the update runs as SIMD.
    this.states = o.states ?? Array.from({ length: o.cards }, () => alloc(o.dtype, o.count));
    // And the expected result, which the arena's kernel computes four elements at a time.
    this.expected = alloc(o.dtype, o.count);
  }

  private spec(step: number): InputSpec {
    return { dtype: this.o.dtype, op: this.o.op, seed: this.o.seed, step, totalCards: this.o.totalCards };
  }

  /** The emulated backward pass: every card's gradient for `step`. */
  computeGradients(step: number): void {
    fillGradients(this.gradients, this.spec(step), this.o.firstCard);
  }

  /** Reduce the G gradients into `reduced` (avg combines by sum; the ring divides once at the end). */
  reduceLocal(): void {
    const op = combiningOp(this.o.op);
    this.reduced.set(this.gradients[0]);
    for (let j = 1; j < this.o.cards; j++) reduceInto(op, this.reduced, this.reduced, this.gradients[j]);
  }

  /** Copy the all-reduced result back to every card (the intra-node broadcast). */
  broadcastLocal(): void {
    for (const g of this.gradients) g.set(this.reduced);
  }

  /** Count elements, over all cards, that differ from the known exact result of `step`. */
  verify(step: number, lostCards: readonly number[] = []): number {
    fillExpected(this.expected, lostCards.length ? { ...this.spec(step), op: this.o.op === 'avg' ? 'sum' : this.o.op } : this.spec(step));
    if (lostCards.length) this.withoutCards(step, lostCards);
    let wrong = 0;
    for (const g of this.gradients) wrong += countWrong(g, this.expected);
    return wrong;
  }

  /**
   * After a shrink: the exact result over the cards that still contribute, from the result over all
   * of them. Sum: subtract each lost card's input; prod: divide it out (inputs are ±1, ±2, ±1/2, so
   * exactly); avg: the sum over what is left, divided by how many are left. Min and max cannot be
   * recomputed this way (the run refuses shrink for them).
   */
  private withoutCards(step: number, lostCards: readonly number[]): void {
    const e = this.expected;
    const lost = allocElements(this.o.dtype, e.length);
    const spec = this.spec(step);
    const int = e instanceof Int32Array;
    for (const c of lostCards) {
      fillGradient(lost, spec, c);
      if (this.o.op === 'prod') for (let i = 0; i < e.length; i++) e[i] = int ? Math.trunc(e[i] / lost[i]) : e[i] / lost[i];
      else for (let i = 0; i < e.length; i++) e[i] = int ? (e[i] - lost[i]) | 0 : e[i] - lost[i];
    }
    if (this.o.op === 'avg') divideInPlace(e, this.o.totalCards - lostCards.length);
  }

  /**
   * state -= lr * (card's own gradient before the reduce); state += lr * result. Call around the
   * ring. The fold may write into other buffers, `into`, which are the states from then on.
   */
  foldOwnGradient(into: Elements[] = this.states): void {
    for (let j = 0; j < this.o.cards; j++) applyUpdate(into[j], this.states[j], this.gradients[j], -1);
    this.states = into;
  }

  applyResult(): void {
    for (let j = 0; j < this.o.cards; j++) applyUpdate(this.states[j], this.states[j], this.gradients[j], 1);
  }

  /** SHA-256 of each card's state, in card order. */
  stateDigests(): string[] {
    return this.states.map((s) => createHash('sha256').update(new Uint8Array(s.buffer, s.byteOffset, s.byteLength)).digest('hex'));
  }
}

/** out = state + sign * lr * grad (i32: state + sign * grad); out may be state. */
function applyUpdate(out: Elements, state: Elements, grad: Elements, sign: 1 | -1): void {
  const k = state instanceof Int32Array ? sign : sign * LR;
  // In one arena, f32, in place: the SIMD kernel; elsewhere the native one (the same bits: LR is a power of two).
  if (out === state && arenaAxpy(state, grad, k)) return;
  if (nativeMemory && out.constructor === state.constructor && grad.constructor === state.constructor) {
    return nativeMemory.axpy(out as Float32Array, state as Float32Array, grad as Float32Array, k);
  }
  const n = state.length;
  if (state instanceof Int32Array) {
    for (let i = 0; i < n; i++) out[i] = (state[i] + k * grad[i]) | 0;
  } else {
    for (let i = 0; i < n; i++) out[i] = state[i] + k * grad[i];
  }
}

export { jobDigest } from '../collective/digest.js';
