// bench's live line: before each size is measured, which one it is of how many (every size under
// every algorithm), through the API's progress hook. Real worker processes, tiny sizes.
import { describe, expect, it } from 'vitest';
import { bench } from '../../dist/src/api/index.js'; // the built API: spawned workers load dist/worker.cjs beside it

describe('bench progress', () => {
  it('names each size as it comes, of all the sizes under all the algorithms', async () => {
    const lines: string[] = [];
    const r = await bench({ workers: 2, minBytes: 8, maxBytes: 64, iters: 2, warmup: 0, algos: ['ring', 'rd'] }, { progress: (l) => lines.push(l) });
    expect(r.error).toBeUndefined();
    expect(r.rows).toHaveLength(8);
    const said = lines.map((l) => /^bench: size (\d+)\/8: (\d+) B (ring|rd), \d+ s elapsed$/.exec(l)?.slice(1));
    expect(said).toEqual([
      ['1', '8', 'ring'],
      ['2', '16', 'ring'],
      ['3', '32', 'ring'],
      ['4', '64', 'ring'],
      ['5', '8', 'rd'],
      ['6', '16', 'rd'],
      ['7', '32', 'rd'],
      ['8', '64', 'rd'],
    ]);
  });
});
