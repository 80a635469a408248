// The alpha-beta model behind --algo auto: how many hops each algorithm takes, and which one it
// picks where the machine's cores, the links' latency or their bandwidth is the limit.
import { describe, expect, it } from 'vitest';
import { MACHINE_MODEL, pickAlgo, predictAllreduce, predictedCrossover, type FabricModel } from '../../src/collective/model.js';

/** This machine's rates on 2 cores, no emulated link. */
const here: FabricModel = { ...MACHINE_MODEL, cores: 2, linkLatencyUs: 0, linkBandwidth: 0, intraBandwidth: 0 };

describe('alpha-beta model', () => {
  it('counts the hops one after the other: 2(n-1) for the ring, log2 p (+2 with extras) for rd, twice that for the tree', () => {
    expect(predictAllreduce('ring', 8, 1, 8, here).hops).toBe(14);
    expect(predictAllreduce('rd', 8, 1, 8, here).hops).toBe(3);
    expect(predictAllreduce('tree', 8, 1, 8, here).hops).toBe(6);
    expect(predictAllreduce('rd', 12, 1, 8, here).hops).toBe(5);
    expect(predictAllreduce('tree', 12, 1, 8, here).hops).toBe(8);
    for (const algo of ['ring', 'rd', 'tree'] as const) expect(predictAllreduce(algo, 1, 1, 8, here).hops).toBe(0);
  });

  it('auto: the tree where many workers share few cores, rd where link latency is the cost, the ring for large messages or slow links', () => {
    expect(pickAlgo(16, 1, 64, here)).toBe('tree');
    expect(pickAlgo(16, 8, 1 << 20, here)).toBe('tree');
    expect(pickAlgo(4, 1, 64 << 20, here)).toBe('ring');
    expect(pickAlgo(16, 1, 64, { ...here, linkLatencyUs: 5000 })).toBe('rd');
    expect(pickAlgo(16, 1, 64, { ...here, cores: 64 })).toBe('rd');
    expect(pickAlgo(16, 1, 1 << 20, { ...here, linkBandwidth: 1e8 })).toBe('ring');
  });

  it('predicts the crossover to the ring by bisection, against recursive doubling or the tree', () => {
    const rd = predictedCrossover(16, here)!;
    expect(predictAllreduce('ring', 16, 1, rd, here).interUs).toBeLessThanOrEqual(predictAllreduce('rd', 16, 1, rd, here).interUs);
    expect(predictAllreduce('rd', 16, 1, rd - 1, here).interUs).toBeLessThan(predictAllreduce('ring', 16, 1, rd - 1, here).interUs);
    expect(predictedCrossover(16, here, 'tree')!).toBeGreaterThan(rd);
    // On 4 workers the ring's fewer bytes a hop win from some MiB on.
    const tree4 = predictedCrossover(4, here, 'tree')!;
    expect(tree4).toBeLessThan(64 << 20);
    expect(pickAlgo(4, 1, tree4, here)).toBe('ring');
  });
});
