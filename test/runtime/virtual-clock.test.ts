import { describe, expect, it } from 'vitest';
import { every } from '../../src/runtime/clock.js';
import { VirtualClock } from '../../src/runtime/virtual-clock.js';

describe('VirtualClock', () => {
  it('fires timers by time, then in the order they were set, moving the clock to each', async () => {
    const c = new VirtualClock();
    const seen: string[] = [];
    const at = (label: string) => () => seen.push(`${label}@${c.now()}`);
    c.setTimer(5, at('b'));
    c.setTimer(1, at('a'));
    c.setTimer(5, at('c'));
    c.setTimer(0, at('z'));
    c.setTimer(-3, at('z2'));
    c.setTimer(2.5, () => {
      at('d')();
      c.setTimer(2.5, at('e')); // same time as b and c, set later
    });
    const r = await c.run();
    expect(seen).toEqual(['z@0', 'z2@0', 'a@1', 'd@2.5', 'b@5', 'c@5', 'e@5']);
    expect(r).toEqual({ events: 7, nowMs: 5, reason: 'idle' });
  });

  it('sleep resolves after its time; clearTimer cancels; a cleared or fired handle clears nothing', async () => {
    const c = new VirtualClock(100);
    const seen: string[] = [];
    const h = c.setTimer(10, () => seen.push('cleared'));
    const fired = c.setTimer(1, () => seen.push('fired'));
    c.clearTimer(h);
    c.clearTimer(null);
    void (async () => {
      await c.sleep(20);
      seen.push(`slept@${c.now()}`);
      c.clearTimer(fired);
      c.clearTimer(h);
    })();
    await c.run();
    expect(seen).toEqual(['fired', 'slept@120']);
    expect(c.pending).toBe(0);
  });

  it('many cleared timers (watchdogs) are compacted away and the rest still fire in order', async () => {
    const c = new VirtualClock();
    const seen: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const h = c.setTimer(i % 97, () => seen.push(-1));
      if (i % 5 !== 0) c.clearTimer(h);
      else c.clearTimer(c.setTimer(1, () => seen.push(-2)));
      if (i % 5 === 0) c.clearTimer(h);
    }
    for (let i = 0; i < 50; i++) c.setTimer(50 - i, () => seen.push(50 - i));
    await c.run();
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('lets every promise continuation run before the next timer', async () => {
    const c = new VirtualClock();
    const seen: string[] = [];
    const deep = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await Promise.resolve(i);
    };
    c.setTimer(1, () => {
      void (async () => {
        await deep(50);
        await new Promise<void>((r) => queueMicrotask(r));
        process.nextTick(() => seen.push('tick'));
        await deep(50);
        seen.push('chain done');
      })();
    });
    c.setTimer(1, () => seen.push('next timer'));
    await c.run();
    // (A nextTick queued from a promise job runs once that queue is empty: after 'chain done'.)
    expect(seen).toEqual(['chain done', 'tick', 'next timer']);
  });

  it('also runs continuations of code started before run()', async () => {
    const c = new VirtualClock();
    const seen: number[] = [];
    void (async () => {
      await Promise.resolve();
      await Promise.resolve();
      await c.sleep(3);
      seen.push(c.now());
    })();
    expect((await c.run()).reason).toBe('idle');
    expect(seen).toEqual([3]);
  });

  it('stops at untilMs, after maxEvents, or when stop() says so, and can go on after', async () => {
    const c = new VirtualClock();
    let ticks = 0;
    const stopTicking = every(c, 10, () => ticks++);
    expect(await c.run({ untilMs: 35 })).toEqual({ events: 3, nowMs: 35, reason: 'until' });
    expect(await c.run({ maxEvents: 2 })).toEqual({ events: 2, nowMs: 50, reason: 'max-events' });
    expect(await c.run({ stop: () => ticks >= 8 })).toEqual({ events: 3, nowMs: 80, reason: 'stopped' });
    stopTicking();
    expect(await c.run()).toEqual({ events: 0, nowMs: 80, reason: 'idle' });
    expect(await c.run({ untilMs: 200 })).toEqual({ events: 0, nowMs: 200, reason: 'idle' }); // time passes, idle
  });

  it('refuses a second run() at once and a timer that never fires', async () => {
    const c = new VirtualClock();
    c.setTimer(1, () => {});
    const first = c.run();
    await expect(c.run()).rejects.toThrow(/already running/);
    await first;
    expect(() => c.setTimer(NaN, () => {})).toThrow(RangeError);
    expect(() => c.setTimer(Infinity, () => {})).toThrow(RangeError);
  });

  /** A small program of async actors on the clock, which traces what it does. */
  async function program(seed: number): Promise<{ digest: string; events: number }> {
    const c = new VirtualClock();
    const actor = async (id: number) => {
      for (let i = 0; i < 20; i++) {
        await c.sleep(((id * 7 + i * seed) % 5) + 0.5);
        await Promise.resolve();
        c.trace(`actor ${id} step ${i}`);
      }
    };
    void Promise.all([0, 1, 2, 3].map(actor));
    await c.run();
    return { digest: c.traceDigest(), events: c.traceEvents };
  }

  it('the same program twice gives the same trace digest; a different one another', async () => {
    const a = await program(3);
    const b = await program(3);
    const d = await program(4);
    expect(a.events).toBe(80);
    expect(b).toEqual(a);
    expect(d.digest).not.toBe(a.digest);
    expect(a.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the trace covers the time of each label, and the digest can be read mid-way', () => {
    const c1 = new VirtualClock();
    const c2 = new VirtualClock(1);
    c1.trace('x');
    const mid = c1.traceDigest();
    c2.trace('x');
    expect(c2.traceDigest()).not.toBe(mid);
    c1.trace('y');
    expect(c1.traceDigest()).not.toBe(mid);
    expect(c1.traceEvents).toBe(2);
  });
});
