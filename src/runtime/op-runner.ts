// Runs one collective op at a time over a Transport: encodes and sends what the pure collective
// emits, validates and routes incoming frames by (epoch, op sequence id), holds frames that arrive
// early for the next op, drops stale ones, and aborts an op that makes no progress (watchdog).
import { bytesOf, elementBytes, viewElements, type DType, type Elements } from '../collective/dtypes.js';
import { createCollective } from '../collective/index.js';
import type { ChunkSend, Collective, CollectiveKind, CollectiveOptions, Progress } from '../collective/types.js';
import { closeReason, isRingswarmError, RingswarmError } from '../protocol/errors.js';
import { decodeFrame, FRAME_HEADER_BYTES, payloadChecksum, sealFrame, sealHeader, type DecodedFrame } from '../protocol/frame.js';
import { FramePool } from './frame-pool.js';
import type { Transport } from './transport.js';

/** Payloads from a caller's buffer smaller than this are copied into one frame; larger go as two fragments. */
const COPY_BELOW_BYTES = 64 << 10;
/** Frames held for ops not started yet, at most. */
const MAX_EARLY_BYTES = 1 << 30;
/** A new op waits until the previous ones' frames are down to this many bytes queued. */
const MAX_PENDING_BYTES = 64 << 20;

export interface OpRunnerOptions {
  rank: number;
  epoch: number;
  dtype: DType;
  chunkElems: number;
  timeoutMs: number;
  /** CRC32C on every frame (sent and checked); off only to measure what it costs. */
  checksums: boolean;
  /** Called after each chunk is applied, with how many of that phase this op has received (fault triggers). */
  delivered?: (opSeq: number, phase: string, received: number) => void;
}

interface Active {
  opSeq: number;
  collective: Collective;
  resolve: () => void;
  reject: (e: Error) => void;
  lastProgress: number;
  timer: NodeJS.Timeout;
  /** Sends straight from the caller's buffers not yet written: the op ends only when they are. */
  unwritten: number;
  receivedByPhase: Map<string, number>;
  startedAt: number;
  /** Time spent handling frames (the rest of the op was waiting for them). */
  busyMs: number;
  bytesSent: number;
}

/** What one op cost on this rank, measured on this process's clock only (for straggler detection). */
export interface OpTimings {
  /** The whole op. */
  opMs: number;
  /** Idle in the op, waiting for frames from the predecessor. */
  waitMs: number;
  /** Time with at least one frame to a successor handed to the transport and not yet written. */
  linkMs: number;
  bytesSent: number;
}

export interface OpRunnerStats {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  staleDropped: number;
  badFrames: number;
}

export class OpRunner {
  private active: Active | null = null;
  private early: { from: number; frame: DecodedFrame; raw: Uint8Array }[] = [];
  private earlyBytes = 0;
  /** Payload views that sit right behind a frame header we own, so they can be sent without a copy. */
  private readonly headroom = new WeakMap<Elements, Uint8Array>();
  private lastOpSeq = -1;
  /** A bad frame that arrived while no op was under way. */
  private poisoned: RingswarmError | null = null;
  readonly stats: OpRunnerStats = { framesSent: 0, framesReceived: 0, bytesSent: 0, staleDropped: 0, badFrames: 0 };

  constructor(
    private readonly transport: Transport,
    private o: OpRunnerOptions,
    private readonly log: (line: string) => void = () => {},
    /** Frames to send, and (over WebSockets) the frames the transport receives into. */
    private readonly pool = new FramePool(),
  ) {}

  get epoch(): number {
    return this.o.epoch;
  }

  /** Largest payload a frame of this runner may carry. */
  get maxPayload(): number {
    return this.o.chunkElems * elementBytes(this.o.dtype);
  }

  /** A new epoch: abort the op under way and forget everything from the old one. */
  setEpoch(epoch: number, rank = this.o.rank): void {
    this.o = { ...this.o, epoch, rank };
    // Frames carry the epoch: sequence ids need only be unique within one, and a rollback re-runs them.
    this.lastOpSeq = -1;
    this.poisoned = null;
    for (const e of this.early) this.pool.release(e.raw);
    this.early = [];
    this.earlyBytes = 0;
    this.abort(new RingswarmError('RS_ERR_ABORTED', `epoch ${epoch} started`));
  }

  abort(err: Error): void {
    const a = this.active;
    if (!a) return;
    this.active = null;
    clearInterval(a.timer);
    a.reject(err);
  }

  progress(): (Progress & { opSeq: number }) | null {
    return this.active ? { opSeq: this.active.opSeq, ...this.active.collective.progress() } : null;
  }


  private alloc = (count: number): Elements => {
    const { frame, payload } = this.pool.acquire(count * elementBytes(this.o.dtype));
    const view = viewElements(this.o.dtype, payload);
    this.headroom.set(view, frame);
    return view;
  };

  /**
   * Run one op. `opSeq` must grow by one per op on every rank alike. Resolves when this rank's part
   * is complete; rejects with RS_ERR_TIMEOUT when no chunk arrives for timeoutMs, or when aborted.
   */
  async run(kind: CollectiveKind, opSeq: number, opts: Omit<CollectiveOptions, 'rank' | 'dtype' | 'chunkElems' | 'alloc'>): Promise<void> {
    if (this.transport.pendingBytes > MAX_PENDING_BYTES) await this.transport.drained(MAX_PENDING_BYTES);
    if (this.poisoned) {
      const e = this.poisoned;
      this.poisoned = null;
      throw e;
    }
    if (this.active) throw new RingswarmError('RS_ERR_INTERNAL', `op ${opSeq} started while op ${this.active.opSeq} is under way`);
    if (opSeq <= this.lastOpSeq) throw new RingswarmError('RS_ERR_INTERNAL', `op sequence went back from ${this.lastOpSeq} to ${opSeq}`);
    this.lastOpSeq = opSeq;
    const collective = createCollective(kind, {
      ...opts,
      rank: this.o.rank,
      dtype: this.o.dtype,
      chunkElems: this.o.chunkElems,
      alloc: this.alloc,
    });
    return new Promise<void>((resolve, reject) => {
      const a: Active = {
        opSeq,
        collective,
        resolve,
        reject,
        lastProgress: Date.now(),
        unwritten: 0,
        startedAt: performance.now(),
        busyMs: 0,
        bytesSent: 0,
        receivedByPhase: new Map(),
        timer: setInterval(() => this.watchdog(), Math.max(10, Math.min(250, this.o.timeoutMs / 4))),
      };
      this.active = a;
      try {
        const t = performance.now();
        this.sendAll(a, collective.start());
        a.busyMs += performance.now() - t;
        const held = this.early.filter((e) => e.frame.header.opSeq === opSeq);
        if (held.length) {
          this.early = this.early.filter((e) => e.frame.header.opSeq > opSeq);
          this.earlyBytes = this.early.reduce((n, e) => n + e.raw.byteLength, 0);
        }
        for (const e of held) this.deliver(a, e.from, e.frame, e.raw);
        this.finishIfDone(a);
      } catch (e) {
        this.fail(a, e);
      }
    });
  }

  private watchdog(): void {
    const a = this.active;
    if (!a) return;
    const idle = Date.now() - a.lastProgress;
    if (idle >= this.o.timeoutMs) {
      const p = a.collective.progress();
      this.fail(
        a,
        new RingswarmError(
          'RS_ERR_TIMEOUT',
          `op ${a.opSeq} made no progress for ${idle} ms (rank ${this.o.rank}, ${p.phase} step ${p.step}, ${p.chunksReceived}/${p.chunksExpected} chunks)`,
        ),
      );
    }
  }

  private fail(a: Active, e: unknown): void {
    if (this.active !== a) return;
    this.active = null;
    clearInterval(a.timer);
    a.reject(e instanceof Error ? e : new Error(String(e)));
  }

  private finishIfDone(a: Active): void {
    if (this.active === a && a.collective.done && a.unwritten === 0) {
      this.active = null;
      clearInterval(a.timer);
      const t = performance.now();
      const opMs = t - a.startedAt;
      // Frames still unwritten at the end of the op (a slow link holds them) count up to now.
      const linkMs = this.linkMs + (this.linkInFlight > 0 ? t - this.linkSince : 0);
      this.linkMs = 0;
      if (this.linkInFlight > 0) this.linkSince = t;
      this.last = { opMs, waitMs: Math.max(0, opMs - a.busyMs), linkMs, bytesSent: a.bytesSent };
      a.resolve();
    }
  }

  /** Entry point for every frame the transport receives. Never throws. */
  onFrame(from: number, raw: Uint8Array): void {
    let frame: DecodedFrame;
    try {
      // Structure first, then the epoch (a stale frame is dropped whatever its payload), then the checksum.
      frame = decodeFrame(raw, { maxPayload: this.o.chunkElems * elementBytes(this.o.dtype), verifyChecksum: false });
      if (frame.header.epoch !== this.o.epoch) {
        this.stats.staleDropped++;
        this.pool.release(raw);
        return;
      }
      if (this.o.checksums) {
        const actual = payloadChecksum(frame.payload);
        if (actual !== frame.header.checksum) {
          throw new RingswarmError('RS_ERR_CHECKSUM', `frame checksum ${frame.header.checksum.toString(16)} does not match payload CRC32C ${actual.toString(16)} (${frame.payload.byteLength} bytes)`);
        }
      }
    } catch (e) {
      // A bad frame is never applied: the link it came on is closed with the error's close code,
      // and the op under way fails with the error (a corrupt frame is a fault to recover from).
      this.stats.badFrames++;
      this.pool.release(raw);
      const err = isRingswarmError(e) ? e : new RingswarmError('RS_ERR_BAD_FRAME', String(e));
      this.log(`bad frame from rank ${from}: ${err.code}: ${err.message}`);
      const failure = new RingswarmError(err.code, `from rank ${from}: ${err.message}`);
      // Between ops (a frame held early), the next op fails with it instead.
      if (this.active) this.fail(this.active, failure);
      else this.poisoned = failure;
      this.transport.dropLink(from, err.closeCode, closeReason(err));
      return;
    }
    this.stats.framesReceived++;
    const h = frame.header;
    const a = this.active;
    if (a && h.opSeq === a.opSeq) {
      try {
        const t = performance.now();
        this.deliver(a, from, frame, raw);
        a.busyMs += performance.now() - t;
        this.finishIfDone(a);
      } catch (e) {
        this.fail(a, e);
      }
      return;
    }
    if (h.opSeq > this.lastOpSeq) {
      // A peer that needs nothing from us (a broadcast root) may run ops ahead: hold its frames,
      // within a bound, until we get there. Links are FIFO, so they arrive in the order we use them.
      if (this.earlyBytes + raw.byteLength > MAX_EARLY_BYTES) {
        this.stats.badFrames++;
        this.log(`frame for op ${h.opSeq} from rank ${from} while at op ${this.lastOpSeq}: over ${MAX_EARLY_BYTES} bytes held, dropped`);
        this.pool.release(raw);
        return;
      }
      this.early.push({ from, frame, raw });
      this.earlyBytes += raw.byteLength;
      return;
    }
    this.stats.staleDropped++;
    this.pool.release(raw);
  }

  private deliver(a: Active, from: number, frame: DecodedFrame, raw: Uint8Array): void {
    const h = frame.header;
    const data = viewElements(this.o.dtype, frame.payload);
    const inPlace = data.buffer === raw.buffer && data.byteOffset === raw.byteOffset + FRAME_HEADER_BYTES;
    if (inPlace) this.headroom.set(data, raw);
    a.lastProgress = Date.now();
    const out = a.collective.onChunk({ from, phase: h.phase, step: h.step, chunk: h.chunk, offset: h.offset, data, checksum: h.checksum });
    this.sendAll(a, out);
    // A frame forwarded as it is goes back to the pool once written (in sendAll); any other now.
    if (!(inPlace && out.some((c) => c.data === data))) this.pool.release(raw);
    if (this.o.delivered) {
      const n = (a.receivedByPhase.get(h.phase) ?? 0) + 1;
      a.receivedByPhase.set(h.phase, n);
      this.o.delivered(a.opSeq, h.phase, n);
    }
  }

  /** Timings of the last op that completed. */
  last: OpTimings | null = null;
  private linkMs = 0;
  private linkInFlight = 0;
  private linkSince = 0;

  /** Count a frame into the link-busy time (the union of intervals with frames not yet written). */
  private linkSent(): () => void {
    if (this.linkInFlight++ === 0) this.linkSince = performance.now();
    return () => {
      if (--this.linkInFlight === 0) this.linkMs += performance.now() - this.linkSince;
    };
  }

  private corrupting = 0;

  /** Fault injection: flip a payload byte in each of the next `frames` frames sent (after the checksum). */
  corruptNext(frames: number): void {
    this.corrupting += frames;
  }

  private corrupt(frame: Uint8Array): void {
    this.corrupting--;
    const at = frame.byteLength > FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + ((frame.byteLength - FRAME_HEADER_BYTES) >> 1) : 28;
    frame[at] ^= 0x5a;
  }

  private sendAll(a: Active, out: ChunkSend[]): void {
    for (const c of out) {
      const checksum = this.o.checksums ? c.checksum : 0;
      const fields = { phase: c.phase, epoch: this.o.epoch, opSeq: a.opSeq, step: c.step, chunk: c.chunk, offset: c.offset, src: this.o.rank, checksum };
      this.stats.framesSent++;
      let frame = this.headroom.get(c.data);
      if (!frame && (c.data.byteLength < COPY_BELOW_BYTES || this.corrupting > 0)) {
        // Small: one copy costs less than the second write a separate payload fragment takes.
        const f = this.pool.acquire(c.data.byteLength);
        f.payload.set(bytesOf(c.data));
        frame = f.frame;
      }
      if (frame) {
        // Staged or received: a frame of our own, back to the pool once written.
        sealFrame(frame, fields);
        if (this.corrupting > 0) this.corrupt(frame);
        this.stats.bytesSent += frame.byteLength;
        a.bytesSent += frame.byteLength;
        const owned = frame;
        const pooled = this.pool.owns(frame);
        const done = this.linkSent();
        this.transport.send(c.to, frame, (ok) => {
          done();
          if (ok && pooled) this.pool.release(owned);
        });
        continue;
      }
      // A view of the caller's buffer: header and payload go as two fragments, and the op is not
      // over until the payload is written (socket writes do not copy; the caller may reuse it).
      const payload = bytesOf(c.data);
      const header = sealHeader(fields, payload);
      this.stats.bytesSent += header.byteLength + payload.byteLength;
      a.bytesSent += header.byteLength + payload.byteLength;
      a.unwritten++;
      const done = this.linkSent();
      this.transport.send(c.to, [header, payload], () => {
        done();
        a.unwritten--;
        a.lastProgress = Date.now();
        this.finishIfDone(a);
      });
    }
  }
}
