// The CLI's checks before any worker starts (src/cli/preflight.ts, src/cli/memory.ts).
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { estimateMemory, memoryVerdict, type MemoryJob } from '../../src/cli/memory.js';
import { UsageError } from '../../src/api/flags.js';
import { checkCheckpointDir, checkPortFree } from '../../src/cli/preflight.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('memory estimate', () => {
  const job = (o: Partial<MemoryJob>): MemoryJob => ({ localWorkers: 1, ringSize: 1, cardsPerWorker: 1, bytesPerCard: MiB, checkpointEvery: 0, ...o });

  it('counts card-sized buffers per worker: 2 per card, reduced and expected, frames in a ring, checkpoints', () => {
    const base = 64 * MiB;
    expect(estimateMemory(job({ bytesPerCard: GiB })).perWorkerBytes).toBe(4 * GiB + base);
    expect(estimateMemory(job({ ringSize: 2, cardsPerWorker: 2, bytesPerCard: 32 * MiB })).perWorkerBytes).toBe(8 * 32 * MiB + base);
    expect(estimateMemory(job({ bytesPerCard: GiB, checkpointEvery: 1 })).perWorkerBytes).toBe(6 * GiB + base);
    const e = estimateMemory(job({ localWorkers: 16, ringSize: 16, cardsPerWorker: 8, bytesPerCard: 4 * GiB, checkpointEvery: 10 }));
    expect(e.perWorkerBytes).toBe((16 + 2 + 2 + 32) * 4 * GiB + base);
    expect(e.totalBytes).toBe(16 * e.perWorkerBytes);
  });

  it('refuses what cannot fit, warns over half of what is available, says nothing otherwise', () => {
    const machine = { totalBytes: 24 * GiB, availableBytes: 22 * GiB };
    const big = job({ localWorkers: 16, ringSize: 16, cardsPerWorker: 8, bytesPerCard: 4 * GiB });
    const v = memoryVerdict(big, estimateMemory(big), machine);
    expect(v.refuse).toMatch(/^16 workers x 8 cards x --size 4 GiB need at least .* TiB .*; this machine has 24 GiB in all: use a smaller --size/);
    const mid = job({ ringSize: 4, localWorkers: 4, bytesPerCard: 512 * MiB });
    const warned = memoryVerdict(mid, estimateMemory(mid), { totalBytes: 24 * GiB, availableBytes: 16 * GiB });
    expect(warned).toEqual({ warn: expect.stringMatching(/^4 workers x 1 card x --size 512 MiB need at least 12\.\d+ GiB \(3\.06 GiB per worker\), more than half of the 16 GiB available$/) });
    expect(memoryVerdict(mid, estimateMemory(mid), { totalBytes: 24 * GiB, availableBytes: 8 * GiB }).refuse).toMatch(/only 8 GiB is available of 24 GiB/);
    const small = job({ ringSize: 4, localWorkers: 4 });
    expect(memoryVerdict(small, estimateMemory(small), machine)).toEqual({});
    // Workers that join from elsewhere cost this machine nothing.
    expect(memoryVerdict(job({ localWorkers: 0, bytesPerCard: 1024 * GiB }), estimateMemory(job({ localWorkers: 0 })), machine)).toEqual({});
  });
});

describe('preflight', () => {
  it('a port in use is a usage error naming it; a free one passes', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as AddressInfo).port;
    try {
      const e = await checkPortFree('127.0.0.1', port).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect((e as Error).message).toBe(`--port ${port}: 127.0.0.1:${port} is already in use (another coordinator?)`);
    } finally {
      await new Promise((r) => s.close(r));
    }
    await checkPortFree('127.0.0.1', port);
    await checkPortFree('127.0.0.1', 0);
  });

  it('an unwritable checkpoint folder is a usage error', async () => {
    await expect(checkCheckpointDir('/dev/null/ck')).rejects.toThrow(UsageError);
    await expect(checkCheckpointDir('/dev/null/ck')).rejects.toThrow(/^--checkpoint-dir \/dev\/null\/ck: cannot create \/dev\/null\/ck: ENOTDIR/);
  });
});
