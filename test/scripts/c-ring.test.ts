// The C ring reference (scripts/c-ring.c) builds with `cc -O2` and computes exact sums: tiny
// shapes only, no timing asserted. Skipped where there is no C compiler.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCRing } from '../../scripts/c-ring-build.js';

const cc = process.env.CC || 'cc';
const hasCc = !spawnSync(cc, ['--version'], { stdio: 'ignore' }).error;

interface Doc {
  impl: string;
  ranks: number;
  rows: { bytes: number; timeUs: number; busbwGBps: number; wrong: number }[];
}

describe.skipIf(!hasCc)('c-ring', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'c-ring-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let bin = '';

  const run = (args: string[]) => spawnSync(bin, [...args, '--timeout', '20'], { encoding: 'utf8', timeout: 30_000 });

  it('builds with cc -O2', () => {
    const b = buildCRing(dir, cc);
    if (!b.ok) throw new Error(b.reason);
    bin = b.bin;
  });

  it.each([
    [2, '1KiB'],
    [3, '1KiB,12,8,4100'], // uneven segments, and empty ones (8 B on 3 ranks)
  ])('%i ranks, sizes %s: exact sums, wrong = 0, JSON in raw-tcp-ring.ts shape', (ranks, sizes) => {
    expect(bin).not.toBe('');
    const r = run(['--ranks', String(ranks), '--sizes', sizes, '--iters', '3', '--warmup', '1', '--json', '--chunk', '256']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.impl).toBe('c-ring');
    expect(doc.ranks).toBe(ranks);
    expect(doc.rows.map((x) => x.bytes)).toEqual(sizes.split(',').map((s) => (s === '1KiB' ? 1024 : Number(s))));
    for (const row of doc.rows) {
      expect(row.wrong).toBe(0);
      expect(row.timeUs).toBeGreaterThan(0);
    }
  });

  it('rejects a size that is not whole f32 elements (usage error, exit 2)', () => {
    const r = run(['--ranks', '2', '--sizes', '6']);
    expect(r.status).toBe(2);
  });
});
