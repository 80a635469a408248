// bench's medianUs: the median over iterations of the slowest rank's time in each.
import { describe, expect, it } from 'vitest';
import { medianOfSlowest } from '../../src/coordinator/bench.js';

describe('medianOfSlowest', () => {
  it('takes the slowest rank per iteration, then the median over iterations', () => {
    // Iteration 2 was slow on rank 0 only, iteration 3 on rank 1: the mean counts both, the median neither.
    const iters = [
      [10, 11, 90, 10, 12],
      [11, 10, 10, 85, 11],
    ];
    // Slowest per iteration: 11, 11, 90, 85, 12.
    expect(medianOfSlowest(iters, 2)).toEqual({ medianUs: 12 });
    expect(medianOfSlowest([[1, 4], [3, 2]], 2)).toEqual({ medianUs: 3.5 });
  });

  it('gives nothing unless every rank sent the same number of times', () => {
    expect(medianOfSlowest([[1, 2, 3]], 2)).toEqual({});
    expect(medianOfSlowest([[1, 2, 3], [1, 2]], 2)).toEqual({});
    expect(medianOfSlowest([[], []], 2)).toEqual({});
  });
});
