// Drives one collective per rank to completion over links that deliver in a random order (FIFO per
// link), and checks an all-reduce against the closed form: the harness of the algorithms' tests.
import { expect } from 'vitest';
import { allocElements, bytesOf, type DType, type Elements, type ReduceOp } from '../../src/collective/dtypes.js';
import { createCollective } from '../../src/collective/index.js';
import { fillExpected, fillGradient, type InputSpec } from '../../src/collective/inputs.js';
import { seededRandom } from '../../src/collective/random.js';
import type { AllreduceAlgo, ChunkSend, Collective } from '../../src/collective/types.js';

interface InFlight {
  from: number;
  send: ChunkSend;
  wire: Elements;
}

/** Deliver until nothing is in flight, picking a random non-empty link each time (FIFO per link). */
export function drain(cs: Collective[], seed: number): { delivered: number; sent: number; peersUsed: Set<string> } {
  const size = cs.length;
  const links = new Map<number, InFlight[]>();
  /** Links with something in flight. */
  const busy: number[] = [];
  const peersUsed = new Set<string>();
  let sent = 0;
  const post = (from: number, out: ChunkSend[]) => {
    for (const send of out) {
      sent++;
      peersUsed.add(`${from}>${send.to}`);
      const k = from * size + send.to;
      const q = links.get(k) ?? links.set(k, []).get(k)!;
      if (q.length === 0) busy.push(k);
      q.push({ from, send, wire: send.data.slice() });
    }
  };
  cs.forEach((c, r) => post(r, c.start()));
  const rnd = seededRandom(seed);
  let delivered = 0;
  for (;;) {
    if (!busy.length) break;
    const at = Math.floor(rnd() * busy.length);
    const q = links.get(busy[at])!;
    const f = q.shift()!;
    if (q.length === 0) busy[at] = busy[busy.length - 1], busy.pop();
    // What was handed out is what arrives: the sender did not change it in flight.
    // (Plain checks: expect() per delivery is most of the time here.)
    if (Buffer.compare(bytesOf(f.send.data), bytesOf(f.wire)) !== 0) throw new Error(`rank ${f.from} changed a chunk in flight`);
    const to = f.send.to;
    if (cs[to].done) throw new Error(`rank ${to} got a chunk after it was done`);
    post(to, cs[to].onChunk({ from: f.from, phase: f.send.phase, step: f.send.step, chunk: f.send.chunk, offset: f.send.offset, data: f.wire }));
    delivered++;
  }
  return { delivered, sent, peersUsed };
}

/** One all-reduce of `algo` on `size` ranks against the closed form; only the links `peers` names may carry chunks. */
export function runCase(algo: AllreduceAlgo, peers: (rank: number, size: number) => number[], size: number, count: number, chunkElems: number, dtype: DType, op: ReduceOp, inPlace: boolean, seed: number): void {
  const spec: InputSpec = { dtype, op, seed, step: 1, totalCards: size };
  const inputs = Array.from({ length: size }, (_, r) => {
    const g = allocElements(dtype, count);
    fillGradient(g, spec, r);
    return g;
  });
  const expected = allocElements(dtype, count);
  fillExpected(expected, spec);
  const buffers = inputs.map((x) => (inPlace ? x.slice() : allocElements(dtype, count).fill(7)));
  const cs = buffers.map((buffer, rank) =>
    createCollective('allreduce', { rank, size, dtype, op, buffer, chunkElems, algo, ...(inPlace ? {} : { input: inputs[rank].slice() }) }),
  );
  const { delivered, sent, peersUsed } = drain(cs, seed);
  const what = `${algo}: size ${size} count ${count} chunk ${chunkElems} ${dtype} ${op} ${inPlace ? 'in' : 'out of'} place`;
  expect(delivered, what).toBe(sent);
  cs.forEach((c, r) => {
    expect(c.done, `${what}: rank ${r} done`).toBe(true);
    const p = c.progress();
    expect(p.phase).toBe('done');
    expect(p.chunksReceived).toBe(p.chunksExpected);
    expect(Buffer.compare(bytesOf(buffers[r]), bytesOf(expected)), `${what}: rank ${r}`).toBe(0);
  });
  // Only the links the plan names are used (the transport opens just those).
  for (const l of peersUsed) {
    const [a, b] = l.split('>').map(Number);
    expect(peers(a, size), `${what}: ${l}`).toContain(b);
  }
}
