import { afterEach, describe, expect, it, vi } from 'vitest';
import { DTYPES, allocElements, bytesOf, reduceInto, type Elements, type ReduceOp } from '../../src/collective/dtypes.js';
import { seededRandom, seededWords } from '../../src/collective/random.js';
import { Arena, arenaAxpy, arenaReduce, reductionModuleBytes, SUM_BLOCK, SUM_SCRATCH_BYTES } from '../../src/collective/simd.js';

const OPS = ['sum', 'prod', 'min', 'max'] as const;
const CASES = OPS.flatMap((op) => DTYPES.map((dtype) => [op, dtype] as const));
// Around every vector boundary: f32/i32 do 16 elements per iteration, f64 does 8.
const LENGTHS = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 1000, 1001];

function arena(bytes = 1 << 20): Arena {
  const a = Arena.create(bytes);
  if (a === null) throw new Error('WebAssembly SIMD unavailable: these tests need it (Node >= 16.4 has it)');
  return a;
}

/** Raw 32-bit words of the seeded generator: the tests' inputs are the same on every run. */
const rng = seededWords;

/**
 * Finite values only (then no sum or product of two is NaN): half raw bit patterns (every exponent,
 * subnormals, overflow to ±Infinity), half moderate numbers whose sums and products round.
 */
function fillRandom(x: Elements, next: () => number): void {
  const words = new Uint32Array(x.buffer, x.byteOffset, x.byteLength / 4);
  const wordsPer = x.BYTES_PER_ELEMENT / 4;
  for (let i = 0; i < x.length; i++) {
    do {
      if (x instanceof Int32Array || next() & 1) {
        for (let w = 0; w < wordsPer; w++) words[i * wordsPer + w] = next();
      } else {
        x[i] = (next() / 2 ** 32 - 0.5) * 2 ** ((next() % 41) - 20);
      }
    } while (!Number.isFinite(x[i]));
    if (x instanceof Int32Array && next() % 4 === 0) x[i] = (next() % 7) - 3; // small, incl. 0 and negatives
  }
}

/** The index of the first byte where two views differ, or -1. */
function firstDifference(x: Uint8Array, y: Uint8Array): number {
  if (x.length !== y.length) return Math.min(x.length, y.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** A number as the test failure should show it: -0 is not 0. */
const show = (x: number): string => (Object.is(x, -0) ? '-0' : String(x));

function expectSameBits(got: Elements, want: Elements, what: string): void {
  const at = firstDifference(bytesOf(got), bytesOf(want));
  const e = Math.floor(at / got.BYTES_PER_ELEMENT);
  expect(at, `${what}: element ${e} is ${show(got[e])}, JS loop gives ${show(want[e])}`).toBe(-1);
}

/** Views (dst, a, b) over three regions, in the aliasing and alignment patterns callers use. */
const LAYOUTS = {
  'disjoint, 16-byte aligned': (r: Elements[], n: number) => [r[0].subarray(0, n), r[1].subarray(0, n), r[2].subarray(0, n)],
  'disjoint, unaligned (element offsets 1, 3, 2)': (r: Elements[], n: number) => [r[0].subarray(1, 1 + n), r[1].subarray(3, 3 + n), r[2].subarray(2, 2 + n)],
  'dst is a': (r: Elements[], n: number) => [r[1].subarray(1, 1 + n), r[1].subarray(1, 1 + n), r[2].subarray(0, n)],
  'dst is b': (r: Elements[], n: number) => [r[2].subarray(1, 1 + n), r[1].subarray(0, n), r[2].subarray(1, 1 + n)],
  'a is b': (r: Elements[], n: number) => [r[0].subarray(1, 1 + n), r[1].subarray(1, 1 + n), r[1].subarray(1, 1 + n)],
  'dst is a is b': (r: Elements[], n: number) => [r[1].subarray(1, 1 + n), r[1].subarray(1, 1 + n), r[1].subarray(1, 1 + n)],
} satisfies Record<string, (r: Elements[], n: number) => Elements[]>;

describe('the reduction module', () => {
  it('imports its memory as env.mem and exports <op>_<dtype> for every op and dtype, and copy', () => {
    const wasm = (globalThis as unknown as { WebAssembly: { Module: { new (b: Uint8Array): object; imports(m: object): object[]; exports(m: object): object[] } } })
      .WebAssembly;
    const module = new wasm.Module(reductionModuleBytes());
    expect(wasm.Module.imports(module)).toEqual([{ module: 'env', name: 'mem', kind: 'memory' }]);
    const names = wasm.Module.exports(module).map((e) => (e as { name: string }).name);
    expect(names.sort()).toEqual([...OPS.flatMap((op) => DTYPES.map((t) => `${op}_${t}`)), 'copy', 'cardterms_f32', 'axpy_f32', 'sumtotals', 'expected_f32'].sort());
  });
});

describe('arenaReduce matches the JS loop of reduceInto bit for bit', () => {
  it.each(CASES)('%s %s, every length and layout', (op, dtype) => {
    const next = rng(0x9e3779b9 ^ (OPS.indexOf(op) * 31 + DTYPES.indexOf(dtype)));
    const ar = arena();
    const regionLength = Math.max(...LENGTHS) + 4;
    const inArena = [0, 1, 2].map(() => ar.alloc(dtype, regionLength));
    for (const n of LENGTHS) {
      for (const [layout, views] of Object.entries(LAYOUTS)) {
        for (const r of inArena) fillRandom(r, next);
        const outside = inArena.map((r) => r.slice()); // ordinary memory: reduceInto runs its JS loop
        const [rd, ra, rb] = views(outside, n);
        expect(arenaReduce(op, rd, ra, rb)).toBe(false);
        reduceInto(op, rd, ra, rb);
        const [d, a, b] = views(inArena, n);
        expect(arenaReduce(op, d, a, b)).toBe(true);
        // Whole regions: also proves nothing outside dst was written.
        for (let k = 0; k < 3; k++) expectSameBits(inArena[k], outside[k], `${op} ${dtype} n=${n} ${layout}, region ${k}`);
      }
    }
  });

  const specials: Record<'f32' | 'f64', number[]> = {
    f32: [0, -0, 1, -1, 1.5, -2.75, 2 ** -149, -(2 ** -149), 2 ** -126, 3.4028234663852886e38, -3.4028234663852886e38, 1e-30, 16777217],
    f64: [0, -0, 1, -1, 1.5, -2.75, Number.MIN_VALUE, -Number.MIN_VALUE, 2 ** -1022, Number.MAX_VALUE, -Number.MAX_VALUE, 1e-300, 2 ** 53 + 2],
  };
  it.each(OPS.flatMap((op) => (['f32', 'f64'] as const).map((dtype) => [op, dtype] as const)))(
    '%s %s on every pair of zeros, subnormals, extremes (overflow to Infinity included)',
    (op, dtype) => {
      const v = specials[dtype];
      const ar = arena();
      const [d, a, b] = [0, 1, 2].map(() => ar.alloc(dtype, v.length * v.length));
      v.forEach((x, i) => v.forEach((y, j) => ((a[i * v.length + j] = x), (b[i * v.length + j] = y))));
      const [rd, ra, rb] = [d, a, b].map((x) => x.slice());
      reduceInto(op, rd, ra, rb);
      expect(arenaReduce(op, d, a, b)).toBe(true);
      expectSameBits(d, rd, `${op} ${dtype}`);
    },
  );

  it.each(DTYPES.filter((t) => t !== 'i32'))('%s min/max of -0 and +0 give the first operand, as `y < x ? y : x` does', (dtype) => {
    // Why f32x4.pmin/pmax and not min/max: IEEE min would give -0 for min(+0, -0) in either order.
    // 35 elements: the vector loop and the scalar tail both see each order.
    const ar = arena();
    const [a, b, d] = [0, 1, 2].map(() => ar.alloc(dtype, 35));
    for (let i = 0; i < a.length; i++) ((a[i] = i % 2 ? -0 : 0), (b[i] = i % 2 ? 0 : -0));
    const signs = () => Array.from(d, (x) => (Object.is(x, -0) ? '-0' : Object.is(x, 0) ? '+0' : String(x)));
    const firstOperand = Array.from(a, (_, i) => (i % 2 ? '-0' : '+0'));
    expect(arenaReduce('min', d, a, b)).toBe(true);
    expect(signs()).toEqual(firstOperand);
    expect(arenaReduce('max', d, a, b)).toBe(true);
    expect(signs()).toEqual(firstOperand);
  });

  it('i32 sum and prod wrap like C int32; min and max are signed', () => {
    const ar = arena();
    const [a, b, d] = [0, 1, 2].map(() => ar.alloc('i32', 5));
    a.set([2 ** 31 - 1, -(2 ** 31), 65536, -3, -1]);
    b.set([1, -1, 65536, 5, 1]);
    const run = (op: ReduceOp) => (expect(arenaReduce(op, d, a, b)).toBe(true), Array.from(d));
    expect(run('sum')).toEqual([-(2 ** 31), 2 ** 31 - 1, 131072, 2, 0]);
    expect(run('prod')).toEqual([2 ** 31 - 1, -(2 ** 31), 0, -15, -1]);
    expect(run('min')).toEqual([1, -(2 ** 31), 65536, -3, -1]);
    expect(run('max')).toEqual([2 ** 31 - 1, -1, 65536, 5, 1]);
  });

  it.each(DTYPES)('avg combines by sum (%s)', (dtype) => {
    const ar = arena();
    const [a, b, d] = [0, 1, 2].map(() => ar.alloc(dtype, 20));
    for (let i = 0; i < 20; i++) ((a[i] = i), (b[i] = 3 * i + 1));
    expect(arenaReduce('avg', d, a, b)).toBe(true);
    expect(Array.from(d)).toEqual(Array.from({ length: 20 }, (_, i) => 4 * i + 1));
  });

  it('reduceInto takes the arena path and gives the same result', () => {
    const ar = arena();
    const [a, b] = [0, 1].map(() => ar.alloc('f32', 100));
    for (let i = 0; i < 100; i++) ((a[i] = i / 3), (b[i] = -i / 7));
    const want = a.map((x, i) => x + b[i]);
    reduceInto('sum', a, a, b);
    expectSameBits(a, want, 'reduceInto in the arena');
  });
});

describe('arenaReduce declines, doing nothing, unless all three views share one arena', () => {
  const setup = () => {
    const one = arena();
    const two = arena();
    const fill = (x: Elements) => (x.set(Array.from({ length: x.length }, (_, i) => i + 1)), x);
    return { one, two, fill };
  };

  it('for ordinary arrays and for any mix of arena and ordinary memory', () => {
    const { one, two, fill } = setup();
    const inOne = () => fill(one.alloc('f32', 8));
    const plain = () => fill(allocElements('f32', 8));
    const triples: [string, Elements, Elements, Elements][] = [
      ['all ordinary', plain(), plain(), plain()],
      ['dst ordinary', plain(), inOne(), inOne()],
      ['a ordinary', inOne(), plain(), inOne()],
      ['b ordinary', inOne(), inOne(), plain()],
      ['two arenas', inOne(), inOne(), fill(two.alloc('f32', 8))],
    ];
    for (const [what, d, a, b] of triples) {
      const before = Array.from(d);
      expect(arenaReduce('sum', d, a, b), what).toBe(false);
      expect(Array.from(d), what).toEqual(before);
      reduceInto('sum', d, a, b); // the JS loop still does it
      expect(Array.from(d), what).toEqual(Array.from(a, (x, i) => x + b[i]));
    }
  });

  it('for mixed element types, short inputs, and a dst that partly overlaps an input', () => {
    const { one, fill } = setup();
    const f32 = () => fill(one.alloc('f32', 8));
    expect(arenaReduce('sum', f32(), fill(one.alloc('i32', 8)), f32())).toBe(false);
    expect(arenaReduce('sum', f32(), f32(), fill(one.alloc('f64', 8)))).toBe(false);
    expect(arenaReduce('sum', f32(), f32().subarray(0, 7), f32())).toBe(false);
    const region = f32();
    expect(arenaReduce('sum', region.subarray(1, 5), region.subarray(0, 4), f32().subarray(0, 4))).toBe(false);
    expect(arenaReduce('sum', region.subarray(0, 4), f32().subarray(0, 4), region.subarray(3, 7))).toBe(false);
    // Longer inputs are fine: only dst.length elements are read.
    expect(arenaReduce('sum', f32().subarray(0, 4), f32(), f32())).toBe(true);
  });
});

describe('Arena', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('rounds its size up to whole 64 KiB pages, at least one, and its buffer is its memory', () => {
    expect(arena(0).capacity).toBe(65536);
    expect(arena(65536).capacity).toBe(65536);
    const a = arena(65537);
    expect(a.capacity).toBe(131072);
    expect(a.buffer).toBe(a.memory.buffer);
    expect(a.buffer.byteLength).toBe(a.capacity);
    expect(a.used).toBe(0);
  });

  it('rejects a size that is not a byte count; returns null for one wasm32 cannot hold', () => {
    expect(() => Arena.create(-1)).toThrow(RangeError);
    expect(() => Arena.create(1.5)).toThrow(RangeError);
    expect(Arena.create(2 ** 32)).toBeNull();
  });

  it('returns null when WebAssembly, its SIMD, or the memory is unavailable', () => {
    const real = (globalThis as unknown as { WebAssembly: Record<string, unknown> }).WebAssembly;
    vi.stubGlobal('WebAssembly', undefined);
    expect(Arena.create(1024)).toBeNull();
    vi.stubGlobal('WebAssembly', { ...real, validate: () => false }); // as an engine without SIMD answers
    expect(Arena.create(1024)).toBeNull();
    vi.stubGlobal('WebAssembly', {
      ...real,
      Memory: function () {
        throw new RangeError('could not allocate memory');
      },
    });
    expect(Arena.create(1024)).toBeNull();
    vi.unstubAllGlobals();
    expect(Arena.create(1024)).not.toBeNull();
  });

  it('never grows: the engine refuses, so views stay attached', () => {
    const a = arena(65536);
    const view = a.alloc('f32', 4);
    expect(() => (a.memory as unknown as { grow(pages: number): number }).grow(1)).toThrow(RangeError);
    expect(view.length).toBe(4);
    expect(a.owns(view)).toBe(true);
  });

  it('allocBytes aligns each allocation and counts the padding as used', () => {
    const a = arena(65536);
    expect(a.allocBytes(3, 1).byteOffset).toBe(0);
    expect(a.allocBytes(1, 1).byteOffset).toBe(3);
    expect(a.allocBytes(1).byteOffset).toBe(16);
    expect(a.used).toBe(17);
    const big = a.allocBytes(10, 4096);
    expect([big.byteOffset, big.byteLength, big.buffer]).toEqual([4096, 10, a.buffer]);
    expect(a.used).toBe(4106);
    expect(a.alloc('f64', 3).byteOffset).toBe(4112);
    expect(a.allocBytes(0).byteLength).toBe(0);
    expect(() => a.allocBytes(1, 3)).toThrow(RangeError);
    expect(() => a.allocBytes(-1)).toThrow(RangeError);
    expect(() => a.alloc('f32', 0.5)).toThrow(RangeError);
  });

  it('arenaAxpy adds k times src to dst as the JS loop does, bit for bit, for f32 views of one arena and k a power of two; false otherwise', () => {
    const a = arena(65536);
    const next = seededRandom(0x5eed);
    for (const n of [0, 1, 3, 4, 5, 17, 1000]) {
      const dst = a.alloc('f32', n);
      const src = a.alloc('f32', n);
      for (let i = 0; i < n; i++) [dst[i], src[i]] = [(next() - 0.5) * 2 ** 20, Math.round((next() - 0.5) * 2 ** 24) / 8];
      for (const k of [1 / 256, -1 / 256]) {
        const want = Float32Array.from(dst);
        for (let i = 0; i < n; i++) want[i] += k * src[i];
        expect(arenaAxpy(dst, src, k)).toBe(true);
        expect(Buffer.compare(Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength), Buffer.from(want.buffer)), `n=${n} k=${k}`).toBe(0);
      }
    }
    const x = a.alloc('f32', 8);
    expect(arenaAxpy(x, a.alloc('f32', 8), 0.3)).toBe(false);
    expect(arenaAxpy(x, new Float32Array(8), 1)).toBe(false);
    expect(arenaAxpy(x, a.alloc('f32', 7), 1)).toBe(false);
    expect(arenaAxpy(a.alloc('f64', 8), a.alloc('f64', 8), 1)).toBe(false);
    expect(arenaAxpy(x.subarray(1), x.subarray(0, 7), 1)).toBe(false);
  });

  it('sumScratch takes its four lanes from the arena once, or is null for good when there is no room', () => {
    const a = arena(65536);
    const s = a.sumScratch()!;
    expect([s.ms, s.qs, s.rs, s.hs].map((x) => [x.length, x.buffer === a.buffer])).toEqual(Array(4).fill([SUM_BLOCK, true]));
    expect(a.used).toBe(SUM_SCRATCH_BYTES);
    expect(a.sumScratch()).toBe(s);
    const full = arena(65536);
    full.allocBytes(65536 - 100);
    expect(full.sumScratch()).toBeNull();
    expect(full.used).toBe(65536 - 100);
  });

  it('allocBytes fills the arena exactly, then throws a RangeError that says so, changing nothing', () => {
    const a = arena(65536);
    a.allocBytes(100);
    expect(() => a.allocBytes(65536 - 100 + 1)).toThrow(/arena full: 65437 bytes aligned to 16 requested, 65436 of 65536 bytes free/);
    expect(a.used).toBe(100);
    a.allocBytes(65536 - 112);
    expect(a.used).toBe(65536);
    expect(() => a.allocBytes(1, 1)).toThrow(RangeError);
    expect(a.allocBytes(0).byteOffset).toBe(65536);
  });

  it('alloc returns zeroed views of the right type and length, 16-byte aligned', () => {
    const a = arena();
    a.allocBytes(1, 1);
    for (const dtype of DTYPES) {
      const x = a.alloc(dtype, 5);
      expect(x).toBeInstanceOf(allocElements(dtype, 0).constructor);
      expect([x.length, x.byteOffset % 16, Array.from(x)]).toEqual([5, 0, [0, 0, 0, 0, 0]]);
    }
  });

  it('owns views into its memory, whatever their type or offset, and nothing else', () => {
    const a = arena();
    const b = arena();
    const x = a.alloc('f64', 4);
    expect(a.owns(x)).toBe(true);
    expect(a.owns(x.subarray(1))).toBe(true);
    expect(a.owns(new DataView(a.buffer, 3, 5))).toBe(true);
    expect(a.owns(Buffer.from(a.buffer, 7, 9))).toBe(true);
    expect(a.owns(b.alloc('f64', 4))).toBe(false);
    expect(a.owns(x.slice())).toBe(false);
    expect(a.owns(new Float64Array(4))).toBe(false);
  });

  it('kernels.copy moves bytes like copyWithin, overlaps included', () => {
    const a = arena();
    const bytes = a.allocBytes(300);
    const want = new Uint8Array(300);
    const fill = () => {
      for (let i = 0; i < 300; i++) bytes[i] = want[i] = (i * 37) & 0xff;
    };
    for (const [to, from, n] of [[0, 100, 100], [10, 0, 200], [0, 5, 200], [7, 7, 50], [299, 0, 1], [0, 0, 0]]) {
      fill();
      a.kernels.copy(bytes.byteOffset + to, bytes.byteOffset + from, n);
      want.copyWithin(to, from, from + n);
      expect(firstDifference(bytes, want), `copy ${n} bytes from ${from} to ${to}`).toBe(-1);
    }
  });
});
