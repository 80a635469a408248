// The ring schedule shared by reduce-scatter, all-gather and all-reduce (= the two in sequence).
//
// With n ranks and n segments, at reduce-scatter step s rank r sends segment (r-s-1) and receives
// segment (r-s-2), reduces it with its own data and sends the result on at step s+1; after n-1
// steps rank r holds segment r fully reduced. At all-gather step s rank r sends segment (r-s) and
// receives segment (r-s-1), stores it and forwards it at step s+1. Every segment is cut into chunks
// and each chunk moves on as soon as it arrives, so the steps overlap (pipelining) and a rank never
// holds more than one segment's worth of chunks in flight per link.
import { RingswarmError } from '../protocol/errors.js';
import { allocElements, divideInPlace, reduceInto, type Elements } from './dtypes.js';
import { chunkCount, chunkRange, mod, predecessor, segmentRange, successor, type Range } from './ring.js';
import type { ChunkIn, ChunkSend, Collective, CollectiveOptions, Phase, Progress } from './types.js';

type RingPhase = Extract<Phase, 'reduce-scatter' | 'all-gather'>;

interface PhaseState {
  phase: RingPhase;
  /** received[stepStart[s] + chunk] is 1 once that chunk of step s has arrived. */
  received: Uint8Array;
  stepStart: number[];
  stepChunks: number[];
  stepReceived: number[];
  expected: number;
  count: number;
}

export class RingPipeline implements Collective {
  private readonly o: Required<Omit<CollectiveOptions, 'root' | 'input' | 'algo'>>;
  private readonly next: number;
  private readonly prev: number;
  private readonly phases: PhaseState[];
  private readonly segments: Range[];
  private sent = 0;
  private started = false;
  /** Where this rank's contribution is read from: `input` for out-of-place, else the buffer itself. */
  private readonly input: Elements;

  constructor(opts: CollectiveOptions, phases: readonly RingPhase[]) {
    const { rank, size, buffer, chunkElems } = opts;
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be an integer >= 1, got ${size}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw new RangeError(`rank ${rank} out of range 0..${size - 1}`);
    if (!Number.isInteger(chunkElems) || chunkElems < 1) throw new RangeError(`chunkElems must be an integer >= 1, got ${chunkElems}`);
    const dtype = opts.dtype;
    this.o = {
      ...opts,
      divisor: opts.divisor ?? size,
      alloc: opts.alloc ?? ((count: number) => allocElements(dtype, count)),
    };
    this.input = opts.input ?? buffer;
    if (this.input.length !== buffer.length) throw new RangeError(`input has ${this.input.length} elements, buffer ${buffer.length}`);
    this.next = successor(rank, size);
    this.prev = predecessor(rank, size);
    this.segments = Array.from({ length: size }, (_, k) => segmentRange(buffer.length, size, k));
    this.phases = phases.map((phase) => this.phaseState(phase));
  }

  /** Segment that rank r receives at `step` of `phase`. */
  private recvSegment(phase: RingPhase, step: number): Range {
    const { rank, size } = this.o;
    return this.segments[mod(phase === 'reduce-scatter' ? rank - step - 2 : rank - step - 1, size)];
  }

  private sendSegment(phase: RingPhase, step: number): Range {
    const { rank, size } = this.o;
    return this.segments[mod(phase === 'reduce-scatter' ? rank - step - 1 : rank - step, size)];
  }

  private phaseState(phase: RingPhase): PhaseState {
    const steps = this.o.size - 1;
    const stepStart: number[] = [];
    const stepChunks: number[] = [];
    let total = 0;
    for (let s = 0; s < steps; s++) {
      stepStart.push(total);
      const c = chunkCount(this.recvSegment(phase, s).count, this.o.chunkElems);
      stepChunks.push(c);
      total += c;
    }
    return {
      phase,
      received: new Uint8Array(total),
      stepStart,
      stepChunks,
      stepReceived: new Array(steps).fill(0),
      expected: total,
      count: 0,
    };
  }

  get done(): boolean {
    return this.started && this.phases.every((p) => p.count === p.expected);
  }

  start(): ChunkSend[] {
    if (this.started) throw new RingswarmError('RS_ERR_PROTOCOL', 'collective started twice');
    this.started = true;
    const out: ChunkSend[] = [];
    const first = this.phases[0];
    if (!first) return out;
    if (this.o.size === 1) {
      if (first.phase === 'reduce-scatter') this.finishSegment(this.segments[0], out);
      return out;
    }
    this.sendWholeSegment(first.phase, 0, this.sendSegment(first.phase, 0), out);
    return out;
  }

  private sendWholeSegment(phase: RingPhase, step: number, seg: Range, out: ChunkSend[]): void {
    const n = chunkCount(seg.count, this.o.chunkElems);
    // Reduce-scatter starts from the input; all-gather sends what is in the output.
    const from = phase === 'reduce-scatter' ? this.input : this.o.buffer;
    for (let j = 0; j < n; j++) {
      const r = chunkRange(seg, this.o.chunkElems, j);
      this.emit(out, phase, step, j, r.offset, from.subarray(r.offset, r.offset + r.count));
    }
  }

  private emit(out: ChunkSend[], phase: Phase, step: number, chunk: number, offset: number, data: Elements, checksum?: number): void {
    this.sent++;
    const c: ChunkSend = { to: this.next, phase, step, chunk, offset, data };
    if (checksum !== undefined) c.checksum = checksum;
    out.push(c);
  }

  /** Segment r is fully reduced (all of it, or the chunk `chunk`): finish avg and start the all-gather of it. */
  private finishSegment(range: Range, out: ChunkSend[], chunk = -1): void {
    const buf = this.o.buffer;
    const view = buf.subarray(range.offset, range.offset + range.count);
    if (this.input !== buf && this.o.size === 1) view.set(this.input.subarray(range.offset, range.offset + range.count));
    if (this.o.op === 'avg') divideInPlace(view, this.o.divisor);
    const ag = this.phases.find((p) => p.phase === 'all-gather');
    if (!ag || this.o.size === 1) return;
    if (chunk < 0) this.sendWholeSegment('all-gather', 0, range, out);
    else this.emit(out, 'all-gather', 0, chunk, range.offset, view);
  }

  onChunk(c: ChunkIn): ChunkSend[] {
    if (!this.started) throw new RingswarmError('RS_ERR_PROTOCOL', 'chunk received before the collective started');
    const p = this.phases.find((s) => s.phase === c.phase);
    if (!p) throw new RingswarmError('RS_ERR_PROTOCOL', `unexpected phase ${c.phase} for this collective`);
    if (c.from !== this.prev) throw new RingswarmError('RS_ERR_PROTOCOL', `chunk from rank ${c.from}, expected predecessor ${this.prev}`);
    const steps = this.o.size - 1;
    if (!Number.isInteger(c.step) || c.step < 0 || c.step >= steps) {
      throw new RingswarmError('RS_ERR_PROTOCOL', `${c.phase} step ${c.step} out of range 0..${steps - 1}`);
    }
    if (!Number.isInteger(c.chunk) || c.chunk < 0 || c.chunk >= p.stepChunks[c.step]) {
      throw new RingswarmError('RS_ERR_PROTOCOL', `${c.phase} step ${c.step}: chunk ${c.chunk} out of range 0..${p.stepChunks[c.step] - 1}`);
    }
    const seg = this.recvSegment(p.phase, c.step);
    const r = chunkRange(seg, this.o.chunkElems, c.chunk);
    if (c.offset !== r.offset || c.data.length !== r.count) {
      throw new RingswarmError(
        'RS_ERR_PROTOCOL',
        `${c.phase} step ${c.step} chunk ${c.chunk}: got offset ${c.offset} length ${c.data.length}, expected offset ${r.offset} length ${r.count}`,
      );
    }
    const slot = p.stepStart[c.step] + c.chunk;
    if (p.received[slot]) throw new RingswarmError('RS_ERR_PROTOCOL', `${c.phase} step ${c.step} chunk ${c.chunk} received twice`);
    p.received[slot] = 1;
    p.stepReceived[c.step]++;
    p.count++;

    const out: ChunkSend[] = [];
    const mine = this.o.buffer.subarray(r.offset, r.offset + r.count);
    const last = c.step === steps - 1;
    if (p.phase === 'reduce-scatter') {
      const own = this.input === this.o.buffer ? mine : this.input.subarray(r.offset, r.offset + r.count);
      if (!last) {
        const staged = this.o.alloc(r.count);
        reduceInto(this.o.op, staged, c.data, own);
        this.emit(out, 'reduce-scatter', c.step + 1, c.chunk, r.offset, staged);
      } else {
        reduceInto(this.o.op, mine, c.data, own);
        this.finishSegment(r, out, c.chunk);
      }
    } else {
      mine.set(c.data);
      if (!last) this.emit(out, 'all-gather', c.step + 1, c.chunk, r.offset, c.data, c.checksum);
    }
    return out;
  }

  progress(): Progress {
    const current = this.phases.find((p) => p.count < p.expected);
    if (!this.started || !current) {
      const all = this.phases.reduce((a, p) => a + p.expected, 0);
      return { phase: this.started ? 'done' : (this.phases[0]?.phase ?? 'done'), step: 0, chunksReceived: this.started ? all : 0, chunksExpected: all, chunksSent: this.sent };
    }
    let step = 0;
    while (step < current.stepChunks.length && current.stepReceived[step] === current.stepChunks[step]) step++;
    return {
      phase: current.phase,
      step,
      chunksReceived: this.phases.reduce((a, p) => a + p.count, 0),
      chunksExpected: this.phases.reduce((a, p) => a + p.expected, 0),
      chunksSent: this.sent,
    };
  }
}
