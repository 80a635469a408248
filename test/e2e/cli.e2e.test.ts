// Bad input: a message naming the flag and what it accepts, exit status 2, no processes started.
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

describe('flag checking', () => {
  it.each([
    [['run', '-w', '0'], /--workers.*integer from 1/],
    [['run', '--workers', 'many'], /--workers.*integer/],
    [['run', '-g', '-3'], /--cards-per-worker/],
    [['run', '-s', '12X'], /--size.*K, KiB, M, MiB, G or GiB/],
    [['run', '-s', '6'], /--size 6 is not a whole number of f32 elements/],
    [['run', '-s', '12', '--dtype', 'f64'], /--size 12 is not a whole number of f64 elements/],
    [['run', '--dtype', 'f16'], /--dtype.*f32, f64, i32/],
    [['run', '--op', 'mean'], /--op.*sum, prod, min, max, avg/],
    [['run', '--steps', '1.5'], /--steps/],
    [['run', '--compute-ms', '-1'], /--compute-ms/],
    [['run', '--timeout-ms', '0'], /--timeout-ms/],
    [['run', '--port', '70000'], /--port.*0 to 65535/],
    [['run', '--chunk', '2'], /--chunk 2 is smaller than one f32 element/],
    [['run', '--spawn', '9', '-w', '8'], /--spawn 9 is more than --workers 8/],
    [['run', '--bogus'], /unknown option '--bogus'/],
    [['bench', '-b', '1MiB', '-e', '1KiB'], /--min-bytes 1048576 is larger than --max-bytes 1024/],
    [['bench', '--collective', 'alltoall'], /--collective.*allreduce, reducescatter, allgather, broadcast/],
    [['bench', '-c', '2'], /--check.*0 or 1/],
    [['bench', '-f', '1'], /--step-factor/],
    [['run', '--algo', 'tree'], /--algo.*auto, ring, rd/],
    [['bench', '--algo', 'ring,tree'], /--algo.*ring, rd/],
    [['run', '--link-bandwidth', 'fast'], /--link-bandwidth/],
    [['run', '--link-latency-us', '-5'], /--link-latency-us/],
    [['frobnicate'], /unknown command/],
  ])('%j is refused', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('--help exits 0 and lists the run flags', async () => {
    const r = await runCli(['run', '--help']);
    expect(r.code).toBe(0);
    for (const f of ['--workers', '--cards-per-worker', '--size', '--dtype', '--op', '--steps', '--compute-ms', '--chunk', '--seed', '--timeout-ms', '--port', '--json']) {
      expect(r.stdout).toContain(f);
    }
  });
});
