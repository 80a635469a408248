import { describe, expect, it } from 'vitest';
import { simChannelPair } from '../../src/runtime/sim-channel.js';
import { VirtualClock } from '../../src/runtime/virtual-clock.js';

type Msg = { n: number };

function pair(latencyMs = 2) {
  const clock = new VirtualClock();
  const [a, b] = simChannelPair<Msg, Msg>(clock, latencyMs);
  const log: string[] = [];
  const handlers = (side: string) => ({
    onMessage: (m: Msg) => log.push(`${side} got ${m.n} @${clock.now()}`),
    onClose: (code: number, reason: string) => log.push(`${side} closed ${code} ${reason} @${clock.now()}`),
  });
  return { clock, a, b, log, handlers };
}

describe('simChannelPair', () => {
  it('delivers messages as the same objects, in order, latencyMs later', async () => {
    const { clock, a, b, log, handlers } = pair(2);
    const seen: Msg[] = [];
    a.setHandlers(handlers('a'));
    b.setHandlers({ ...handlers('b'), onMessage: (m) => (seen.push(m), log.push(`b got ${m.n} @${clock.now()}`)) });
    const m1 = { n: 1 };
    a.send(m1);
    a.send({ n: 2 });
    clock.setTimer(1, () => b.send({ n: 3 }));
    await clock.run();
    expect(log).toEqual(['b got 1 @2', 'b got 2 @2', 'a got 3 @3']);
    expect(seen[0]).toBe(m1);
  });

  it('queues what arrives before setHandlers and hands it over then', async () => {
    const { clock, a, b, log, handlers } = pair();
    a.setHandlers(handlers('a'));
    a.send({ n: 1 });
    a.send({ n: 2 });
    await clock.run();
    expect(log).toEqual([]);
    b.setHandlers(handlers('b'));
    expect(log).toEqual(['b got 1 @2', 'b got 2 @2']);
  });

  it('close reaches both ends once, after the messages sent before it; later sends go nowhere', async () => {
    const { clock, a, b, log, handlers } = pair();
    a.setHandlers(handlers('a'));
    b.setHandlers(handlers('b'));
    b.send({ n: 1 });
    a.send({ n: 2 });
    a.close(1000, 'done');
    a.close(4000, 'again');
    b.close(4001, 'too');
    a.send({ n: 3 });
    b.send({ n: 4 });
    expect(a.open).toBe(false);
    expect(b.open).toBe(false);
    await clock.run();
    expect(log).toEqual(['a got 1 @2', 'b got 2 @2', 'a closed 1000 done @2', 'b closed 1000 done @2']);
  });

  it('a close before setHandlers is handed over with the messages', async () => {
    const { clock, a, b, log, handlers } = pair();
    a.setHandlers(handlers('a'));
    a.send({ n: 1 });
    a.close(4006, 'RS_ERR_TIMEOUT: hung');
    await clock.run();
    b.setHandlers(handlers('b'));
    expect(log).toEqual(['a closed 4006 RS_ERR_TIMEOUT: hung @2', 'b got 1 @2', 'b closed 4006 RS_ERR_TIMEOUT: hung @2']);
  });

  it('pause holds what arrives (a close too); resume delivers it in order, before what comes after', async () => {
    const { clock, a, b, log, handlers } = pair(1);
    a.setHandlers(handlers('a'));
    b.setHandlers(handlers('b'));
    b.pause();
    a.send({ n: 1 });
    a.send({ n: 2 });
    await clock.run({ untilMs: 10 });
    expect(log).toEqual([]);
    b.resume();
    a.send({ n: 3 });
    a.close(1000, 'bye');
    await clock.run();
    expect(log).toEqual(['b got 1 @10', 'b got 2 @10', 'b got 3 @11', 'a closed 1000 bye @11', 'b closed 1000 bye @11']);
    // The paused end held the close, the other heard it at once.
    const { clock: c2, a: a2, b: b2, log: log2, handlers: h2 } = pair(1);
    a2.setHandlers(h2('a'));
    b2.setHandlers(h2('b'));
    b2.pause();
    a2.close(1000, 'bye');
    await c2.run({ untilMs: 5 });
    expect(log2).toEqual(['a closed 1000 bye @1']);
    b2.resume();
    await c2.run();
    expect(log2).toEqual(['a closed 1000 bye @1', 'b closed 1000 bye @5']);
  });
});
