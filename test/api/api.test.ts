import { describe, expect, it } from 'vitest';
import { RingswarmUsageError, run, runConfig, startRun } from '../../dist/src/api/index.js'; // the built API: spawned workers load dist/worker.cjs beside it

describe('API options', () => {
  it('gives the CLI messages for bad input', async () => {
    await expect(runConfig({ onFailure: 'spare' })).rejects.toThrow(new RingswarmUsageError('--on-failure spare needs --spares N (N >= 1)'));
    await expect(runConfig({ size: 6 })).rejects.toThrow('--size 6 is not a whole number of f32 elements (4 bytes each)');
    await expect(runConfig({ workers: 0 })).rejects.toThrow('--workers 0: expected an integer from 1 to 4096');
    await expect(runConfig({ size: '64KiB' })).resolves.toMatchObject({ bytesPerCard: 65536 });
  });
});

describe('API jobs', () => {
  it('run gives the report', async () => {
    const r = await run({ workers: 2, cardsPerWorker: 1, size: '4KiB', steps: 3, port: 0 });
    expect(r.ok).toBe(true);
  }, 60_000);

  it('startRun emits ready and step events and resolves done', async () => {
    const job = startRun({ workers: 2, cardsPerWorker: 1, size: '4KiB', steps: 3, port: 0 });
    const seen: string[] = [];
    job.on('ready', () => seen.push('ready')).on('step', (e) => seen.push(`step ${e.step}`));
    const r = await job.done;
    expect(r.ok).toBe(true);
    expect(seen[0]).toBe('ready');
    expect(seen.filter((s) => s.startsWith('step')).length).toBe(3);
    expect(() => job.inject('kill:rank=1:step=2')).toThrow(/not supported yet/);
  }, 60_000);
});
