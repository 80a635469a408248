// Pipelined chain broadcast: root -> root+1 -> ... -> root-1. Each chunk is forwarded the moment it
// arrives, so for large buffers the time approaches one buffer's transfer, whatever the ring size.
// On exit every rank's buffer equals the root's.
import { RingswarmError } from '../protocol/errors.js';
import { chunkCount, chunkRange, mod, predecessor, successor } from './ring.js';
import type { ChunkIn, ChunkSend, Collective, CollectiveOptions, Progress } from './types.js';

export function chainBroadcast(opts: CollectiveOptions): Collective {
  return new ChainBroadcast(opts);
}

class ChainBroadcast implements Collective {
  private readonly hop: number;
  private readonly chunks: number;
  private readonly received: Uint8Array;
  private count = 0;
  private sent = 0;
  private started = false;

  constructor(private readonly o: CollectiveOptions) {
    const root = o.root ?? 0;
    if (!Number.isInteger(root) || root < 0 || root >= o.size) throw new RangeError(`root ${root} out of range 0..${o.size - 1}`);
    if (!Number.isInteger(o.chunkElems) || o.chunkElems < 1) throw new RangeError(`chunkElems must be an integer >= 1, got ${o.chunkElems}`);
    this.hop = mod(o.rank - root, o.size);
    this.chunks = chunkCount(o.buffer.length, o.chunkElems);
    this.received = new Uint8Array(this.chunks);
  }

  private get expected(): number {
    return this.hop === 0 ? 0 : this.chunks;
  }

  get done(): boolean {
    return this.started && this.count === this.expected;
  }

  private forwards(): boolean {
    return this.hop < this.o.size - 1;
  }

  start(): ChunkSend[] {
    if (this.started) throw new RingswarmError('RS_ERR_PROTOCOL', 'collective started twice');
    this.started = true;
    const out: ChunkSend[] = [];
    if (this.hop !== 0 || !this.forwards()) return out;
    const whole = { offset: 0, count: this.o.buffer.length };
    for (let j = 0; j < this.chunks; j++) {
      const r = chunkRange(whole, this.o.chunkElems, j);
      out.push(this.send(j, r.offset, this.o.buffer.subarray(r.offset, r.offset + r.count)));
    }
    return out;
  }

  private send(chunk: number, offset: number, data: ChunkSend['data'], checksum?: number): ChunkSend {
    this.sent++;
    const c: ChunkSend = { to: successor(this.o.rank, this.o.size), phase: 'broadcast', step: this.hop, chunk, offset, data };
    if (checksum !== undefined) c.checksum = checksum;
    return c;
  }

  onChunk(c: ChunkIn): ChunkSend[] {
    if (!this.started) throw new RingswarmError('RS_ERR_PROTOCOL', 'chunk received before the collective started');
    const prev = predecessor(this.o.rank, this.o.size);
    if (c.phase !== 'broadcast') throw new RingswarmError('RS_ERR_PROTOCOL', `unexpected phase ${c.phase} in a broadcast`);
    if (this.hop === 0 || c.from !== prev) throw new RingswarmError('RS_ERR_PROTOCOL', `broadcast chunk from rank ${c.from} not expected at rank ${this.o.rank}`);
    if (c.step !== this.hop - 1) throw new RingswarmError('RS_ERR_PROTOCOL', `broadcast hop ${c.step}, expected ${this.hop - 1}`);
    if (!Number.isInteger(c.chunk) || c.chunk < 0 || c.chunk >= this.chunks) {
      throw new RingswarmError('RS_ERR_PROTOCOL', `broadcast chunk ${c.chunk} out of range 0..${this.chunks - 1}`);
    }
    const r = chunkRange({ offset: 0, count: this.o.buffer.length }, this.o.chunkElems, c.chunk);
    if (c.offset !== r.offset || c.data.length !== r.count) {
      throw new RingswarmError('RS_ERR_PROTOCOL', `broadcast chunk ${c.chunk}: got offset ${c.offset} length ${c.data.length}, expected ${r.offset} length ${r.count}`);
    }
    if (this.received[c.chunk]) throw new RingswarmError('RS_ERR_PROTOCOL', `broadcast chunk ${c.chunk} received twice`);
    this.received[c.chunk] = 1;
    this.count++;
    this.o.buffer.set(c.data, r.offset);
    return this.forwards() ? [this.send(c.chunk, r.offset, c.data, c.checksum)] : [];
  }

  progress(): Progress {
    return {
      phase: this.done ? 'done' : 'broadcast',
      step: this.hop,
      chunksReceived: this.count,
      chunksExpected: this.expected,
      chunksSent: this.sent,
    };
  }
}
