import { afterEach, describe, expect, it } from 'vitest';
import { allocElements } from '../../src/collective/dtypes.js';
import { countWrong, fillExpected, fillGradient, type InputSpec } from '../../src/collective/inputs.js';
import { isRingswarmError, RingswarmError } from '../../src/protocol/errors.js';
import { decodeFrame, encodeFrame } from '../../src/protocol/frame.js';
import { OpRunner } from '../../src/runtime/op-runner.js';
import { SimNetwork, type SimNetworkOptions } from '../../src/runtime/sim-network.js';
import { VirtualClock } from '../../src/runtime/virtual-clock.js';

interface Got {
  to: string;
  from: number;
  at: number;
  frame: Uint8Array;
}

/** Endpoints named w0..w{n-1}; every frame and lost link recorded with its virtual time. */
function sim(n: number, o: Partial<SimNetworkOptions> = {}) {
  const clock = new VirtualClock();
  // 100 µs, 1 MB/s: 1000 bytes take 1 ms to serialize.
  const net = new SimNetwork(clock, { latencyUs: 100, bandwidth: 1e6, seed: 7, ...o });
  const eps = Array.from({ length: n }, (_, i) => net.endpoint(`w${i}`));
  const got: Got[] = [];
  const lost: { at: string; peer: number; t: number; reason: string }[] = [];
  for (const e of eps) {
    e.setEvents({
      onFrame: (from, frame) => got.push({ to: e.name, from, at: clock.now(), frame }),
      onLinkLost: (peer, reason) => lost.push({ at: e.name, peer, t: clock.now(), reason }),
    });
  }
  const addr = (r: number) => ({ rank: (r + n) % n, dataUrl: eps[(r + n) % n].dataUrl });
  /** Rank i = eps[i] in a ring, every endpoint at once; resolves once all are up. */
  const ringUp = async (epoch = 0) => {
    const up = Promise.all(eps.map((e, r) => e.ring(epoch, r, addr(r - 1), addr(r + 1), 1000)));
    await clock.run();
    await up;
  };
  return { clock, net, eps, got, lost, addr, ringUp };
}

function bytes(n: number, fill: number): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

/** A rejection as a value (so none goes unhandled while the clock runs). */
function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );
}

describe('SimNetwork timing', () => {
  it('a frame arrives after bytes/bandwidth then the latency; written when serialized; FIFO per link', async () => {
    const { clock, eps, got, ringUp, net } = sim(2);
    await ringUp();
    const t0 = clock.now();
    expect(t0).toBeCloseTo(0.2); // a ring comes up after a round trip
    const written: number[] = [];
    eps[0].send(1, bytes(1000, 1), () => written.push(clock.now()));
    eps[0].send(1, [bytes(40, 2), bytes(460, 2)], () => written.push(clock.now()));
    expect(eps[0].pendingBytes).toBe(1500);
    await clock.run();
    expect(written[0] - t0).toBeCloseTo(1);
    expect(written[1] - t0).toBeCloseTo(1.5);
    expect(got.map((g) => [g.to, g.from, g.frame.byteLength])).toEqual([
      ['w1', 0, 1000],
      ['w1', 0, 500],
    ]);
    expect(got[0].at - t0).toBeCloseTo(1.1);
    expect(got[1].at - t0).toBeCloseTo(1.6);
    expect(eps[0].pendingBytes).toBe(0);
    expect(net.delivered).toBe(2);
  });

  it('copies the bytes when sent', async () => {
    const { clock, eps, got, ringUp } = sim(2);
    await ringUp();
    const buf = bytes(10, 5);
    eps[0].send(1, buf);
    buf.fill(9);
    await clock.run();
    expect([...got[0].frame]).toEqual(Array(10).fill(5));
  });

  it('shapeLink (by rank, from the sender) adds delay and caps bandwidth, for a while; setLinkModel adds to the network', async () => {
    const { clock, eps, got, ringUp } = sim(2, { bandwidth: 0 });
    await ringUp();
    eps[0].setLinkModel({ latencyMs: 2, bandwidth: 0 });
    let t0 = clock.now();
    eps[0].send(1, bytes(1000, 0));
    await clock.run();
    expect(got.pop()!.at - t0).toBeCloseTo(2.1);
    eps[0].shapeLink(1, { delayMs: 3, bandwidth: 10_000 }, 500); // 1000 bytes: 100 ms
    t0 = clock.now();
    eps[0].send(1, bytes(1000, 0));
    await clock.run({ untilMs: t0 + 1 });
    expect(got).toHaveLength(0);
    await clock.run({ untilMs: t0 + 400 });
    expect(got.pop()!.at - t0).toBeCloseTo(105.1);
    await clock.run(); // the shape expires
    t0 = clock.now();
    eps[0].send(1, bytes(1000, 0));
    await clock.run();
    expect(got.pop()!.at - t0).toBeCloseTo(2.1);
  });

  it('keeps order on a link when a later frame would be faster', async () => {
    const { clock, eps, got, ringUp } = sim(2);
    await ringUp();
    eps[0].shapeLink(1, { delayMs: 50 }, null);
    eps[0].send(1, bytes(10, 1));
    eps[0].shapeLink(1, {}, 0);
    eps[0].send(1, bytes(10, 2));
    await clock.run();
    expect(got.map((g) => g.frame[0])).toEqual([1, 2]);
    expect(got[1].at).toBe(got[0].at);
  });

  it('linkStats: bytes, frames and time spent serializing, per directed link of endpoint names', async () => {
    const { clock, eps, net, ringUp } = sim(3);
    await ringUp();
    eps[0].send(1, bytes(2000, 0));
    eps[0].send(1, bytes(500, 0));
    eps[1].send(2, bytes(100, 0));
    await clock.run();
    const stats = net.linkStats().filter((s) => s.frames > 0);
    expect(stats.map(({ from, to, bytes, frames }) => ({ from, to, bytes, frames }))).toEqual([
      { from: 'w0', to: 'w1', bytes: 2500, frames: 2 },
      { from: 'w1', to: 'w2', bytes: 100, frames: 1 },
    ]);
    expect(stats[0].busyMs).toBeCloseTo(2.5);
    expect(stats[1].busyMs).toBeCloseTo(0.1);
  });
});

describe('SimNetwork rings', () => {
  it('a ring comes up once the next rank has joined the epoch too', async () => {
    const { clock, eps, addr } = sim(2);
    let upAt = -1;
    void eps[0].ring(3, 0, addr(1), addr(1), 1000).then(() => (upAt = clock.now()));
    clock.setTimer(5, () => void eps[1].ring(3, 1, addr(0), addr(0), 1000));
    await clock.run();
    expect(upAt).toBeCloseTo(5.2);
  });

  it('ring() times out (RS_ERR_TIMEOUT, on the virtual clock) over a cut link, to a frozen or a closed peer', async () => {
    for (const fault of ['cut', 'freeze', 'kill'] as const) {
      const { clock, net, eps, addr } = sim(3);
      if (fault === 'cut') net.cut('w2', 'w0', true);
      if (fault === 'freeze') net.freeze('w2');
      if (fault === 'kill') net.kill('w2');
      let failedAt = -1;
      const rings = eps.map((e, r) => settle(e.ring(1, r, addr(r - 1), addr(r + 1), 250).catch((err: unknown) => ((failedAt = clock.now()), Promise.reject(err)))));
      await clock.run();
      const r0 = await rings[0];
      expect(r0.ok, fault).toBe(false);
      const err = (r0 as { err: unknown }).err;
      expect(isRingswarmError(err) && err.code).toBe('RS_ERR_TIMEOUT');
      expect(String((err as Error).message)).toMatch(/within 250 ms/);
      expect(failedAt).toBe(250);
      expect((await rings[1]).ok, `${fault}: w1 does not depend on w2 as prev`).toBe(fault === 'cut');
    }
  });

  it('a ring waiting on a frozen peer comes up when it thaws', async () => {
    const { clock, net, eps, addr } = sim(2);
    net.freeze('w1');
    const up = eps.map((e, r) => settle(e.ring(0, r, addr(r - 1), addr(r + 1), 1000)));
    clock.setTimer(100, () => net.thaw('w1'));
    await clock.run();
    expect((await Promise.all(up)).map((r) => r.ok)).toEqual([true, true]);
  });
});

describe('SimNetwork faults', () => {
  it('cut: nothing arrives on that link (in flight included) until it is restored; written still says ok', async () => {
    const { clock, net, eps, got, ringUp } = sim(2);
    await ringUp();
    eps[0].send(1, bytes(1000, 1)); // in flight when the cable is cut
    clock.setTimer(0.5, () => net.cut('w0', 'w1', true));
    await clock.run();
    const ok: boolean[] = [];
    eps[0].send(1, bytes(10, 2), (w) => ok.push(w));
    eps[1].send(0, bytes(10, 3)); // the other direction is another link
    await clock.run();
    expect(ok).toEqual([true]);
    expect(got.map((g) => [g.to, g.frame[0]])).toEqual([['w0', 3]]);
    net.cut('w0', 'w1', false);
    eps[0].send(1, bytes(10, 4));
    await clock.run();
    expect(got.map((g) => g.frame[0])).toEqual([3, 4]);
    expect(net.linkStats().find((s) => s.from === 'w0')!.dropped).toBe(2);
  });

  it('drop: seeded, the same seed replays the same losses, another seed others', async () => {
    const run = async (seed: number) => {
      const { clock, net, eps, got, ringUp } = sim(2, { seed });
      await ringUp();
      net.drop('w0', 'w1', 0.3);
      for (let i = 0; i < 200; i++) eps[0].send(1, Uint8Array.of(i));
      await clock.run();
      return got.map((g) => g.frame[0]);
    };
    const a = await run(11);
    expect(a.length).toBeGreaterThan(100);
    expect(a.length).toBeLessThan(190);
    expect(await run(11)).toEqual(a);
    expect(await run(12)).not.toEqual(a);
  });

  it('partition: links across groups are cut, within a group kept; heal restores them', async () => {
    const { clock, net, eps, got, ringUp } = sim(3);
    await ringUp();
    net.partition([['w0', 'w1'], ['w2']]);
    eps[0].send(1, Uint8Array.of(1));
    eps[1].send(2, Uint8Array.of(2));
    eps[2].send(0, Uint8Array.of(3));
    await clock.run();
    expect(got.map((g) => g.frame[0])).toEqual([1]);
    net.heal();
    eps[1].send(2, Uint8Array.of(4));
    await clock.run();
    expect(got.map((g) => g.frame[0])).toEqual([1, 4]);
  });

  it('corruptNext: the next n frames on the link fail the receiver CRC check, then frames are whole again', async () => {
    const { clock, net, eps, got, ringUp } = sim(2);
    await ringUp();
    const h = { phase: 'reduce-scatter' as const, epoch: 0, opSeq: 1, step: 0, chunk: 0, offset: 0, src: 0 };
    net.corruptNext('w0', 'w1', 2);
    eps[0].send(1, encodeFrame(h, bytes(64, 7)));
    eps[0].send(1, encodeFrame(h, new Uint8Array(0))); // no payload: its checksum is hit instead
    eps[0].send(1, encodeFrame(h, bytes(64, 7)));
    await clock.run();
    const codes = got.map((g) => {
      try {
        decodeFrame(g.frame, { maxPayload: 1 << 20 });
        return 'ok';
      } catch (e) {
        return (e as RingswarmError).code;
      }
    });
    expect(codes).toEqual(['RS_ERR_CHECKSUM', 'RS_ERR_CHECKSUM', 'ok']);
  });

  it('freeze: nothing reaches the owner and nothing leaves; on thaw both go, in order', async () => {
    const { clock, net, eps, got, ringUp } = sim(2);
    await ringUp();
    net.freeze('w1');
    eps[0].send(1, Uint8Array.of(1));
    eps[0].send(1, Uint8Array.of(2));
    eps[1].send(0, Uint8Array.of(9));
    await clock.run({ untilMs: 50 });
    expect(got).toHaveLength(0);
    clock.setTimer(0, () => eps[0].send(1, Uint8Array.of(3)));
    net.thaw('w1');
    await clock.run();
    expect(got.filter((g) => g.to === 'w1').map((g) => g.frame[0])).toEqual([1, 2, 3]);
    const back = got.filter((g) => g.to === 'w0');
    expect(back.map((g) => g.frame[0])).toEqual([9]);
    expect(back[0].at).toBeCloseTo(50.101); // sent at thaw: 1 byte at 1 MB/s, then 100 µs
    expect(got[0].at).toBe(50);
  });

  it('kill: peers linked to it hear onLinkLost shortly after; frames to and from it are lost', async () => {
    const { clock, net, eps, got, lost, ringUp } = sim(3, { resetDelayMs: 2 });
    await ringUp();
    const t0 = clock.now();
    eps[2].send(0, Uint8Array.of(1)); // in flight from the victim
    eps[1].send(2, Uint8Array.of(2)); // in flight to it
    net.kill('w2');
    await clock.run();
    expect(got).toHaveLength(0);
    expect(lost.map((l) => [l.at, l.peer])).toEqual([
      ['w0', 2],
      ['w1', 2],
    ]);
    expect(lost[0].t - t0).toBeCloseTo(2);
    const ok: boolean[] = [];
    eps[1].send(2, Uint8Array.of(3), (w) => ok.push(w));
    eps[2].send(0, Uint8Array.of(4), (w) => ok.push(w));
    await clock.run();
    expect(ok).toEqual([false, false]);
    expect(got).toHaveLength(0);
  });

  it('dropLink: both ends hear the link is gone; later frames on it are not delivered', async () => {
    const { clock, eps, got, lost, ringUp } = sim(2);
    await ringUp();
    eps[1].dropLink(0, 4003, 'bad frame');
    eps[0].send(1, Uint8Array.of(1));
    await clock.run();
    expect(got).toHaveLength(0);
    expect(lost.map((l) => [l.at, l.peer])).toEqual([
      ['w1', 0],
      ['w0', 1],
    ]);
    expect(lost[1].reason).toMatch(/4003 bad frame/);
  });

  it('a send to a rank not in the ring fails and reports the link lost', async () => {
    const { clock, eps, lost, ringUp } = sim(2);
    await ringUp();
    const ok: boolean[] = [];
    eps[0].send(5, Uint8Array.of(1), (w) => ok.push(w));
    await clock.run();
    expect(ok).toEqual([false]);
    expect(lost.map((l) => l.peer)).toEqual([5]);
  });
});

describe('SimNetwork checkpoint fetch', () => {
  it('fetches copies of the frames the peer serves, over the link; refuses what it lacks; times out on a frozen peer', async () => {
    const { clock, net, eps } = sim(2);
    eps[1].fetchHandler = (owner, step) => (owner === 4 && step === 10 ? [bytes(1000, 1), bytes(1000, 2)] : null);
    const r = settle(eps[0].fetchCheckpoint(eps[1].dataUrl, 0, 4, 10, 500));
    await clock.run();
    const got = await r;
    expect(got.ok && got.value.map((f) => [f.byteLength, f[0]])).toEqual([
      [1000, 1],
      [1000, 2],
    ]);
    expect(clock.now()).toBeCloseTo(0.1 + 2 + 0.1); // request, two frames serialized, latency
    expect(net.linkStats().find((s) => s.from === 'w1')!.bytes).toBe(2000);

    const missing = settle(eps[0].fetchCheckpoint(eps[1].dataUrl, 0, 4, 11, 500));
    await clock.run();
    const m = await missing;
    expect(!m.ok && (m.err as RingswarmError).code).toBe('RS_ERR_PEER_LOST');

    net.freeze('w1');
    const t0 = clock.now();
    const hung = settle(eps[0].fetchCheckpoint(eps[1].dataUrl, 0, 4, 10, 500));
    await clock.run();
    const h = await hung;
    expect(!h.ok && (h.err as RingswarmError).code).toBe('RS_ERR_TIMEOUT');
    expect(clock.now() - t0).toBeCloseTo(500);
  });
});

describe('SimNetwork under the op runner', () => {
  const live: OpRunner[] = [];
  afterEach(() => {
    for (const r of live.splice(0)) r.abort(new RingswarmError('RS_ERR_ABORTED', 'test over'));
  });

  async function allreduce(seed: number): Promise<{ digest: string; wrong: number[]; nowMs: number }> {
    const size = 4;
    const { clock, eps, addr } = sim(size, { seed, trace: true, bandwidth: 1e8 });
    const runners = eps.map((e, rank) => new OpRunner(e, { rank, epoch: 0, dtype: 'f32', chunkElems: 64, timeoutMs: 60_000, checksums: true }));
    live.push(...runners);
    eps.forEach((e, rank) => e.setEvents({ onFrame: (from, f) => runners[rank].onFrame(from, f), onLinkLost: () => {} }));
    const s: InputSpec = { dtype: 'f32', op: 'sum', seed: 42, step: 0, totalCards: size };
    const bufs = eps.map((_, r) => {
      const g = allocElements('f32', 1000);
      fillGradient(g, s, r);
      return g;
    });
    const done = Promise.all(
      eps.map(async (e, rank) => {
        await e.ring(0, rank, addr(rank - 1), addr(rank + 1), 1000);
        await runners[rank].run('allreduce', 0, { size, op: 'sum', buffer: bufs[rank] });
      }),
    );
    const { nowMs } = await clock.run();
    await done;
    const e = allocElements('f32', 1000);
    fillExpected(e, s);
    return { digest: clock.traceDigest(), wrong: bufs.map((b) => countWrong(b, e)), nowMs };
  }

  it('a 4-rank all-reduce is exact, and replays with the same trace', async () => {
    const a = await allreduce(1);
    expect(a.wrong).toEqual([0, 0, 0, 0]);
    expect(a.nowMs).toBeGreaterThan(0);
    expect(await allreduce(1)).toEqual(a);
  });
});
