// Bad input: a message naming the flag and what it accepts, exit status 2, no processes started.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from './helpers.js';

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
    [['run', '--algo', 'butterfly'], /--algo.*auto, ring, rd, tree/],
    [['bench', '--algo', 'ring,butterfly'], /--algo.*ring, rd, tree/],
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

// `ringswarm worker` is parsed inside the worker bundle (src/cli/worker-entry.ts), not by the full
// CLI: the same help and the same errors, and none of the CLI's modules loaded.
describe('ringswarm worker', () => {
  const FLAGS = ['--url', '--token', '--token-file', '--rank', '--world-size', '--id', '--host', '--advertise', '--connect-timeout-ms'];

  it('--help lists its flags, word for word as `ringswarm help worker` (the full CLI) does', async () => {
    const r = await runCli(['worker', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: ringswarm worker \[options\]/);
    for (const f of FLAGS) expect(r.stdout).toContain(f);
    const full = await runCli(['help', 'worker']);
    expect(full.code).toBe(0);
    expect(r.stdout).toBe(full.stdout);
    expect((await runCli(['--help'])).stdout).toMatch(/^ {2}worker \[options\] +join a running job as a worker/m);
  });

  it.each([
    [['worker', '--rank', 'x'], "error: option '--rank <r>' argument 'x' is invalid. expected an integer from 0 to 8192\n(run with --help for usage)\n"],
    [['worker', '--connect-timeout-ms', '-1'], "error: option '--connect-timeout-ms <ms>' argument '-1' is invalid. expected an integer from 0 to 3600000\n(run with --help for usage)\n"],
    [['worker', '--bogus'], "error: unknown option '--bogus'\n(run with --help for usage)\n"],
    [['worker', '--url', 'bad', '--token', 't'], 'error: --url bad is not ws://host:port or host:port\n'],
  ])('%j exits 2 with its message', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(message);
  });

  it('runs from the worker bundle: the loader, and no module of the CLI or of node_modules but the native crc32', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rs-probe-'));
    const probe = join(dir, 'probe.cjs');
    // At exit, the CommonJS modules this process loaded (an ES module importing commander or ws would add them too).
    writeFileSync(probe, "process.on('exit', () => process.stderr.write(`loaded: ${JSON.stringify(Object.keys(require.cache))}\\n`));\n");
    try {
      const r = spawnSync(process.execPath, ['--require', probe, CLI, 'worker', '--url', '127.0.0.1:1', '--token', 'x', '--connect-timeout-ms', '0'], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(3);
      const loaded = JSON.parse(/^loaded: (.*)$/m.exec(r.stderr)![1]) as string[];
      expect(loaded.some((f) => f.endsWith('worker-loader.cjs'))).toBe(true);
      // Besides the loader, only the bundle's one external (a native module): no commander, ws or zod from node_modules.
      expect(loaded.filter((f) => f !== probe && !f.endsWith('worker-loader.cjs') && !f.includes('/@node-rs/'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
