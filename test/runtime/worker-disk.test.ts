// A disk that fills mid-run: the worker says so once, keeps its checkpoints in memory from then on,
// reports each checkpoint's disk copy (`disk` in 'checkpointed'), and the run goes on.
import { describe, expect, it } from 'vitest';
import { elementBytes } from '../../src/collective/dtypes.js';
import { CoordinatorMessage, WorkerMessage, type JobSpec } from '../../src/protocol/control.js';
import { channelPair } from '../../src/runtime/channel.js';
import { CheckpointDiskError } from '../../src/runtime/checkpoint-disk.js';
import { MemoryNetwork } from '../../src/runtime/memory-transport.js';
import { Worker, type CheckpointDisk, type WorkerEnv } from '../../src/worker/worker.js';

const STEPS = 6;

function job(): JobSpec {
  return {
    cardsPerWorker: 2,
    totalCards: 2,
    bytesPerCard: 256 * elementBytes('f32'),
    dtype: 'f32',
    op: 'sum',
    steps: STEPS,
    computeMs: 0,
    chunkBytes: 1024,
    seed: 3,
    timeoutMs: 60_000,
    heartbeatMs: 3_600_000,
    checksums: true,
    checkpointEvery: 1,
    checkpointDir: '/nowhere/ck',
    link: { latencyUs: 0, bandwidth: 0, intraBandwidth: 0 },
  };
}

describe('worker checkpoint on a disk that fills', () => {
  it('warns once, stops writing to disk, reports disk: false, and finishes the run', async () => {
    const logs: string[] = [];
    const writes: number[] = [];
    const disk: CheckpointDisk = {
      write: async (_dir, owner, step) => {
        writes.push(step);
        if (writes.length >= 3) throw new CheckpointDiskError('/nowhere/ck/x', `checkpoint step ${step} of cards from ${owner}: could not write /nowhere/ck/x: ENOSPC: no space left on device, write`);
      },
      read: async () => {
        throw new Error('no restore in this test');
      },
    };
    let t = 0;
    const env: WorkerEnv = {
      clock: { now: () => (t += 1), sleep: async (ms) => void (t += ms), setTimer: () => ({ id: 0 }), clearTimer: () => {} },
      rssMB: () => 50,
      pssMB: () => null,
      log: (l) => logs.push(l),
      strike: () => {
        throw new Error('no fault here');
      },
      disk,
    };
    const net = new MemoryNetwork(1);
    const [workerEnd, coordEnd] = channelPair(CoordinatorMessage, WorkerMessage);
    const got: WorkerMessage[] = [];
    coordEnd.setHandlers({ onMessage: (m) => got.push(m), onClose: () => {} });
    const worker = new Worker(workerEnd, net.endpoint('w0'), { workerId: 'w0', pid: 1, token: 't', spawned: true }, env);
    const pump = async (until: () => boolean) => {
      for (let i = 0; i < 5000 && !until(); i++) {
        net.run(1_000_000);
        await new Promise((r) => setImmediate(r));
      }
      expect(until(), JSON.stringify(got.filter((m) => m.type !== 'heartbeat'))).toBe(true);
    };
    await pump(() => got.some((m) => m.type === 'hello'));
    const hello = got.find((m) => m.type === 'hello') as Extract<WorkerMessage, { type: 'hello' }>;
    const self = { rank: 0, dataUrl: hello.dataUrl };
    coordEnd.send({ type: 'assign', epoch: 1, rank: 0, size: 1, firstCard: 0, prev: self, next: self, algo: 'ring', peers: [], job: job(), restore: { step: 0, source: 'initial' }, faults: [], lostCards: [], stragglers: [] });
    await pump(() => got.some((m) => m.type === 'ready'));
    coordEnd.send({ type: 'start', epoch: 1, fromStep: 0 });
    await pump(() => got.some((m) => m.type === 'done' || m.type === 'failed'));
    expect(got.filter((m) => m.type === 'failed')).toEqual([]);
    const ckpts = got.filter((m): m is Extract<WorkerMessage, { type: 'checkpointed' }> => m.type === 'checkpointed');
    expect(ckpts.length).toBeGreaterThanOrEqual(4);
    expect(ckpts.map((m) => m.disk)).toEqual(ckpts.map((_, i) => i < 2));
    // The third write failed; none was tried after it.
    expect(writes).toEqual(ckpts.slice(0, 3).map((m) => m.step));
    const warnings = logs.filter((l) => /warning/.test(l));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^warning: checkpoint step \d+ of cards from 0: could not write .*ENOSPC.*; checkpoints of this worker stay in memory only for the rest of the run$/);
    expect(logs.join('\n')).not.toMatch(/\n\s+at /);
    coordEnd.send({ type: 'shutdown', reason: 'test over' });
    expect(await worker.exited).toBe(0);
  });
});
