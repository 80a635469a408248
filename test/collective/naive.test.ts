import { describe, expect, it } from 'vitest';
import { DTYPES, REDUCE_OPS, allocElements, type Elements, type ReduceOp } from '../../src/collective/dtypes.js';
import { countWrong, fillExpected, fillGradient } from '../../src/collective/inputs.js';
import { naiveAllGather, naiveAllReduce, naiveBroadcast, naiveReduceScatter } from '../../src/collective/naive.js';
import { segmentRange } from '../../src/collective/ring.js';

const CASES = DTYPES.flatMap((dtype) => REDUCE_OPS.map((op) => [dtype, op] as const));
const SIZES = [0, 1, 7, 1000];

const lists = (bufs: Elements[]) => bufs.map((b) => Array.from(b));

describe('naiveAllReduce', () => {
  const a = () => [Float64Array.of(1, -2, 3.5), Float64Array.of(10, 20, -30), Float64Array.of(0.5, 4, 2)];
  it.each([
    ['sum', [11.5, 22, -24.5]],
    ['prod', [5, -160, -210]],
    ['min', [0.5, -2, -30]],
    ['max', [10, 20, 3.5]],
    ['avg', [11.5 / 3, 22 / 3, -24.5 / 3]],
  ] as const)('%s gives every rank the reduction over ranks', (op, want) => {
    expect(lists(naiveAllReduce(a(), op))).toEqual([want, want, want]);
  });

  it('i32 sum and prod wrap like C int32; avg truncates toward zero', () => {
    expect(lists(naiveAllReduce([Int32Array.of(2 ** 31 - 1, 65536), Int32Array.of(1, 65536)], 'sum'))[0]).toEqual([-(2 ** 31), 131072]);
    expect(lists(naiveAllReduce([Int32Array.of(65536, -3), Int32Array.of(65536, 5)], 'prod'))[0]).toEqual([0, -15]);
    expect(lists(naiveAllReduce([Int32Array.of(-3, 3, 5), Int32Array.of(0, 0, 0)], 'avg'))[0]).toEqual([-1, 1, 2]);
  });

  it('f32 results are rounded to f32 at every step, in rank order', () => {
    const [r] = naiveAllReduce([Float32Array.of(2 ** 24), Float32Array.of(1), Float32Array.of(1)], 'sum');
    expect(r[0]).toBe(2 ** 24); // (2^24 + 1) rounds back to 2^24, twice
  });

  it('gives each rank its own buffer of the inputs type and leaves the inputs alone', () => {
    const inputs = [Int32Array.of(1, 2), Int32Array.of(3, 4)];
    const out = naiveAllReduce(inputs, 'sum');
    expect(out[0]).toBeInstanceOf(Int32Array);
    out[0][0] = 99;
    expect(out[1][0]).toBe(4);
    expect(lists(inputs)).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('one rank gets its own input (avg divides by 1)', () => {
    expect(lists(naiveAllReduce([Float32Array.of(1.5, -2)], 'avg'))).toEqual([[1.5, -2]]);
  });

  it('rejects no ranks, mixed lengths and mixed dtypes', () => {
    expect(() => naiveAllReduce([], 'sum')).toThrow(RangeError);
    expect(() => naiveAllReduce([new Float32Array(2), new Float32Array(3)], 'sum')).toThrow(/rank 1 has 3 elements, rank 0 has 2/);
    expect(() => naiveAllReduce([new Float32Array(2), new Float64Array(2)], 'sum')).toThrow(TypeError);
  });
});

describe('naiveReduceScatter', () => {
  it('gives rank r segment r of the all-reduce, uneven sizes first-heavy', () => {
    const inputs = [Int32Array.of(0, 1, 2, 3, 4, 5, 6), Int32Array.of(10, 10, 10, 10, 10, 10, 10), Int32Array.of(100, 0, 0, 0, 0, 0, 0)];
    expect(lists(naiveReduceScatter(inputs, 'sum'))).toEqual([[110, 11, 12], [13, 14], [15, 16]]);
  });

  it('gives empty segments to the ranks past the element count', () => {
    const inputs = [Float32Array.of(1, 2), Float32Array.of(3, 4), Float32Array.of(5, 6), Float32Array.of(7, 8)];
    expect(lists(naiveReduceScatter(inputs, 'max'))).toEqual([[7], [8], [], []]);
  });

  it('avg divides every segment by the number of ranks', () => {
    expect(lists(naiveReduceScatter([Float64Array.of(1, 2), Float64Array.of(2, 5)], 'avg'))).toEqual([[1.5], [3.5]]);
  });
});

describe('naiveAllGather', () => {
  it('gives everyone the concatenation in rank order, uneven and empty segments included', () => {
    const out = naiveAllGather([Float32Array.of(1, 2), new Float32Array(0), Float32Array.of(3), Float32Array.of(4, 5, 6)]);
    expect(lists(out)).toEqual(Array(4).fill([1, 2, 3, 4, 5, 6]));
    out[0][0] = 9;
    expect(out[3][0]).toBe(1);
  });

  it('rejects no ranks and mixed dtypes', () => {
    expect(() => naiveAllGather([])).toThrow(RangeError);
    expect(() => naiveAllGather([Int32Array.of(1), Float32Array.of(1)])).toThrow(/rank 1 holds a Float32Array, rank 0 a Int32Array/);
  });
});

describe('naiveBroadcast', () => {
  it('gives everyone a copy of the root', () => {
    const inputs = [Int32Array.of(1, 2), Int32Array.of(3, 4), Int32Array.of(5, 6)];
    const out = naiveBroadcast(inputs, 1);
    expect(lists(out)).toEqual([
      [3, 4],
      [3, 4],
      [3, 4],
    ]);
    out[1][0] = 0;
    expect(inputs[1][0]).toBe(3);
    expect(out[0][0]).toBe(3);
  });

  it('rejects a root out of range and buffers of other shapes', () => {
    const inputs = [Int32Array.of(1), Int32Array.of(2)];
    expect(() => naiveBroadcast(inputs, 2)).toThrow(/root 2 out of range 0\.\.1/);
    expect(() => naiveBroadcast(inputs, -1)).toThrow(RangeError);
    expect(() => naiveBroadcast(inputs, 0.5)).toThrow(RangeError);
    expect(() => naiveBroadcast([Int32Array.of(1), Int32Array.of(1, 2)], 0)).toThrow(RangeError);
  });
});

describe('the naive collectives on verifiable inputs, 1..16 ranks', () => {
  function inputsFor(dtype: (typeof DTYPES)[number], op: ReduceOp, n: number, size: number) {
    const spec = { dtype, op, seed: 99, step: 4, totalCards: n };
    const inputs = Array.from({ length: n }, (_, c) => {
      const g = allocElements(dtype, size);
      fillGradient(g, spec, c);
      return g;
    });
    return { spec, inputs };
  }

  it.each(CASES)('%s %s: all-reduce = fillExpected; reduce-scatter = its segments; all-gather of those = all-reduce', (dtype, op) => {
    for (let n = 1; n <= 16; n++) {
      for (const size of SIZES) {
        const where = `${dtype} ${op} ranks=${n} size=${size}`;
        const { spec, inputs } = inputsFor(dtype, op, n, size);
        const want = allocElements(dtype, size);
        fillExpected(want, spec);

        const all = naiveAllReduce(inputs, op);
        expect(all.length, where).toBe(n);
        for (const r of all) expect(countWrong(r, want), where).toBe(0);

        const segments = naiveReduceScatter(inputs, op);
        segments.forEach((s, r) => {
          const { offset, count } = segmentRange(size, n, r);
          const part = allocElements(dtype, count);
          fillExpected(part, spec, offset);
          expect(countWrong(s, part), `${where} segment ${r}`).toBe(0);
        });

        for (const r of naiveAllGather(segments)) expect(countWrong(r, want), `${where} gathered`).toBe(0);
        const root = (n * 7) % n;
        for (const r of naiveBroadcast(inputs, root)) expect(countWrong(r, inputs[root]), `${where} broadcast`).toBe(0);
      }
    }
  });
});
