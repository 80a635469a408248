// WebAssembly SIMD reduction kernels over a fixed arena of WebAssembly memory, and two for the
// emulator's own work (the per-card part of the f32 sum inputs, the card states' update). Pure: no
// I/O, no clocks, no randomness. DESIGN.md measured a SIMD sum at about 4x a plain JS loop on these
// machines; the inputs' kernel is 3.3x the JS loop here (8 x 1 MiB: 7.5 against 25 ms).
//
// The kernels only see their own linear memory, so they run only when dst, a and b all live in one
// `Arena`; `reduceInto` (dtypes.ts) asks `arenaReduce` first and keeps its JS loops as the fallback.
//
// Semantics match `reduceInto` bit for bit for every non-NaN input:
// - f32 sum/prod: JS computes in f64 and rounds to f32 on store; wasm computes in f32. For + and *
//   of f32 inputs the two agree (f64 has more than 2*24+2 bits, so the double rounding is innocuous).
// - f64: the same IEEE operations. i32: i32.add/i32.mul wrap exactly like `| 0` and Math.imul.
// - min/max use f32x4.pmin/pmax (and select in the scalar tail), not f32x4.min/max: pmin(a, b) is
//   defined as `b < a ? b : a`, exactly the JS loop's expression, so -0/+0 give the JS answer (the
//   first operand when they compare equal). f32x4.min would give -0 for min(+0, -0) where JS gives
//   +0, and the result would then depend on which memory a buffer was allocated in.
// - NaN: results are NaN on both paths but their bit patterns (sign, payload) are not promised equal.

import type { DType, Elements, ReduceOp } from './dtypes.js';

// ---------------------------------------------------------------------------------------------
// The WebAssembly API. Node has it built in, but this project's libs (ES2022 + @types/node) do not
// declare it: a minimal typed handle, looked up at call time so a missing API yields null, not a crash.

/** What an Arena exposes of its memory. No `grow`: growing (even by 0 pages) detaches every view. */
export interface ArenaMemory {
  readonly buffer: ArrayBuffer;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number }) => ArenaMemory;
}

function wasmApi(): WasmApi | undefined {
  const api = (globalThis as unknown as { WebAssembly?: Partial<WasmApi> }).WebAssembly;
  if (api === undefined || api === null) return undefined;
  const ok = typeof api.validate === 'function' && typeof api.Module === 'function' && typeof api.Instance === 'function' && typeof api.Memory === 'function';
  return ok ? (api as WasmApi) : undefined;
}

// ---------------------------------------------------------------------------------------------
// A small WebAssembly binary encoder (https://webassembly.github.io/spec/core/binary/).

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of an int32 (the immediate of i32.const). */
function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const vec = (items: readonly number[][]): number[] => [...uleb(items.length), ...items.flat()];
const utf8Name = (s: string): number[] => vec([...s].map((c) => [c.charCodeAt(0)])); // names here are ASCII
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

const MAGIC_AND_VERSION = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

const Section = { type: 1, import: 2, function: 3, export: 7, code: 10 } as const;
const ValType = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
const FUNC_TYPE = 0x60;
const EXTERN_FUNC = 0x00;
const EXTERN_MEMORY = 0x02;
const LIMITS_MIN_ONLY = 0x00;
const BLOCK_VOID = 0x40;

/** Core opcodes. */
const Op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  select: 0x1b,
  local_get: 0x20,
  local_set: 0x21,
  i32_load: 0x28,
  f32_load: 0x2a,
  f64_load: 0x2b,
  i32_store: 0x36,
  f32_store: 0x38,
  f64_store: 0x39,
  i32_const: 0x41,
  i32_lt_s: 0x48,
  i32_gt_s: 0x4a,
  i32_ge_u: 0x4f,
  f32_lt: 0x5d,
  f32_gt: 0x5e,
  f64_lt: 0x63,
  f64_gt: 0x64,
  i32_add: 0x6a,
  i32_mul: 0x6c,
  i32_and: 0x71,
  i32_shl: 0x74,
  f32_add: 0x92,
  f32_mul: 0x94,
  f64_add: 0xa0,
  f64_mul: 0xa2,
} as const;

/** 0xfd-prefixed (SIMD) opcodes; the sub-opcode is a u32 LEB128. */
const SIMD_PREFIX = 0xfd;
const Simd = {
  v128_load: 0x00,
  v128_store: 0x0b,
  v128_const: 0x0c,
  i32x4_splat: 0x11,
  f32x4_splat: 0x13,
  i32x4_ge_s: 0x3f,
  v128_and: 0x4e,
  v128_xor: 0x51,
  i32x4_lt_s: 0x39,
  i32x4_shr_u: 0xad,
  i32x4_trunc_sat_f32x4_s: 0xf8,
  i32x4_sub: 0xb1,
  f32x4_convert_i32x4_s: 0xfa,
  i32x4_add: 0xae,
  i32x4_mul: 0xb5,
  i32x4_min_s: 0xb6,
  i32x4_max_s: 0xb8,
  f32x4_add: 0xe4,
  f32x4_mul: 0xe6,
  f32x4_div: 0xe7,
  f32x4_pmin: 0xea,
  f32x4_pmax: 0xeb,
  f64x2_add: 0xf0,
  f64x2_mul: 0xf2,
  f64x2_pmin: 0xf6,
  f64x2_pmax: 0xf7,
} as const;

/** 0xfc-prefixed (bulk memory) opcodes. */
const BULK_PREFIX = 0xfc;
const Bulk = { memory_copy: 0x0a } as const;

const simd = (op: number): number[] => [SIMD_PREFIX, ...uleb(op)];
const memarg = (alignLog2: number, offset: number): number[] => [...uleb(alignLog2), ...uleb(offset)];
const get = (local: number): number[] => [Op.local_get, ...uleb(local)];
const set = (local: number): number[] => [Op.local_set, ...uleb(local)];
const i32const = (n: number): number[] => [Op.i32_const, ...sleb(n)];
/** local += n */
const bump = (local: number, n: number): number[] => [...get(local), ...i32const(n), Op.i32_add, ...set(local)];

// ---------------------------------------------------------------------------------------------
// The kernels: `<op>_<dtype>(dst, a, b, n)` does dst[i] = a[i] op b[i] for n elements at byte
// addresses dst, a, b (dst may equal a or b), v128 for the bulk and a scalar loop for the tail;
// `copy(dst, src, nbytes)` is memory.copy (overlap allowed).

type KernelOp = Exclude<ReduceOp, 'avg'>;
const KERNEL_OPS: readonly KernelOp[] = ['sum', 'prod', 'min', 'max'];
const KERNEL_DTYPES: readonly DType[] = ['f32', 'f64', 'i32'];

const V128_BYTES = 16;
/** v128 operations per loop iteration: 64 bytes, like the reference in scripts/raw-tcp-ring.ts. */
const UNROLL = 4;

interface Scalar {
  readonly log2Bytes: number;
  readonly valType: number;
  readonly load: number;
  readonly store: number;
  readonly add: number;
  readonly mul: number;
  readonly lt: number;
  readonly gt: number;
  readonly vector: Readonly<Record<KernelOp, number>>;
}

const SCALARS: Readonly<Record<DType, Scalar>> = {
  f32: {
    log2Bytes: 2, valType: ValType.f32, load: Op.f32_load, store: Op.f32_store,
    add: Op.f32_add, mul: Op.f32_mul, lt: Op.f32_lt, gt: Op.f32_gt,
    vector: { sum: Simd.f32x4_add, prod: Simd.f32x4_mul, min: Simd.f32x4_pmin, max: Simd.f32x4_pmax },
  },
  f64: {
    log2Bytes: 3, valType: ValType.f64, load: Op.f64_load, store: Op.f64_store,
    add: Op.f64_add, mul: Op.f64_mul, lt: Op.f64_lt, gt: Op.f64_gt,
    vector: { sum: Simd.f64x2_add, prod: Simd.f64x2_mul, min: Simd.f64x2_pmin, max: Simd.f64x2_pmax },
  },
  i32: {
    log2Bytes: 2, valType: ValType.i32, load: Op.i32_load, store: Op.i32_store,
    add: Op.i32_add, mul: Op.i32_mul, lt: Op.i32_lt_s, gt: Op.i32_gt_s,
    vector: { sum: Simd.i32x4_add, prod: Simd.i32x4_mul, min: Simd.i32x4_min_s, max: Simd.i32x4_max_s },
  },
};

// Locals of a reduce kernel: four i32 params, then two i32 pointers, then two scalars.
const DST = 0, A = 1, B = 2, N = 3, END = 4, VEND = 5, X = 6, Y = 7;

/** The scalar expression for one element, from locals X = a[i] and Y = b[i]; mirrors reduceInto. */
function scalarExpr(op: KernelOp, s: Scalar): number[] {
  switch (op) {
    case 'sum':
      return [...get(X), ...get(Y), s.add];
    case 'prod':
      return [...get(X), ...get(Y), s.mul];
    case 'min': // y < x ? y : x
      return [...get(Y), ...get(X), ...get(Y), ...get(X), s.lt, Op.select];
    case 'max': // y > x ? y : x
      return [...get(Y), ...get(X), ...get(Y), ...get(X), s.gt, Op.select];
  }
}

/**
 * A loop that runs `step` while local `ptr` < local `limit`. Pointers are compared unsigned; an Arena
 * stays below 4 GiB, so no end pointer wraps.
 */
function whileBelow(ptr: number, limit: number, step: number[]): number[] {
  return [Op.block, BLOCK_VOID, Op.loop, BLOCK_VOID, ...get(ptr), ...get(limit), Op.i32_ge_u, Op.br_if, 1, ...step, Op.br, 0, Op.end, Op.end];
}

function reduceBody(op: KernelOp, dtype: DType): number[] {
  const s = SCALARS[dtype];
  const elementBytes = 1 << s.log2Bytes;
  const perIteration = (UNROLL * V128_BYTES) >> s.log2Bytes; // elements
  const vectorStep: number[] = [];
  for (let k = 0; k < UNROLL; k++) {
    const offset = k * V128_BYTES;
    vectorStep.push(
      ...get(DST),
      ...get(A), ...simd(Simd.v128_load), ...memarg(s.log2Bytes, offset),
      ...get(B), ...simd(Simd.v128_load), ...memarg(s.log2Bytes, offset),
      ...simd(s.vector[op]),
      ...simd(Simd.v128_store), ...memarg(s.log2Bytes, offset),
    );
  }
  const loopWhileBelow = (limit: number, step: number[]) => whileBelow(DST, limit, step);
  const code = [
    // vend = dst + (n rounded down to whole iterations) * size; end = dst + n * size
    ...get(DST), ...get(N), ...i32const(-perIteration), Op.i32_and, ...i32const(s.log2Bytes), Op.i32_shl, Op.i32_add, ...set(VEND),
    ...get(DST), ...get(N), ...i32const(s.log2Bytes), Op.i32_shl, Op.i32_add, ...set(END),
    ...loopWhileBelow(VEND, [
      ...vectorStep,
      ...bump(DST, UNROLL * V128_BYTES), ...bump(A, UNROLL * V128_BYTES), ...bump(B, UNROLL * V128_BYTES),
    ]),
    ...loopWhileBelow(END, [
      ...get(A), s.load, ...memarg(s.log2Bytes, 0), ...set(X),
      ...get(B), s.load, ...memarg(s.log2Bytes, 0), ...set(Y),
      ...get(DST), ...scalarExpr(op, s), s.store, ...memarg(s.log2Bytes, 0),
      ...bump(DST, elementBytes), ...bump(A, elementBytes), ...bump(B, elementBytes),
    ]),
    Op.end,
  ];
  const locals = vec([[2, ValType.i32], [2, s.valType]]);
  return [...locals, ...code];
}

function copyBody(): number[] {
  const locals = vec([]);
  return [...locals, ...get(0), ...get(1), ...get(2), BULK_PREFIX, ...uleb(Bulk.memory_copy), 0x00, 0x00, Op.end];
}

// `cardterms_f32(out, ms, qs, rs, hs, len, key, mask, pos, n, scale)`: one card's block of the sum
// inputs (inputs.ts, sumGradients), four elements a v128, for len a multiple of 4 and n >= 4:
//   h = lowbias32(ms[j] ^ key) & mask
//   out[j] = f32(qs[j] + ((p_j - rs[j]) >>> 31) + hs[j] - h) * scale;  hs[j] = h
// with p_j = (pos + j) mod n. Every value is an integer below 2^24 in magnitude, so the f32
// conversion is exact and the result equals the JS loop's bit for bit.
const CT = { OUT: 0, MS: 1, QS: 2, RS: 3, HS: 4, LEN: 5, KEY: 6, MASK: 7, POS: 8, NN: 9, SCALE: 10, J: 11, END: 12, P: 13, X: 14, KEYV: 15, MASKV: 16, NV: 17, SCALEV: 18 } as const;

function v128const(lanes: readonly number[]): number[] {
  const b = new Uint8Array(new Int32Array(lanes).buffer);
  return [...simd(Simd.v128_const), ...b];
}

/** local = lowbias32(local), lane by lane (random.ts; i32x4.mul keeps the low 32 bits, as Math.imul). */
function mix32v(local: number): number[] {
  const xorShr = (k: number) => [...get(local), ...get(local), ...i32const(k), ...simd(Simd.i32x4_shr_u), ...simd(Simd.v128_xor), ...set(local)];
  const mulBy = (c: number) => [...get(local), ...v128const([c, c, c, c]), ...simd(Simd.i32x4_mul), ...set(local)];
  return [...xorShr(16), ...mulBy(0x7feb352d), ...xorShr(15), ...mulBy(0x846ca68b | 0), ...xorShr(16)];
}

function cardTermsBody(): number[] {
  const L = CT;
  const load = (base: number) => [...get(base), ...get(L.J), Op.i32_add, ...simd(Simd.v128_load), ...memarg(4, 0)];
  // p -= n where p >= n
  const wrap = [...get(L.P), ...get(L.NV), ...get(L.P), ...get(L.NV), ...simd(Simd.i32x4_ge_s), ...simd(Simd.v128_and), ...simd(Simd.i32x4_sub), ...set(L.P)];
  const code = [
    ...get(L.KEY), ...simd(Simd.i32x4_splat), ...set(L.KEYV),
    ...get(L.MASK), ...simd(Simd.i32x4_splat), ...set(L.MASKV),
    ...get(L.NN), ...simd(Simd.i32x4_splat), ...set(L.NV),
    ...get(L.SCALE), ...simd(Simd.f32x4_splat), ...set(L.SCALEV),
    ...get(L.POS), ...simd(Simd.i32x4_splat), ...v128const([0, 1, 2, 3]), ...simd(Simd.i32x4_add), ...set(L.P),
    ...wrap,
    ...get(L.LEN), ...i32const(2), Op.i32_shl, ...set(L.END),
    ...i32const(0), ...set(L.J),
    ...whileBelow(L.J, L.END, [
    // x = lowbias32(ms[j] ^ key) & mask
    ...load(L.MS), ...get(L.KEYV), ...simd(Simd.v128_xor), ...set(L.X),
    ...mix32v(L.X),
    ...get(L.X), ...get(L.MASKV), ...simd(Simd.v128_and), ...set(L.X),
    // out[j] = f32(q + ((p - r) >>> 31) + hs - x) * scale
    ...get(L.OUT), ...get(L.J), Op.i32_add,
    ...load(L.QS),
    ...get(L.P), ...load(L.RS), ...simd(Simd.i32x4_sub), ...i32const(31), ...simd(Simd.i32x4_shr_u), ...simd(Simd.i32x4_add),
    ...load(L.HS), ...simd(Simd.i32x4_add),
    ...get(L.X), ...simd(Simd.i32x4_sub),
    ...simd(Simd.f32x4_convert_i32x4_s), ...get(L.SCALEV), ...simd(Simd.f32x4_mul),
    ...simd(Simd.v128_store), ...memarg(4, 0),
    // hs[j] = x
    ...get(L.HS), ...get(L.J), Op.i32_add, ...get(L.X), ...simd(Simd.v128_store), ...memarg(4, 0),
    // p += 4, wrapped
    ...get(L.P), ...v128const([4, 4, 4, 4]), ...simd(Simd.i32x4_add), ...set(L.P),
    ...wrap,
    ...bump(L.J, V128_BYTES),
    ]),
    Op.end,
  ];
  // Params 0..10; locals: J, END (i32), then P, X, KEYV, MASKV, NV, SCALEV (v128).
  const locals = vec([[2, ValType.i32], [6, ValType.v128]]);
  return [...locals, ...code];
}

// `axpy_f32(dst, src, n, k)`: dst[i] += k * src[i], f32 throughout (the card states' update).
// With k a power of two, k * src[i] is exact, so this equals the JS loop (f64, rounded on store)
// bit for bit, as a sum of two f32 does (see the top of the file).
function axpyBody(): number[] {
  const DST = 0, SRC = 1, NN = 2, K = 3, END = 4, VEND = 5, KV = 6;
  const loopWhileBelow = (limit: number, step: number[]) => whileBelow(DST, limit, step);
  const code = [
    ...get(K), ...simd(Simd.f32x4_splat), ...set(KV),
    ...get(DST), ...get(NN), ...i32const(-4), Op.i32_and, ...i32const(2), Op.i32_shl, Op.i32_add, ...set(VEND),
    ...get(DST), ...get(NN), ...i32const(2), Op.i32_shl, Op.i32_add, ...set(END),
    ...loopWhileBelow(VEND, [
      ...get(DST),
      ...get(DST), ...simd(Simd.v128_load), ...memarg(4, 0),
      ...get(SRC), ...simd(Simd.v128_load), ...memarg(4, 0), ...get(KV), ...simd(Simd.f32x4_mul),
      ...simd(Simd.f32x4_add),
      ...simd(Simd.v128_store), ...memarg(4, 0),
      ...bump(DST, V128_BYTES), ...bump(SRC, V128_BYTES),
    ]),
    ...loopWhileBelow(END, [
      ...get(DST),
      ...get(DST), Op.f32_load, ...memarg(2, 0),
      ...get(SRC), Op.f32_load, ...memarg(2, 0), ...get(K), Op.f32_mul,
      Op.f32_add,
      Op.f32_store, ...memarg(2, 0),
      ...bump(DST, 4), ...bump(SRC, 4),
    ]),
    Op.end,
  ];
  // Params 0..3 (K an f32); locals: END, VEND (i32), KV (v128).
  return [...vec([[2, ValType.i32], [1, ValType.v128]]), ...code];
}

// `sumtotals(ms, qs, rs, hs, len, x0, kTotal, totalMask, totalHalf, n, invN, k0, cardMask)`: the
// shared part of a block of the sum inputs (inputs.ts, sumGradients), for len a multiple of 4,
// n >= 4 and totalHalf <= 2^23: per element x = x0 + j,
//   m = x * GOLDEN;  e = (lowbias32(m ^ kTotal) & totalMask) - totalHalf
//   q = floor(e / n), r = e - q n;  hs = lowbias32(m ^ k0) & cardMask;  ms = m
// q from f32: trunc(e * f32(1/n)) is within 1 of the floor (|e / n| <= 2^21, relative error under
// 2^-23), and one step each way on r's sign and size makes it exact: the JS loop's q and r.
const ST = { MS: 0, QS: 1, RS: 2, HS: 3, LEN: 4, X0: 5, KT: 6, TMASK: 7, THALF: 8, NN: 9, INVN: 10, K0: 11, CMASK: 12, J: 13, END: 14, X: 15, M: 16, E: 17, Q: 18, R: 19, NV: 20, FIX: 21 } as const;

function sumTotalsBody(): number[] {
  const L = ST;
  const at = (base: number) => [...get(base), ...get(L.J), Op.i32_add];
  const splat = (local: number) => [...get(local), ...simd(Simd.i32x4_splat)];
  const code = [
    ...splat(L.NN), ...set(L.NV),
    // x = x0 + [0, 1, 2, 3]
    ...splat(L.X0), ...v128const([0, 1, 2, 3]), ...simd(Simd.i32x4_add), ...set(L.X),
    ...get(L.LEN), ...i32const(2), Op.i32_shl, ...set(L.END),
    ...i32const(0), ...set(L.J),
    ...whileBelow(L.J, L.END, [
    // m = x * GOLDEN; ms[j] = m
    ...get(L.X), ...v128const([GOLDEN_WASM, GOLDEN_WASM, GOLDEN_WASM, GOLDEN_WASM]), ...simd(Simd.i32x4_mul), ...set(L.M),
    ...at(L.MS), ...get(L.M), ...simd(Simd.v128_store), ...memarg(4, 0),
    // e = (mix(m ^ kTotal) & totalMask) - totalHalf
    ...get(L.M), ...splat(L.KT), ...simd(Simd.v128_xor), ...set(L.E),
    ...mix32v(L.E),
    ...get(L.E), ...splat(L.TMASK), ...simd(Simd.v128_and), ...splat(L.THALF), ...simd(Simd.i32x4_sub), ...set(L.E),
    // q = trunc(f32(e) * invN); r = e - q n
    ...get(L.E), ...simd(Simd.f32x4_convert_i32x4_s), ...get(L.INVN), ...simd(Simd.f32x4_splat), ...simd(Simd.f32x4_mul), ...simd(Simd.i32x4_trunc_sat_f32x4_s), ...set(L.Q),
    ...get(L.E), ...get(L.Q), ...get(L.NV), ...simd(Simd.i32x4_mul), ...simd(Simd.i32x4_sub), ...set(L.R),
    // r < 0: q -= 1, r += n (the mask is -1 where true)
    ...get(L.R), ...v128const([0, 0, 0, 0]), ...simd(Simd.i32x4_lt_s), ...set(L.FIX),
    ...get(L.Q), ...get(L.FIX), ...simd(Simd.i32x4_add), ...set(L.Q),
    ...get(L.R), ...get(L.NV), ...get(L.FIX), ...simd(Simd.v128_and), ...simd(Simd.i32x4_add), ...set(L.R),
    // r >= n: q += 1, r -= n
    ...get(L.R), ...get(L.NV), ...simd(Simd.i32x4_ge_s), ...set(L.FIX),
    ...get(L.Q), ...get(L.FIX), ...simd(Simd.i32x4_sub), ...set(L.Q),
    ...get(L.R), ...get(L.NV), ...get(L.FIX), ...simd(Simd.v128_and), ...simd(Simd.i32x4_sub), ...set(L.R),
    ...at(L.QS), ...get(L.Q), ...simd(Simd.v128_store), ...memarg(4, 0),
    ...at(L.RS), ...get(L.R), ...simd(Simd.v128_store), ...memarg(4, 0),
    // hs[j] = mix(m ^ k0) & cardMask (reusing E)
    ...get(L.M), ...splat(L.K0), ...simd(Simd.v128_xor), ...set(L.E),
    ...mix32v(L.E),
    ...at(L.HS), ...get(L.E), ...splat(L.CMASK), ...simd(Simd.v128_and), ...simd(Simd.v128_store), ...memarg(4, 0),
    // x += 4
    ...get(L.X), ...v128const([4, 4, 4, 4]), ...simd(Simd.i32x4_add), ...set(L.X),
    ...bump(L.J, V128_BYTES),
    ]),
    Op.end,
  ];
  // Params 0..12 (INVN an f32); locals: J, END (i32), then X, M, E, Q, R, NV, FIX (v128).
  return [...vec([[2, ValType.i32], [7, ValType.v128]]), ...code];
}

// `expected_f32(out, len, x0, kTotal, totalMask, totalHalf, scale, div)`: the exact sum (or avg)
// of the sum inputs (inputs.ts, sumExpected), for len a multiple of 4 and totalHalf <= 2^23: per
// element x = x0 + j, e = (lowbias32(x * GOLDEN ^ kTotal) & totalMask) - totalHalf and
// out[j] = f32(e) * scale / div. f32(e) and the product (scale a power of two) are exact, and an
// f32 division is the JS loop's f64 division rounded to f32 (f64 carries over twice f32's bits
// plus two, so rounding twice gives the same bits): the same result bit for bit.
function expectedBody(): number[] {
  const OUT = 0, LEN = 1, X0 = 2, KT = 3, TMASK = 4, THALF = 5, SCALE = 6, DIV = 7, END = 8, X = 9, E = 10;
  const splat = (local: number) => [...get(local), ...simd(Simd.i32x4_splat)];
  const code = [
    ...splat(X0), ...v128const([0, 1, 2, 3]), ...simd(Simd.i32x4_add), ...set(X),
    ...get(OUT), ...get(LEN), ...i32const(2), Op.i32_shl, Op.i32_add, ...set(END),
    ...whileBelow(OUT, END, [
      ...get(X), ...v128const([GOLDEN_WASM, GOLDEN_WASM, GOLDEN_WASM, GOLDEN_WASM]), ...simd(Simd.i32x4_mul), ...splat(KT), ...simd(Simd.v128_xor), ...set(E),
      ...mix32v(E),
      ...get(OUT),
      ...get(E), ...splat(TMASK), ...simd(Simd.v128_and), ...splat(THALF), ...simd(Simd.i32x4_sub),
      ...simd(Simd.f32x4_convert_i32x4_s), ...get(SCALE), ...simd(Simd.f32x4_splat), ...simd(Simd.f32x4_mul), ...get(DIV), ...simd(Simd.f32x4_splat), ...simd(Simd.f32x4_div),
      ...simd(Simd.v128_store), ...memarg(4, 0),
      ...get(X), ...v128const([4, 4, 4, 4]), ...simd(Simd.i32x4_add), ...set(X),
      ...bump(OUT, V128_BYTES),
    ]),
    Op.end,
  ];
  // Params 0..7 (SCALE, DIV f32); locals: END (i32), then X, E (v128).
  return [...vec([[1, ValType.i32], [2, ValType.v128]]), ...code];
}

/** inputs.ts's GOLDEN (0x9e3779b9) as an int32. */
const GOLDEN_WASM = 0x9e3779b9 | 0;

const kernelName = (op: KernelOp, dtype: DType) => `${op}_${dtype}` as const;

/** The module's bytes: imports `env.mem`, exports the reduce kernels and `copy`. */
export function reductionModuleBytes(): Uint8Array {
  const reducers = KERNEL_OPS.flatMap((op) => KERNEL_DTYPES.map((dtype) => ({ name: kernelName(op, dtype), body: reduceBody(op, dtype) })));
  const functions = [...reducers.map((r) => ({ ...r, type: 0 })), { name: 'copy', body: copyBody(), type: 1 }, { name: 'cardterms_f32', body: cardTermsBody(), type: 2 }, { name: 'axpy_f32', body: axpyBody(), type: 3 }, { name: 'sumtotals', body: sumTotalsBody(), type: 4 }, { name: 'expected_f32', body: expectedBody(), type: 5 }];
  const i32 = ValType.i32;
  const types = vec([
    [FUNC_TYPE, ...vec([[i32], [i32], [i32], [i32]]), ...vec([])], // 0: (dst, a, b, n) -> ()
    [FUNC_TYPE, ...vec([[i32], [i32], [i32]]), ...vec([])], // 1: (dst, src, nbytes) -> ()
    [FUNC_TYPE, ...vec([...Array.from({ length: 10 }, () => [i32]), [ValType.f32]]), ...vec([])], // 2: cardterms_f32
    [FUNC_TYPE, ...vec([[i32], [i32], [i32], [ValType.f32]]), ...vec([])], // 3: axpy_f32 (dst, src, n, k)
    [FUNC_TYPE, ...vec([...Array.from({ length: 10 }, () => [i32]), [ValType.f32], [i32], [i32]]), ...vec([])], // 4: sumtotals
    [FUNC_TYPE, ...vec([...Array.from({ length: 6 }, () => [i32]), [ValType.f32], [ValType.f32]]), ...vec([])], // 5: expected_f32
  ]);
  const imports = vec([[...utf8Name('env'), ...utf8Name('mem'), EXTERN_MEMORY, LIMITS_MIN_ONLY, ...uleb(1)]]);
  const funcs = vec(functions.map((f) => uleb(f.type)));
  const exports = vec(functions.map((f, index) => [...utf8Name(f.name), EXTERN_FUNC, ...uleb(index)]));
  const code = vec(functions.map((f) => [...uleb(f.body.length), ...f.body]));
  return new Uint8Array([
    ...MAGIC_AND_VERSION,
    ...section(Section.type, types),
    ...section(Section.import, imports),
    ...section(Section.function, funcs),
    ...section(Section.export, exports),
    ...section(Section.code, code),
  ]);
}

// Compiled once per WebAssembly API object (tests may stub the global); null: did not validate.
let compiled: { api: WasmApi; module: object | null } | undefined;

function reductionModule(api: WasmApi): object | null {
  if (compiled?.api !== api) {
    const bytes = reductionModuleBytes();
    let module: object | null = null;
    try {
      if (api.validate(bytes)) module = new api.Module(bytes);
    } catch {
      module = null;
    }
    compiled = { api, module };
  }
  return compiled.module;
}

// ---------------------------------------------------------------------------------------------
// Arena

export type ReduceKernel = (dst: number, a: number, b: number, n: number) => void;

/** The raw exports bound to one arena's memory: byte addresses, no checks but wasm's bounds trap. */
export interface ArenaKernels {
  readonly reduce: Readonly<Record<`${KernelOp}_${DType}`, ReduceKernel>>;
  readonly copy: (dst: number, src: number, nbytes: number) => void;
  /** See cardTermsBody. */
  readonly cardTerms: (out: number, ms: number, qs: number, rs: number, hs: number, len: number, key: number, mask: number, pos: number, n: number, scale: number) => void;
  /** See axpyBody. */
  readonly axpy: (dst: number, src: number, n: number, k: number) => void;
  /** See sumTotalsBody. */
  readonly sumTotals: (ms: number, qs: number, rs: number, hs: number, len: number, x0: number, kTotal: number, totalMask: number, totalHalf: number, n: number, invN: number, k0: number, cardMask: number) => void;
  /** See expectedBody. */
  readonly expected: (out: number, len: number, x0: number, kTotal: number, totalMask: number, totalHalf: number, scale: number, div: number) => void;
}

/** Elements per block of the sum inputs' kernel: each arena keeps this much scratch of each of ms, qs, rs, hs. */
export const SUM_BLOCK = 1024;

/** The scratch of the sum inputs' kernel, in the arena's memory. */
export interface SumScratch {
  ms: Int32Array;
  qs: Int32Array;
  rs: Int32Array;
  hs: Int32Array;
}

const PAGE_BYTES = 65536;
// One page short of wasm32's 4 GiB, so every address and end pointer fits an unsigned i32.
const MAX_PAGES = 65535;

/** What Arena.sumScratch takes from an arena: four lanes of SUM_BLOCK int32. */
export const SUM_SCRATCH_BYTES = 4 * SUM_BLOCK * 4;

/** Arenas by their memory's ArrayBuffer: how arenaReduce recognises a view it can reduce. */
const arenasByBuffer = new WeakMap<object, Arena>();
let anyArena = false;

/**
 * A fixed block of WebAssembly memory and a bump allocator over it. The memory never grows, because
 * growing detaches every view into it, including views a socket may still be sending from.
 */
export class Arena {
  readonly memory: ArenaMemory;
  readonly kernels: ArenaKernels;
  private readonly bytes: ArrayBuffer;
  private top = 0;
  private scratch: SumScratch | null | undefined;

  private constructor(memory: ArenaMemory, kernels: ArenaKernels) {
    this.memory = memory;
    this.kernels = kernels;
    this.bytes = memory.buffer;
  }

  /**
   * The sum kernel's scratch (SUM_SCRATCH_BYTES), taken from the arena on the first call; null,
   * for good, when it has no room (the sum inputs then go by the JS loop).
   */
  sumScratch(): SumScratch | null {
    if (this.scratch === undefined) {
      try {
        const lane = () => this.alloc('i32', SUM_BLOCK) as Int32Array;
        this.scratch = { ms: lane(), qs: lane(), rs: lane(), hs: lane() };
      } catch {
        this.scratch = null;
      }
    }
    return this.scratch;
  }

  /**
   * An arena of at least `bytes` bytes (rounded up to whole 64 KiB pages, at least one). Null when
   * WebAssembly or its SIMD is unavailable, or the memory cannot be allocated: use ordinary memory.
   */
  static create(bytes: number): Arena | null {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`arena size must be a non-negative integer of bytes, got ${bytes}`);
    const api = wasmApi();
    if (api === undefined) return null;
    const module = reductionModule(api);
    if (module === null) return null;
    const pages = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
    if (pages > MAX_PAGES) return null;
    let memory: ArenaMemory;
    let exports: Record<string, unknown>;
    try {
      // maximum = initial: the engine itself refuses to grow it.
      memory = new api.Memory({ initial: pages, maximum: pages });
      exports = new api.Instance(module, { env: { mem: memory } }).exports;
    } catch {
      return null;
    }
    const fn = (name: string): ((...args: number[]) => void) => {
      const f = exports[name];
      if (typeof f !== 'function') throw new Error(`reduction module lacks export '${name}'`);
      return f as (...args: number[]) => void;
    };
    const reduce = {} as Record<`${KernelOp}_${DType}`, ReduceKernel>;
    for (const op of KERNEL_OPS) for (const dtype of KERNEL_DTYPES) reduce[kernelName(op, dtype)] = fn(kernelName(op, dtype));
    const arena = new Arena(memory, { reduce, copy: fn('copy'), cardTerms: fn('cardterms_f32'), axpy: fn('axpy_f32'), sumTotals: fn('sumtotals'), expected: fn('expected_f32') });
    arenasByBuffer.set(arena.bytes, arena);
    anyArena = true;
    return arena;
  }

  get buffer(): ArrayBuffer {
    return this.memory.buffer;
  }

  /** Bytes handed out so far, alignment padding included. */
  get used(): number {
    return this.top;
  }

  get capacity(): number {
    return this.bytes.byteLength;
  }

  /**
   * `n` bytes of the arena, starting at a multiple of `align` (a power of two). Throws RangeError
   * when the arena cannot fit them; the caller then falls back to ordinary memory.
   */
  allocBytes(n: number, align = 16): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`allocation size must be a non-negative integer of bytes, got ${n}`);
    if (!Number.isSafeInteger(align) || align < 1 || (align & (align - 1)) !== 0 || align > PAGE_BYTES) {
      throw new RangeError(`alignment must be a power of two from 1 to ${PAGE_BYTES}, got ${align}`);
    }
    const start = Math.ceil(this.top / align) * align;
    if (start + n > this.capacity) {
      throw new RangeError(`arena full: ${n} bytes aligned to ${align} requested, ${this.capacity - this.top} of ${this.capacity} bytes free`);
    }
    this.top = start + n;
    return new Uint8Array(this.bytes, start, n);
  }

  /** `count` elements of `dtype`, 16-byte aligned. Throws RangeError when the arena is full. */
  alloc(dtype: DType, count: number): Elements {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`element count must be a non-negative integer, got ${count}`);
    const bytes = this.allocBytes(count * (1 << SCALARS[dtype].log2Bytes));
    switch (dtype) {
      case 'f32':
        return new Float32Array(this.bytes, bytes.byteOffset, count);
      case 'f64':
        return new Float64Array(this.bytes, bytes.byteOffset, count);
      case 'i32':
        return new Int32Array(this.bytes, bytes.byteOffset, count);
    }
  }

  /** Whether `view` looks into this arena's memory. */
  owns(view: ArrayBufferView): boolean {
    return view.buffer === this.bytes;
  }
}

/** The arena `view` lives in, if any. */
export function arenaOf(view: ArrayBufferView): Arena | undefined {
  return anyArena ? arenasByBuffer.get(view.buffer) : undefined;
}

/**
 * dst[i] += k * src[i] with the SIMD kernel, for f32 views of one arena of the same length that are
 * the same or disjoint, k a power of two (so the result equals the JS loop's); false, having done
 * nothing, otherwise.
 */
export function arenaAxpy(dst: Elements, src: Elements, k: number): boolean {
  if (!anyArena || !(dst instanceof Float32Array) || !(src instanceof Float32Array) || dst.length !== src.length) return false;
  const arena = arenasByBuffer.get(dst.buffer);
  if (arena === undefined || src.buffer !== dst.buffer || partlyOverlap(dst.byteOffset, src.byteOffset, dst.byteLength)) return false;
  const e = Math.log2(Math.abs(k));
  if (!Number.isInteger(e) || e < -100 || e > 100) return false;
  if (dst.length > 0) arena.kernels.axpy(dst.byteOffset, src.byteOffset, dst.length, k);
  return true;
}

/** Kernel names by opIndex * 3 + dtypeIndex, so arenaReduce builds no strings. */
const KERNEL_NAMES = KERNEL_OPS.flatMap((op) => KERNEL_DTYPES.map((dtype) => `${op}_${dtype}` as const));

/** Index into KERNEL_DTYPES. */
function dtypeIndex(x: Elements): number {
  if (x instanceof Float32Array) return 0;
  if (x instanceof Float64Array) return 1;
  return 2;
}

/** Index into KERNEL_OPS. */
function opIndex(op: ReduceOp): number {
  switch (op) {
    case 'sum':
    case 'avg': // avg combines by sum and divides once at the end
      return 0;
    case 'prod':
      return 1;
    case 'min':
      return 2;
    case 'max':
      return 3;
  }
}

/** Whether two element ranges of one buffer overlap without being the same range. */
function partlyOverlap(x: number, y: number, bytes: number): boolean {
  return x !== y && x < y + bytes && y < x + bytes;
}

/**
 * dst[i] = a[i] op b[i] for i < dst.length with the SIMD kernel, when dst, a and b all live in one
 * Arena, have the same element type, a and b hold at least dst.length elements, and dst is either
 * a itself, b itself or disjoint from them (a partial overlap has loop-order semantics in JS).
 * Returns false, having done nothing, otherwise: the caller then runs the JS loop.
 */
export function arenaReduce(op: ReduceOp, dst: Elements, a: Elements, b: Elements): boolean {
  if (!anyArena) return false;
  const buffer = dst.buffer;
  const arena = arenasByBuffer.get(buffer);
  if (arena === undefined || a.buffer !== buffer || b.buffer !== buffer) return false;
  const type = dtypeIndex(dst);
  if (dtypeIndex(a) !== type || dtypeIndex(b) !== type) return false;
  const n = dst.length;
  if (a.length < n || b.length < n) return false;
  const d = dst.byteOffset;
  const bytes = dst.byteLength;
  if (partlyOverlap(d, a.byteOffset, bytes) || partlyOverlap(d, b.byteOffset, bytes)) return false;
  if (n > 0) arena.kernels.reduce[KERNEL_NAMES[opIndex(op) * KERNEL_DTYPES.length + type]](d, a.byteOffset, b.byteOffset, n);
  return true;
}
