// Verifiable inputs, as in nccl-tests: every card's gradient is a function of (seed, step, card,
// index), every reduction of all the cards is exact whatever the order and grouping, and the
// expected result of each element has a closed form that costs O(1), whatever the number of cards.
// Pure: the randomness is an integer hash of the seed, no I/O, no clock.
//
// Notation: N = totalCards, c = card, x = global element index, h(stream, x) a 32-bit hash of
// (seed, step, stream, x), hc(c, x) one of (seed, step, card c, x), pos = (c + x) mod N (as c runs
// over the cards, pos runs over 0..N-1 once, so "the cards with pos < k" are exactly k cards).
// Float inputs of sum, avg, min and max are integers times FLOAT_UNIT (1/8), so a reduction that
// rounds floats to integers fails; i32 inputs are the integers themselves.
//
// sum, avg: E(x) = h & (2K-1) - K, a total in [-K, K). Write E = qN + r (0 <= r < N); then
//   v(c, x) = q + [pos < r] + H(c, x) - H(c+1 mod N, x),   H = hc & (T-1), in [0, T).
//   The q + [pos < r] parts sum to E and all have E's sign, so their absolute values sum to |E|;
//   the H differences telescope round the ring to 0, each at most T-1 in absolute value. So for any
//   subset of the cards, in any order and grouping, |partial sum| <= K + N(T-1) <= L, where
//   L = 2^24-1 (f32), 2^31-1 (i32), 2^53-1 (f64): every partial sum is exact and i32 never wraps.
//   T is the largest power of two <= 2^20 with N(T-1) <= L/2; K the largest power of two <= 2^29
//   with K <= L - N(T-1). f32: N = 10,240 gives T = 512, K = 2^23; N = 1,000,000 gives T = 8,
//   K = 2^23; N = MAX_TOTAL_CARDS = 2^22 gives T = 2, K = 2^23. Expected: E (avg: E / N, computed
//   as divideInPlace does).
// prod: from h(x): k in [0, min(20, N)] cards carry a factor 2 (those with pos < k); for floats
//   also m in [0, min(20, N)] carry a factor 1/2 (those with (pos + floor(N/2)) mod N < m; a card
//   in both carries 1); i32 has m = 0. Signs: s(c, x) = g(c, x) xor g(c+1 mod N, x) xor
//   [pos = 0] p(x), g = a hash bit; the g terms telescope round the ring. Every value is
//   +-1, +-2 or +-1/2, so every partial product is +-2^e with -20 <= e <= 20 (exact, also with
//   Math.imul). Expected: (-1)^p 2^(k-m).
// min (max): the card a(x) = h'(x) mod N holds V(x) = h & (2^23-1) - 2^22; every other card holds
//   V + 1 + (hc & (2^22-1)) (max: V - 1 - ...). All values lie in [-2^23, 2^23). Expected: V.
//
// What a wrong reduction changes (so what countWrong can see): sum/avg: a lost, doubled or stale
// card changes an element unless its value there is 0 or unchanged, which is rare when T is large;
// prod: a lost card flips the sign in about half the elements, a doubled one shows only where it
// carries a factor (at most 40 cards per element); min/max: only where the card is the extreme
// one (about 1/N of the elements), and doubling is invisible (min and max are idempotent).

import { DTYPES, REDUCE_OPS, type DType, type Elements, type ReduceOp } from './dtypes.js';
import { lowbias32 as mix32 } from './random.js';
import { arenaOf, SUM_BLOCK } from './simd.js';

export interface InputSpec {
  dtype: DType;
  op: ReduceOp;
  seed: number;
  step: number;
  totalCards: number;
}

/** Largest totalCards for which the sum inputs still vary per card (T >= 2 for f32). */
export const MAX_TOTAL_CARDS = 2 ** 22;
/** Element indices are hashed as 32-bit integers: elementOffset + length must not exceed this. */
export const MAX_ELEMENTS = 2 ** 32;
/** Float inputs of sum, avg, min and max are multiples of this (exact in f32 and f64). */
export const FLOAT_UNIT = 0.125;
/** Most cards per element that carry a factor 2 (and, for floats, a factor 1/2) in prod inputs. */
export const PROD_MAX_FACTORS = 20;

const GOLDEN = 0x9e3779b9 | 0;
const STREAM_SUM_TOTAL = 0x51;
const STREAM_SUM_CARD = 0x52;
const STREAM_PROD_INDEX = 0x61;
const STREAM_PROD_CARD = 0x62;
const STREAM_MIN_INDEX = 0x71;
const STREAM_MIN_ARG = 0x72;
const STREAM_MIN_CARD = 0x73;
const STREAM_MAX_INDEX = 0x81;
const STREAM_MAX_ARG = 0x82;
const STREAM_MAX_CARD = 0x83;
const EXTREME_MASK = 2 ** 23 - 1;
const EXTREME_HALF = 2 ** 22;
const SPREAD_MASK = 2 ** 22 - 1;

/** Key of one stream of (seed, step); `card` is -1 for per-index streams. */
function streamKey(spec: InputSpec, stream: number, card: number): number {
  let k = mix32(stream ^ 0x2545f491);
  k = mix32(k ^ (spec.seed >>> 0));
  k = mix32(k ^ Math.floor(spec.seed / 2 ** 32));
  k = mix32(k ^ (spec.step >>> 0));
  k = mix32(k ^ Math.floor(spec.step / 2 ** 32));
  return mix32(k ^ card);
}

interface SumShape {
  /** T - 1: mask of the per-card telescoping term. */
  cardMask: number;
  /** 2K - 1: mask of the total. */
  totalMask: number;
  /** K. */
  totalHalf: number;
}

function sumShape(dtype: DType, totalCards: number): SumShape {
  const limit = dtype === 'f32' ? 2 ** 24 - 1 : dtype === 'i32' ? 2 ** 31 - 1 : 2 ** 53 - 1;
  let t = 2 ** 20;
  while (t > 1 && totalCards * (t - 1) > limit / 2) t /= 2;
  let k = 2 ** 29;
  while (k > 1 && k > limit - totalCards * (t - 1)) k /= 2;
  return { cardMask: t - 1, totalMask: 2 * k - 1, totalHalf: k };
}

function checkSpec(spec: InputSpec): void {
  if (!DTYPES.includes(spec.dtype)) throw new RangeError(`unknown dtype ${String(spec.dtype)}`);
  if (!REDUCE_OPS.includes(spec.op)) throw new RangeError(`unknown reduce op ${String(spec.op)}`);
  if (!Number.isSafeInteger(spec.seed)) throw new RangeError(`seed must be a safe integer, got ${spec.seed}`);
  if (!Number.isSafeInteger(spec.step) || spec.step < 0) throw new RangeError(`step must be a safe integer >= 0, got ${spec.step}`);
  const n = spec.totalCards;
  if (!Number.isInteger(n) || n < 1 || n > MAX_TOTAL_CARDS) {
    throw new RangeError(`totalCards must be an integer in 1..${MAX_TOTAL_CARDS}, got ${n}`);
  }
}

const ARRAY_TYPES = { f32: Float32Array, f64: Float64Array, i32: Int32Array } as const;

function checkOut(out: Elements, dtype: DType, elementOffset: number): void {
  const want = ARRAY_TYPES[dtype];
  if (!(out instanceof want)) throw new TypeError(`dtype ${dtype} needs a ${want.name}, got a ${out.constructor.name}`);
  if (!Number.isSafeInteger(elementOffset) || elementOffset < 0 || elementOffset + out.length > MAX_ELEMENTS) {
    throw new RangeError(`elements ${elementOffset}..${elementOffset + out.length} are outside 0..${MAX_ELEMENTS}`);
  }
}

/** out[j] = card `card`'s input at global element index elementOffset + j. */
export function fillGradient(out: Elements, spec: InputSpec, card: number, elementOffset = 0): void {
  checkSpec(spec);
  checkOut(out, spec.dtype, elementOffset);
  const n = spec.totalCards;
  if (!Number.isInteger(card) || card < 0 || card >= n) throw new RangeError(`card ${card} out of range 0..${n - 1}`);
  const next = card + 1 === n ? 0 : card + 1;
  const pos = (card + elementOffset) % n;
  const x = elementOffset | 0;
  const isInt = spec.dtype === 'i32';
  switch (spec.op) {
    case 'sum':
    case 'avg':
      return sumGradient(out, spec, card, next, pos, x, isInt ? 1 : FLOAT_UNIT);
    case 'prod':
      return prodGradient(out, spec, card, next, pos, x, isInt);
    case 'min':
      return extremeGradient(out, spec, card, x, isInt ? 1 : FLOAT_UNIT, 1, STREAM_MIN_INDEX, STREAM_MIN_ARG, STREAM_MIN_CARD);
    case 'max':
      return extremeGradient(out, spec, card, x, isInt ? 1 : FLOAT_UNIT, -1, STREAM_MAX_INDEX, STREAM_MAX_ARG, STREAM_MAX_CARD);
  }
}

/**
 * outs[i] = card (firstCard + i)'s input, as fillGradient gives it, for consecutive cards (mod
 * totalCards): a worker's whole group in one pass. For sum and avg the total's hash and split are
 * shared by the group and card c's telescoping term is card c-1's `next` one, so G cards cost
 * G + 2 hashes an element instead of 3G.
 */
export function fillGradients(outs: readonly Elements[], spec: InputSpec, firstCard: number, elementOffset = 0): void {
  const n = spec.totalCards;
  if (outs.length > n) throw new RangeError(`${outs.length} cards, more than the ${n} there are`);
  if (outs.length < 2 || (spec.op !== 'sum' && spec.op !== 'avg')) {
    outs.forEach((o, i) => fillGradient(o, spec, (firstCard + i) % n, elementOffset));
    return;
  }
  checkSpec(spec);
  if (!Number.isInteger(firstCard) || firstCard < 0 || firstCard >= n) throw new RangeError(`card ${firstCard} out of range 0..${n - 1}`);
  const len = outs[0].length;
  for (const o of outs) {
    checkOut(o, spec.dtype, elementOffset);
    if (o.length !== len) throw new RangeError(`cards of ${o.length} and ${len} elements in one group`);
  }
  // The first card's pos, as fillGradient's; card i's is pos + i, mod n.
  sumGradients(outs, spec, firstCard, (firstCard + elementOffset) % n, elementOffset | 0, spec.dtype === 'i32' ? 1 : FLOAT_UNIT);
}

/** out[j] = the exact reduction with spec.op of all totalCards cards at element elementOffset + j. */
export function fillExpected(out: Elements, spec: InputSpec, elementOffset = 0): void {
  checkSpec(spec);
  checkOut(out, spec.dtype, elementOffset);
  const x = elementOffset | 0;
  const isInt = spec.dtype === 'i32';
  switch (spec.op) {
    case 'sum':
    case 'avg':
      return sumExpected(out, spec, x, isInt);
    case 'prod':
      return prodExpected(out, spec, x, isInt);
    case 'min':
      return extremeExpected(out, spec, x, isInt ? 1 : FLOAT_UNIT, STREAM_MIN_INDEX);
    case 'max':
      return extremeExpected(out, spec, x, isInt ? 1 : FLOAT_UNIT, STREAM_MAX_INDEX);
  }
}

/**
 * Number of elements where actual and expected differ, compared exactly; -0 equals +0 and NaN
 * equals NaN. Elements present in only one of them (a length mismatch) count as wrong.
 */
export function countWrong(actual: Elements, expected: Elements): number {
  const n = Math.min(actual.length, expected.length);
  let wrong = Math.abs(actual.length - expected.length);
  // The common case, all equal bit for bit, at memcmp's speed; else element by element.
  if (actual.constructor === expected.constructor && Buffer.compare(bytesView(actual, n), bytesView(expected, n)) === 0) return wrong;
  for (let i = 0; i < n; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a !== e && (a === a || e === e)) wrong++;
  }
  return wrong;
}

function bytesView(a: Elements, n: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, n * a.BYTES_PER_ELEMENT);
}

// The loops below keep every per-element quantity an int32 (x wraps like the 32-bit index it is
// hashed as) and allocate nothing.

function sumGradient(out: Elements, spec: InputSpec, card: number, next: number, pos: number, x: number, scale: number): void {
  const n = spec.totalCards;
  const { cardMask, totalMask, totalHalf } = sumShape(spec.dtype, n);
  const kTotal = streamKey(spec, STREAM_SUM_TOTAL, -1);
  const kSelf = streamKey(spec, STREAM_SUM_CARD, card);
  const kNext = streamKey(spec, STREAM_SUM_CARD, next);
  const len = out.length;
  for (let j = 0; j < len; j++) {
    const m = Math.imul(x, GOLDEN);
    const e = (mix32(m ^ kTotal) & totalMask) - totalHalf;
    const q = Math.floor(e / n);
    // q + [pos < r], without a branch: it would be mispredicted half the time.
    const share = q + ((pos - (e - q * n)) >>> 31);
    out[j] = (share + (mix32(m ^ kSelf) & cardMask) - (mix32(m ^ kNext) & cardMask)) * scale;
    x = (x + 1) | 0;
    if (++pos === n) pos = 0;
  }
}

/** Elements per block of sumGradients: its scratch stays in the first-level cache (and fits the arena's). */
const GROUP_BLOCK = SUM_BLOCK;

function sumGradients(outs: readonly Elements[], spec: InputSpec, firstCard: number, pos: number, x: number, scale: number): void {
  const n = spec.totalCards;
  const g = outs.length;
  const { cardMask, totalMask, totalHalf } = sumShape(spec.dtype, n);
  const kTotal = streamKey(spec, STREAM_SUM_TOTAL, -1);
  // keys[i]: card firstCard + i's stream (i = g: the last card's next).
  const keys = Array.from({ length: g + 1 }, (_, i) => streamKey(spec, STREAM_SUM_CARD, (firstCard + i) % n));
  // Per block: the total's split (q, r) once, then card by card, the telescoping term of card i's
  // next (kept: it is card i + 1's own). f32 cards in one arena (n >= 4) go four elements at a time
  // through its SIMD kernel, which reads the scratch from the arena's memory.
  // (f32 keeps |total| <= 2^23, which the kernel's division needs.)
  const arena = spec.dtype === 'f32' && n >= 4 && totalHalf <= 2 ** 23 && outs.every((o) => o.buffer === outs[0].buffer) ? arenaOf(outs[0]) : undefined;
  const invN = Math.fround(1 / n);
  const scratch = arena?.sumScratch() ?? null;
  const simd = scratch ? arena : undefined;
  const { ms, qs, rs, hs } = scratch ?? { ms: new Int32Array(GROUP_BLOCK), qs: new Int32Array(GROUP_BLOCK), rs: new Int32Array(GROUP_BLOCK), hs: new Int32Array(GROUP_BLOCK) };
  const len = outs[0].length;
  for (let base = 0; base < len; base += GROUP_BLOCK) {
    const end = Math.min(GROUP_BLOCK, len - base);
    const x0 = (x + base) | 0;
    const k0 = keys[0];
    // The kernel's part (whole v128s), then the JS loop for the rest.
    const vectored = simd ? end & ~3 : 0;
    if (vectored) simd!.kernels.sumTotals(ms.byteOffset, qs.byteOffset, rs.byteOffset, hs.byteOffset, vectored, x0, kTotal, totalMask, totalHalf, n, invN, k0, cardMask);
    let xj = (x0 + vectored) | 0;
    for (let j = vectored; j < end; j++) {
      const m = Math.imul(xj, GOLDEN);
      const e = (mix32(m ^ kTotal) & totalMask) - totalHalf;
      const q = Math.floor(e / n);
      ms[j] = m;
      qs[j] = q;
      rs[j] = e - q * n;
      hs[j] = mix32(m ^ k0) & cardMask;
      xj = (xj + 1) | 0;
    }
    let p0 = (pos + base) % n;
    for (let i = 0; i < g; i++) {
      const out = outs[i];
      const key = keys[i + 1];
      if (vectored) simd!.kernels.cardTerms(out.byteOffset + 4 * base, ms.byteOffset, qs.byteOffset, rs.byteOffset, hs.byteOffset, vectored, key, cardMask, p0, n, scale);
      let p = (p0 + vectored) % n;
      xj = (x0 + vectored) | 0;
      for (let j = vectored; j < end; j++) {
        const h = mix32(Math.imul(xj, GOLDEN) ^ key) & cardMask;
        out[base + j] = (qs[j] + ((p - rs[j]) >>> 31) + hs[j] - h) * scale;
        hs[j] = h;
        xj = (xj + 1) | 0;
        if (++p === n) p = 0;
      }
      if (++p0 === n) p0 = 0;
    }
  }
}

function sumExpected(out: Elements, spec: InputSpec, x: number, isInt: boolean): void {
  const n = spec.totalCards;
  const { totalMask, totalHalf } = sumShape(spec.dtype, n);
  const kTotal = streamKey(spec, STREAM_SUM_TOTAL, -1);
  const len = out.length;
  const avg = spec.op === 'avg';
  // f32 in an arena: whole v128s through its SIMD kernel (the same bits), the rest here.
  const arena = out instanceof Float32Array && totalHalf <= 2 ** 23 ? arenaOf(out) : undefined;
  const vectored = arena ? len & ~3 : 0;
  if (vectored) {
    arena!.kernels.expected(out.byteOffset, vectored, x, kTotal, totalMask, totalHalf, FLOAT_UNIT, avg ? n : 1);
    x = (x + vectored) | 0;
  }
  for (let j = vectored; j < len; j++) {
    const e = (mix32(Math.imul(x, GOLDEN) ^ kTotal) & totalMask) - totalHalf;
    // avg: the exact sum divided once, as divideInPlace does (i32 truncates).
    if (isInt) out[j] = avg ? Math.trunc(e / n) : e;
    else out[j] = avg ? (e * FLOAT_UNIT) / n : e * FLOAT_UNIT;
    x = (x + 1) | 0;
  }
}

/** POW2[e + PROD_MAX_FACTORS] = 2^e. */
const POW2 = Float64Array.from({ length: 2 * PROD_MAX_FACTORS + 1 }, (_, i) => 2 ** (i - PROD_MAX_FACTORS));

function prodLimits(n: number, isInt: boolean): { twos: number; halves: number } {
  const most = Math.min(PROD_MAX_FACTORS, n);
  return { twos: most + 1, halves: isInt ? 1 : most + 1 };
}

function prodGradient(out: Elements, spec: InputSpec, card: number, next: number, pos: number, x: number, isInt: boolean): void {
  const n = spec.totalCards;
  const { twos, halves } = prodLimits(n, isInt);
  const half = isInt ? 1 : 0.5;
  let pos2 = (pos + (n >> 1)) % n;
  const kIndex = streamKey(spec, STREAM_PROD_INDEX, -1);
  const kSelf = streamKey(spec, STREAM_PROD_CARD, card);
  const kNext = streamKey(spec, STREAM_PROD_CARD, next);
  const len = out.length;
  for (let j = 0; j < len; j++) {
    const m = Math.imul(x, GOLDEN);
    const h = mix32(m ^ kIndex);
    const k = ((h & 0xffff) * twos) >>> 16;
    const mh = (((h >>> 16) & 0x7fff) * halves) >>> 15;
    let neg = (mix32(m ^ kSelf) ^ mix32(m ^ kNext)) & 1;
    if (pos === 0) neg ^= h >>> 31;
    let v = pos < k ? 2 : 1;
    if (pos2 < mh) v *= half;
    // The sign is random: a multiply, not a branch that would be mispredicted half the time.
    out[j] = v * (1 - 2 * neg);
    x = (x + 1) | 0;
    if (++pos === n) pos = 0;
    if (++pos2 === n) pos2 = 0;
  }
}

function prodExpected(out: Elements, spec: InputSpec, x: number, isInt: boolean): void {
  const { twos, halves } = prodLimits(spec.totalCards, isInt);
  const kIndex = streamKey(spec, STREAM_PROD_INDEX, -1);
  const len = out.length;
  for (let j = 0; j < len; j++) {
    const h = mix32(Math.imul(x, GOLDEN) ^ kIndex);
    const k = ((h & 0xffff) * twos) >>> 16;
    const mh = (((h >>> 16) & 0x7fff) * halves) >>> 15;
    out[j] = POW2[k - mh + PROD_MAX_FACTORS] * (1 - 2 * (h >>> 31));
    x = (x + 1) | 0;
  }
}

/** direction 1: min (others above the extreme), -1: max (others below). */
function extremeGradient(
  out: Elements,
  spec: InputSpec,
  card: number,
  x: number,
  scale: number,
  direction: 1 | -1,
  streamIndex: number,
  streamArg: number,
  streamCard: number,
): void {
  const n = spec.totalCards;
  const kIndex = streamKey(spec, streamIndex, -1);
  const kArg = streamKey(spec, streamArg, -1);
  const kSelf = streamKey(spec, streamCard, card);
  const len = out.length;
  for (let j = 0; j < len; j++) {
    const m = Math.imul(x, GOLDEN);
    const extreme = (mix32(m ^ kIndex) & EXTREME_MASK) - EXTREME_HALF;
    const holder = (mix32(m ^ kArg) >>> 1) % n;
    const v = holder === card ? extreme : extreme + direction * (1 + (mix32(m ^ kSelf) & SPREAD_MASK));
    out[j] = v * scale;
    x = (x + 1) | 0;
  }
}

function extremeExpected(out: Elements, spec: InputSpec, x: number, scale: number, streamIndex: number): void {
  const kIndex = streamKey(spec, streamIndex, -1);
  const len = out.length;
  for (let j = 0; j < len; j++) {
    out[j] = ((mix32(Math.imul(x, GOLDEN) ^ kIndex) & EXTREME_MASK) - EXTREME_HALF) * scale;
    x = (x + 1) | 0;
  }
}
