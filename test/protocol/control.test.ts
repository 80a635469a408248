// The control messages' optional fields for per-link timings and op progress: new ones validated,
// old ones (without them) still parse.
import { describe, expect, it } from 'vitest';
import { MAX_LINKS_PER_STEP, parseMessage, WorkerMessage } from '../../src/protocol/control.js';

const timings = { computeMs: 1, allreduceMs: 2, stepMs: 3, waitMs: 0.5, linkMs: 0.25, bytesSent: 100 };
const step = (t: object) => JSON.stringify({ type: 'step', epoch: 1, step: 4, wrong: 0, timings: t, rssMB: 50, pssMB: null });
const progress = { opSeq: 3, phase: 'reduce-scatter', step: 0, chunksReceived: 1, chunksExpected: 8, chunksSent: 2 };
const heartbeat = (p: object | null) => JSON.stringify({ type: 'heartbeat', epoch: 1, rssMB: 50, progress: p });

describe('step timings: links', () => {
  it('parses a step with per-peer links, and one without (older workers)', () => {
    const links = [
      { peer: 1, bytes: 4096, busyMs: 1.5 },
      { peer: 2, bytes: 4096, busyMs: 0 },
    ];
    const m = parseMessage(WorkerMessage, step({ ...timings, links }));
    expect(m.type === 'step' && m.timings.links).toEqual(links);
    const old = parseMessage(WorkerMessage, step(timings));
    expect(old.type === 'step' && old.timings.links).toBeUndefined();
  });

  it.each([
    [[{ peer: -1, bytes: 1, busyMs: 1 }], /timings\.links\.0\.peer/],
    [[{ peer: 1, bytes: 1.5, busyMs: 1 }], /timings\.links\.0\.bytes/],
    [[{ peer: 1, bytes: 1, busyMs: -2 }], /timings\.links\.0\.busyMs/],
    [[{ peer: 1, bytes: 1 }], /timings\.links\.0\.busyMs/],
    [{ peer: 1, bytes: 1, busyMs: 1 }, /timings\.links/],
  ])('rejects bad links %j, naming the field', (links, why) => {
    expect(() => parseMessage(WorkerMessage, step({ ...timings, links }))).toThrow(why);
  });

  it('bounds how many links one step may carry', () => {
    const links = Array.from({ length: MAX_LINKS_PER_STEP + 1 }, (_, peer) => ({ peer, bytes: 1, busyMs: 1 }));
    expect(() => parseMessage(WorkerMessage, step({ ...timings, links }))).toThrow(/timings\.links/);
    expect(() => parseMessage(WorkerMessage, step({ ...timings, links: links.slice(1) }))).not.toThrow();
  });
});

describe('heartbeat progress: moved', () => {
  it('parses moved when present, and progress without it', () => {
    const m = parseMessage(WorkerMessage, heartbeat({ ...progress, moved: 17 }));
    expect(m.type === 'heartbeat' && m.progress?.moved).toBe(17);
    const old = parseMessage(WorkerMessage, heartbeat(progress));
    expect(old.type === 'heartbeat' && old.progress).toEqual(progress);
    expect(parseMessage(WorkerMessage, heartbeat(null))).toMatchObject({ progress: null });
  });

  it.each([-1, 1.5, '3'])('rejects moved %j', (moved) => {
    expect(() => parseMessage(WorkerMessage, heartbeat({ ...progress, moved }))).toThrow(/progress\.moved/);
  });
});
