import { describe, expect, it } from 'vitest';
import {
  DTYPES,
  REDUCE_OPS,
  allocElements,
  bytesOf,
  divideInPlace,
  reduceInto,
  type DType,
  type Elements,
  type ReduceOp,
} from '../../src/collective/dtypes.js';
import {
  FLOAT_UNIT,
  MAX_ELEMENTS,
  MAX_TOTAL_CARDS,
  PROD_MAX_FACTORS,
  countWrong,
  fillExpected,
  fillGradient,
  fillGradients,
  type InputSpec,
} from '../../src/collective/inputs.js';
import { naiveAllReduce } from '../../src/collective/naive.js';
import { Arena, SUM_SCRATCH_BYTES } from '../../src/collective/simd.js';
import { seededRandom } from '../../src/collective/random.js';

const CARD_COUNTS = [1, 2, 3, 7, 16, 64, 1000];
const SIZES = [0, 1, 7, 1000];
const CASES = DTYPES.flatMap((dtype) => REDUCE_OPS.map((op) => [dtype, op] as const));

function specOf(dtype: DType, op: ReduceOp, totalCards: number, seed = 20240601, step = 17): InputSpec {
  return { dtype, op, seed, step, totalCards };
}

function gradient(spec: InputSpec, card: number, size: number, offset = 0): Elements {
  const out = allocElements(spec.dtype, size);
  fillGradient(out, spec, card, offset);
  return out;
}

function expected(spec: InputSpec, size: number, offset = 0): Elements {
  const out = allocElements(spec.dtype, size);
  fillExpected(out, spec, offset);
  return out;
}

function allCards(spec: InputSpec, size: number, offset = 0): Elements[] {
  return Array.from({ length: spec.totalCards }, (_, c) => gradient(spec, c, size, offset));
}

/** Reduces inputs[order[0]], inputs[order[1]], … one after the other; avg divides once by `divisor`. */
function reduceInOrder(inputs: Elements[], order: number[], op: ReduceOp, divisor = inputs.length): Elements {
  const acc = inputs[order[0]].slice();
  for (const r of order.slice(1)) reduceInto(op, acc, acc, inputs[r]);
  if (op === 'avg') divideInPlace(acc, divisor);
  return acc;
}

/** Reduces neighbours pairwise, level by level, as a tree (the grouping of a hierarchical reduce). */
function reduceAsTree(inputs: Elements[], op: ReduceOp): Elements {
  let level: Elements[] = inputs.map((a) => a.slice());
  while (level.length > 1) {
    const next: Elements[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      reduceInto(op, level[i], level[i], level[i + 1]);
      next.push(level[i]);
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]);
    level = next;
  }
  if (op === 'avg') divideInPlace(level[0], inputs.length);
  return level[0];
}

/** A seeded permutation of 0..n-1 (the seeded generator + Fisher–Yates): tests are deterministic too. */
function shuffled(n: number, seed: number): number[] {
  const next = seededRandom(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function sameBits(a: Elements, b: Elements): boolean {
  return a.constructor === b.constructor && Buffer.from(bytesOf(a)).equals(Buffer.from(bytesOf(b)));
}

describe('fillExpected is the exact reduction of fillGradient over all cards', () => {
  it.each(CASES)('%s %s: equal bit for bit in rank, reversed, shuffled and tree order', (dtype, op) => {
    for (const n of CARD_COUNTS) {
      for (const size of SIZES) {
        const spec = specOf(dtype, op, n);
        const inputs = allCards(spec, size);
        const want = expected(spec, size);
        const where = `${dtype} ${op} cards=${n} size=${size}`;
        const results = {
          naive: naiveAllReduce(inputs, op)[0],
          reversed: reduceInOrder(inputs, range(n).reverse(), op),
          shuffled: reduceInOrder(inputs, shuffled(n, n * 31 + size), op),
          tree: reduceAsTree(inputs, op),
        };
        for (const [order, got] of Object.entries(results)) {
          expect(countWrong(got, want), `${where} ${order}`).toBe(0);
          expect(sameBits(got, want), `${where} ${order} bits`).toBe(true);
        }
      }
    }
  });

  it('in an arena (the SIMD kernel, f32 sum and avg), the same bits as the element loop, at any length and offset', () => {
    const arena = Arena.create(5000 * 4)!;
    const inArena = arena.alloc('f32', 5000);
    for (const op of ['sum', 'avg'] as const)
      for (const [n, len, offset] of [[128, 4099, 0], [7, 13, 5], [4, 3, 0], [10_240, 2049, 65_531], [1, 8, 0], [3, 1000, 2 ** 31 - 2], [100_000, 4000, 123]] as const) {
        const spec = { ...specOf('f32', op, n), step: n + len };
        const got = inArena.subarray(1, 1 + len);
        fillExpected(got, spec, offset);
        const want = allocElements('f32', len);
        fillExpected(want, spec, offset);
        expect(Buffer.compare(bytesOf(got), bytesOf(want)), `${op} n=${n} len=${len} offset=${offset}`).toBe(0);
      }
  });
});

describe('fillGradients: a worker\'s group of cards in one pass', () => {
  it.each(CASES)('%s %s: bit for bit what fillGradient gives each card, wrapping past the last card, at any offset', (dtype, op) => {
    for (const [n, first, g, offset] of [[16, 0, 8, 0], [16, 12, 4, 0], [7, 5, 7, 3], [10_240, 10_200, 40, 65_531], [3, 2, 2, 1], [1, 0, 1, 0]] as const) {
      const outs = Array.from({ length: g }, () => allocElements(dtype, 777));
      fillGradients(outs, specOf(dtype, op, n), first, offset);
      outs.forEach((o, i) => expect(Buffer.compare(bytesOf(o), bytesOf(gradient(specOf(dtype, op, n), (first + i) % n, 777, offset))), `n=${n} first=${first} card ${i}`).toBe(0));
    }
  });

  it('in an arena (the SIMD kernel, f32 sum and avg from 4 cards on), the same bits as card by card, any length', () => {
    const arena = Arena.create(8 * 3000 * 4 + SUM_SCRATCH_BYTES)!;
    expect(arena.sumScratch()).not.toBeNull();
    const cards = Array.from({ length: 8 }, () => arena.alloc('f32', 3000));
    for (const op of ['sum', 'avg'] as const)
      for (const [n, first, g, len, offset] of [[128, 16, 8, 2500, 0], [5, 3, 5, 1031, 7], [4, 0, 4, 3, 0], [10_240, 10_235, 8, 2049, 65_531], [3, 1, 3, 100, 0]] as const) {
        const outs = cards.slice(0, g).map((c) => c.subarray(0, len));
        fillGradients(outs, specOf('f32', op, n), first, offset);
        outs.forEach((o, i) => expect(Buffer.compare(bytesOf(o), bytesOf(gradient(specOf('f32', op, n), (first + i) % n, len, offset))), `${op} n=${n} card ${i}`).toBe(0));
      }
  });

  it('refuses cards of different lengths, more cards than there are, or a first card out of range', () => {
    const s = specOf('f32', 'sum', 4);
    expect(() => fillGradients([new Float32Array(4), new Float32Array(5)], s, 0)).toThrow(/cards of 5 and 4 elements/);
    expect(() => fillGradients(Array.from({ length: 5 }, () => new Float32Array(4)), s, 0)).toThrow(/more than the 4/);
    expect(() => fillGradients([new Float32Array(4), new Float32Array(4)], s, 4)).toThrow(/out of range/);
    expect(() => fillGradients([new Float64Array(4), new Float64Array(4)], s, 0)).toThrow(/needs a Float32Array/);
  });
});

describe('bounds at the largest card counts', () => {
  // Every subset sum is bounded by the sum of absolute values, so checking that bound covers every
  // order and grouping of the reduction.
  it.each([
    ['f32', 1_000_000, 2 ** 24],
    ['i32', 1_000_000, 2 ** 31],
    ['f32', MAX_TOTAL_CARDS, 2 ** 24],
  ] as const)('%s sum over %i cards: sum of |inputs| < %d units, exact, and equal to fillExpected', (dtype, n, limit) => {
    const size = 4;
    const offset = 987_654_321;
    const spec = specOf(dtype, 'sum', n);
    const unit = dtype === 'i32' ? 1 : FLOAT_UNIT;
    const buf = allocElements(dtype, size);
    const acc = allocElements(dtype, size);
    const exact = new Float64Array(size);
    const absSum = new Float64Array(size);
    for (let c = 0; c < n; c++) {
      fillGradient(buf, spec, c, offset);
      reduceInto('sum', acc, acc, buf);
      for (let j = 0; j < size; j++) {
        exact[j] += buf[j] / unit;
        absSum[j] += Math.abs(buf[j] / unit);
      }
    }
    for (let j = 0; j < size; j++) expect(absSum[j]).toBeLessThan(limit);
    const want = expected(spec, size, offset);
    expect(countWrong(acc, want)).toBe(0);
    expect(Array.from(exact, (e) => e * unit)).toEqual(Array.from(want));
  });

  it.each(DTYPES)(`%s prod over 10,240 cards: at most ${PROD_MAX_FACTORS} factors 2 and 1/2 per element, product exact`, (dtype) => {
    const n = 10_240;
    const size = 64;
    const spec = specOf(dtype, 'prod', n);
    const buf = allocElements(dtype, size);
    const acc = allocElements(dtype, size).fill(1);
    const twos = new Int32Array(size);
    const halves = new Int32Array(size);
    let others = 0;
    for (let c = 0; c < n; c++) {
      fillGradient(buf, spec, c, 5000);
      reduceInto('prod', acc, acc, buf);
      for (let j = 0; j < size; j++) {
        const m = Math.abs(buf[j]);
        if (m === 2) twos[j]++;
        else if (m === 0.5) halves[j]++;
        else if (m !== 1) others++;
      }
    }
    expect(others).toBe(0);
    expect(Math.max(...twos)).toBeLessThanOrEqual(PROD_MAX_FACTORS);
    expect(Math.max(...halves)).toBeLessThanOrEqual(dtype === 'i32' ? 0 : PROD_MAX_FACTORS);
    expect(countWrong(acc, expected(spec, size, 5000))).toBe(0);
  });

  it.each(['min', 'max'] as const)('%s over 10,240 cards: the extreme sits on a different card for different elements', (op) => {
    const n = 10_240;
    const size = 1000;
    const spec = specOf('f32', op, n);
    const want = expected(spec, size);
    const holders = new Set<number>();
    const buf = allocElements('f32', size);
    const acc = allocElements('f32', size).fill(op === 'min' ? Infinity : -Infinity);
    let largest = 0;
    for (let c = 0; c < n; c++) {
      fillGradient(buf, spec, c);
      reduceInto(op, acc, acc, buf);
      for (let j = 0; j < size; j++) {
        if (buf[j] === want[j]) holders.add(c);
        largest = Math.max(largest, Math.abs(buf[j] / FLOAT_UNIT));
      }
    }
    expect(largest).toBeLessThanOrEqual(2 ** 23);
    expect(countWrong(acc, want)).toBe(0);
    expect(holders.size).toBeGreaterThan(900);
  });
});

describe('elementOffset', () => {
  const cuts = [0, 1, 7, 500, 999, 1000];
  it.each(CASES)('%s %s: filling pieces at an offset equals the slice of the whole fill', (dtype, op) => {
    for (const base of [0, 3, 2 ** 31 - 400, MAX_ELEMENTS - 1000]) {
      const spec = specOf(dtype, op, 7);
      const wholeGradient = gradient(spec, 5, 1000, base);
      const wholeExpected = expected(spec, 1000, base);
      for (let k = 0; k + 1 < cuts.length; k++) {
        const [from, to] = [cuts[k], cuts[k + 1]];
        const where = `${dtype} ${op} base=${base} [${from}, ${to})`;
        expect(sameBits(gradient(spec, 5, to - from, base + from), wholeGradient.subarray(from, to)), where).toBe(true);
        expect(sameBits(expected(spec, to - from, base + from), wholeExpected.subarray(from, to)), where).toBe(true);
      }
    }
  });

  it('rejects elements beyond 2^32 and negative or fractional offsets', () => {
    const spec = specOf('f32', 'sum', 4);
    expect(() => fillGradient(new Float32Array(2), spec, 0, MAX_ELEMENTS - 1)).toThrow(RangeError);
    expect(() => fillExpected(new Float32Array(2), spec, -1)).toThrow(RangeError);
    expect(() => fillExpected(new Float32Array(2), spec, 0.5)).toThrow(RangeError);
    expect(() => fillGradient(new Float32Array(2), spec, 0, MAX_ELEMENTS - 2)).not.toThrow();
  });
});

/** Fraction of elements where a and b differ, the least we accept for each op. */
const VARIES: Record<ReduceOp, number> = { sum: 0.95, avg: 0.95, min: 0.95, max: 0.95, prod: 0.3 };

describe('the data varies with seed, step, card and index', () => {
  const size = 1000;
  it.each(CASES)('%s %s', (dtype, op) => {
    const spec = specOf(dtype, op, 16);
    const base = gradient(spec, 3, size);
    const need = VARIES[op] * size;
    expect(countWrong(gradient(specOf(dtype, op, 16, 20240602), 3, size), base), 'seed').toBeGreaterThan(need);
    expect(countWrong(gradient(specOf(dtype, op, 16, -20240601), 3, size), base), 'negative seed').toBeGreaterThan(need);
    expect(countWrong(gradient(specOf(dtype, op, 16, 20240601 + 2 ** 32), 3, size), base), 'seed high bits').toBeGreaterThan(need);
    expect(countWrong(gradient(specOf(dtype, op, 16, undefined, 18), 3, size), base), 'step').toBeGreaterThan(need);
    expect(countWrong(gradient(spec, 4, size), base), 'card').toBeGreaterThan(need);
    // The same element of the next index range: a segment shifted by any amount is seen.
    expect(countWrong(gradient(spec, 3, size, 1), base), 'index').toBeGreaterThan(need);

    const want = expected(spec, size);
    // prod results are +-2^e with e in [-16, 16] here, so they repeat more often than inputs differ.
    const needResult = (op === 'prod' ? 0.8 : 0.99) * size;
    expect(countWrong(expected(specOf(dtype, op, 16, 20240602), size), want), 'expected, seed').toBeGreaterThan(needResult);
    expect(countWrong(expected(specOf(dtype, op, 16, undefined, 16), size), want), 'expected, stale step').toBeGreaterThan(needResult);
    expect(countWrong(expected(spec, size, 1), want), 'expected, shifted by one').toBeGreaterThan(needResult);
    expect(countWrong(expected(spec, size, 600), want), 'expected, shifted by 600').toBeGreaterThan(needResult);
  });

  it('is a function of (seed, step, card, index) only', () => {
    const spec = specOf('f32', 'sum', 10);
    expect(sameBits(gradient(spec, 2, 100), gradient({ ...spec }, 2, 100))).toBe(true);
  });

  it.each(['f32', 'f64'] as const)('%s sum inputs have fractional parts, so a reduction that rounds to integers fails', (dtype) => {
    const g = gradient(specOf(dtype, 'sum', 64), 0, 1000);
    expect(g.filter((v) => !Number.isInteger(v)).length).toBeGreaterThan(800);
  });
});

describe('a wrong reduction is caught', () => {
  const size = 1000;
  // Least fraction of the elements that must be wrong, per op, for `cards` cards. A lost or doubled
  // card is seen in min/max only where it holds the extreme (1/n of elements); doubling is invisible
  // there (min and max are idempotent), and in prod only where the card carries a factor.
  const lostNeed = (op: ReduceOp, n: number) => (op === 'min' || op === 'max' ? 0.5 / n : op === 'prod' ? 0.3 : 0.95);
  const doubledNeed = (op: ReduceOp, n: number) => (op === 'prod' ? Math.min(0.25, 4 / n) : 0.95);

  it.each(CASES)('%s %s: a lost, doubled or stale card changes many elements', (dtype, op) => {
    for (const n of [2, 7, 64]) {
      const spec = specOf(dtype, op, n);
      const inputs = allCards(spec, size);
      const want = expected(spec, size);
      for (const card of [0, n - 1]) {
        const where = `${dtype} ${op} cards=${n} card=${card}`;
        const others = range(n).filter((c) => c !== card);
        expect(countWrong(reduceInOrder(inputs, others, op, n), want), `${where} lost`).toBeGreaterThan(lostNeed(op, n) * size);
        if (op !== 'min' && op !== 'max') {
          expect(countWrong(reduceInOrder(inputs, [...range(n), card], op, n), want), `${where} doubled`).toBeGreaterThan(doubledNeed(op, n) * size);
        }
        const stale = inputs.slice();
        stale[card] = gradient(specOf(dtype, op, n, undefined, 16), card, size);
        expect(countWrong(reduceInOrder(stale, range(n), op), want), `${where} stale`).toBeGreaterThan(lostNeed(op, n) * size);
        const misplaced = inputs.slice();
        misplaced[card] = gradient(spec, card, size, 1);
        expect(countWrong(reduceInOrder(misplaced, range(n), op), want), `${where} misplaced`).toBeGreaterThan(lostNeed(op, n) * size);
      }
    }
  });
});

describe('countWrong', () => {
  it('counts exact mismatches', () => {
    expect(countWrong(Float32Array.of(1, 2, 3), Float32Array.of(1, 2, 3))).toBe(0);
    expect(countWrong(Float32Array.of(1, 2, 3), Float32Array.of(1, 2, 4))).toBe(1);
    expect(countWrong(Float64Array.of(0.1 + 0.2), Float64Array.of(0.3))).toBe(1);
    expect(countWrong(Int32Array.of(5, 6, 7, 8), Int32Array.of(8, 7, 6, 5))).toBe(4);
    expect(countWrong(new Float32Array(0), new Float32Array(0))).toBe(0);
  });

  it('treats -0 as +0 and NaN as NaN, and a NaN against a number as wrong', () => {
    expect(countWrong(Float32Array.of(-0, 0), Float32Array.of(0, -0))).toBe(0);
    // Equal bits take the fast path; a view at an offset and a length mismatch too.
    expect(countWrong(Float32Array.of(1, 2, 3).subarray(1), Float32Array.of(2, 3))).toBe(0);
    expect(countWrong(Float32Array.of(1, 2, 3).subarray(1), Float32Array.of(2, 4))).toBe(1);
    expect(countWrong(Float32Array.of(1, 2), Float32Array.of(1, 2, 3))).toBe(1);
    expect(countWrong(Float32Array.of(1, 2), Float64Array.of(1, 2))).toBe(0);
    expect(countWrong(Int32Array.of(5, 6, 7), Int32Array.of(5, 0, 7))).toBe(1);
    expect(countWrong(Float64Array.of(NaN, NaN, 1), Float64Array.of(NaN, 1, NaN))).toBe(2);
    expect(countWrong(Float32Array.of(Infinity, -Infinity), Float32Array.of(Infinity, Infinity))).toBe(1);
  });

  it('counts the elements present in only one array as wrong', () => {
    expect(countWrong(Int32Array.of(1, 2, 3), Int32Array.of(1, 2))).toBe(1);
    expect(countWrong(Int32Array.of(1), Int32Array.of(9, 2, 3))).toBe(3);
  });
});

describe('fillGradient and fillExpected reject bad arguments', () => {
  const spec = specOf('f32', 'sum', 8);
  it('names the card, the counts and the array type', () => {
    expect(() => fillGradient(new Float32Array(1), spec, 8)).toThrow(/card 8 out of range 0\.\.7/);
    expect(() => fillGradient(new Float32Array(1), spec, -1)).toThrow(RangeError);
    expect(() => fillGradient(new Float32Array(1), spec, 1.5)).toThrow(RangeError);
    expect(() => fillGradient(new Float64Array(1), spec, 0)).toThrow(/f32 needs a Float32Array, got a Float64Array/);
    expect(() => fillExpected(new Int32Array(1), { ...spec, dtype: 'f64' })).toThrow(TypeError);
    expect(() => fillExpected(new Float32Array(1), { ...spec, totalCards: 0 })).toThrow(RangeError);
    expect(() => fillExpected(new Float32Array(1), { ...spec, totalCards: MAX_TOTAL_CARDS + 1 })).toThrow(RangeError);
    expect(() => fillExpected(new Float32Array(1), { ...spec, seed: 0.5 })).toThrow(/seed/);
    expect(() => fillExpected(new Float32Array(1), { ...spec, step: -1 })).toThrow(/step/);
    expect(() => fillExpected(new Float32Array(1), { ...spec, op: 'mean' as ReduceOp })).toThrow(/op/);
  });
});
