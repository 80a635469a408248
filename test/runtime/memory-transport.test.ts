// MemoryNetwork's faults: cut, seeded drop, partition, corrupt (per directed link of ranks).
import { describe, expect, it } from 'vitest';
import type { RingswarmError } from '../../src/protocol/errors.js';
import { decodeFrame, encodeFrame } from '../../src/protocol/frame.js';
import { MemoryNetwork } from '../../src/runtime/memory-transport.js';

/** Three ranks, each receiving from both others. */
async function net3(seed = 1) {
  const net = new MemoryNetwork(seed);
  const eps = [0, 1, 2].map((r) => net.endpoint(`r${r}`));
  const got: [number, number, number][] = [];
  eps.forEach((e, r) => e.setEvents({ onFrame: (from, f) => got.push([from, r, f[0]]), onLinkLost: () => {} }));
  const addr = (r: number) => ({ rank: r, dataUrl: eps[r].dataUrl });
  await Promise.all(eps.map((e, r) => e.ring(0, r, addr((r + 2) % 3), addr((r + 1) % 3), 1000, [addr((r + 1) % 3)])));
  return { net, eps, got };
}

describe('MemoryNetwork faults', () => {
  it('cut: frames on that link are lost, those in flight too; the reverse link still works; undone by cut off', async () => {
    const { net, eps, got } = await net3();
    eps[0].send(1, Uint8Array.of(1)); // in flight when cut
    net.cut(0, 1, true);
    eps[0].send(1, Uint8Array.of(2));
    eps[1].send(0, Uint8Array.of(3));
    expect(net.run()).toBe(1);
    expect(got).toEqual([[1, 0, 3]]);
    expect(net.dropped).toBe(2);
    net.cut(0, 1, false);
    eps[0].send(1, Uint8Array.of(4));
    net.run();
    expect(got).toEqual([
      [1, 0, 3],
      [0, 1, 4],
    ]);
  });

  it('drop: seeded and replayable', async () => {
    const run = async (seed: number) => {
      const { net, eps, got } = await net3(seed);
      net.drop(0, 1, 0.5);
      for (let i = 0; i < 100; i++) eps[0].send(1, Uint8Array.of(i));
      net.run();
      return got.map((g) => g[2]);
    };
    const a = await run(5);
    expect(a.length).toBeGreaterThan(20);
    expect(a.length).toBeLessThan(80);
    expect(await run(5)).toEqual(a);
    expect(await run(6)).not.toEqual(a);
    expect(() => new MemoryNetwork().drop(0, 1, 2)).toThrow(RangeError);
  });

  it('partition: links between groups are cut until heal; ranks in no group are not affected', async () => {
    const { net, eps, got } = await net3();
    net.partition([[0], [1]]);
    eps[0].send(1, Uint8Array.of(1));
    eps[1].send(0, Uint8Array.of(2));
    eps[2].send(0, Uint8Array.of(3));
    eps[0].send(2, Uint8Array.of(4));
    net.run();
    expect(got.map((g) => g[2]).sort()).toEqual([3, 4]);
    net.heal();
    eps[0].send(1, Uint8Array.of(5));
    net.run();
    expect(got.map((g) => g[2])).toContain(5);
  });

  it('corruptNext: the next n frames on the link fail the checksum, others are untouched', async () => {
    const { net, eps } = await net3();
    const frames: Uint8Array[] = [];
    eps[1].setEvents({ onFrame: (_from, f) => frames.push(f), onLinkLost: () => {} });
    const h = { phase: 'all-gather' as const, epoch: 0, opSeq: 0, step: 0, chunk: 0, offset: 0, src: 0 };
    net.corruptNext(0, 1, 1);
    const sent = encodeFrame(h, new Uint8Array(32).fill(3));
    eps[0].send(1, sent);
    eps[0].send(1, encodeFrame(h, new Uint8Array(32).fill(3)));
    eps[2].send(1, encodeFrame(h, new Uint8Array(32).fill(3)));
    net.run();
    const codes = frames.map((f) => {
      try {
        decodeFrame(f, { maxPayload: 1024 });
        return 'ok';
      } catch (e) {
        return (e as RingswarmError).code;
      }
    });
    expect(codes.sort()).toEqual(['RS_ERR_CHECKSUM', 'ok', 'ok']);
    expect(() => decodeFrame(sent, { maxPayload: 1024 })).not.toThrow(); // the sender's buffer is its own
  });
});
