// A worker's logic: join the job, take a rank per epoch, ring up with its neighbours, restore its
// cards from a checkpoint when told, run the training loop or the bench, keep checkpoints (its own
// and a copy of its predecessor's), carry out the faults a scenario arms it with, report. All I/O
// comes in through the control channel, the transport and the environment.
import { elementBytes, viewElements, type Elements } from '../collective/dtypes.js';
import { unitHash } from '../collective/random.js';
import type { AllreduceAlgo } from '../collective/types.js';
import type { BenchSpec, CoordinatorMessage, FaultOrder, JobSpec, StragglerOrder, WorkerMessage } from '../protocol/control.js';
import { MAX_BENCH_ITERS, PROTOCOL_VERSION } from '../protocol/control.js';
import { workerExitForClose } from '../protocol/exit-codes.js';
import type { LauncherKind } from '../protocol/names.js';
import { isRingswarmError, RingswarmError } from '../protocol/errors.js';
import { allocFrame, decodeFrame, FRAME_HEADER_BYTES, sealFrame, sealHeader, type DecodedFrame } from '../protocol/frame.js';
import { crc32c } from '../native/kernels.js';
import type { Channel } from '../runtime/channel.js';
import { every, type Clock } from '../runtime/clock.js';
import type { CpuTimes } from '../runtime/cpu-wait.js';
import { pssEveryMs, readAtMostEvery } from '../runtime/memory.js';
import { OpRunner } from '../runtime/op-runner.js';
import type { Transport } from '../runtime/transport.js';
import { arenaAlloc, workerArena } from './arena.js';
import { runBenchSize } from './bench.js';
import { CardGroup } from './cards.js';
import { checkpointPieces, CheckpointStore, SharedCheckpointStore } from './checkpoints.js';
import type { SharedSlots } from '../runtime/shared-slots.js';
import { CpuWaitMeter } from './cpu-wait-meter.js';
import { SpanLog } from './spans.js';
import { formatBytes } from '../protocol/units.js';

export interface WorkerIdentity {
  workerId: string;
  pid: number;
  token: string;
  spawned: boolean;
  /** The host it runs on. */
  host?: string;
  /** A worker a launcher started: who gave it its rank. */
  launcher?: { kind: LauncherKind; rank: number | null };
  worldSize?: number | null;
}

/** What a worker needs from its process: clocks, memory, and the means to strike itself. */
export interface WorkerEnv {
  /** Time, timers and sleeps: the process's real clock, or the simulator's virtual one. */
  clock: Clock;
  /** Whether card buffers and frames live in a WebAssembly arena (SIMD reductions); the simulator's thousands of tiny workers go without. */
  arena?: boolean;
  rssMB(): number;
  /** Proportional set size, or null where the system does not say. */
  pssMB(): number | null;
  /** Time this process has waited for a CPU so far, in ms (monotonic); absent where unknown. */
  cpuWaitMs?(): number;
  /** Time this process's thread has run on a CPU and waited for one so far (for the link clocks); absent where unknown. */
  cpuTimes?(): CpuTimes;
  log(line: string): void;
  /**
   * Fault injection on this process: 'SIGKILL' or 'SIGSTOP' itself, exit with a code, or (a worker
   * the coordinator did not spawn, so that no one else can stop and resume it) freeze itself for
   * `ms` (null: until `killAfterMs`, when it is killed, as a frozen process is by its recovery).
   */
  strike(how: { signal: 'SIGKILL' | 'SIGSTOP' } | { exit: number } | { freeze: number | null; killAfterMs: number }): void;
  /** Optional disk tier for checkpoints. */
  disk?: CheckpointDisk;
  /** The shared checkpoint slots in folder `dir` (a job's checkpointShm); absent: copies always travel as frames. */
  sharedSlots?(dir: string): SharedSlots;
}

export interface CheckpointDisk {
  write(dir: string, firstCard: number, step: number, states: readonly Uint8Array[]): Promise<void>;
  read(dir: string, firstCard: number, step: number): Promise<Uint8Array[]>;
}

/** Data-plane features of the WebSocket transport that the in-memory one lacks. */
interface TransportExtras {
  fetchHandler?: ((owner: number, step: number) => Uint8Array[] | null) | null;
  fetchCheckpoint?(url: string, epoch: number, owner: number, step: number, timeoutMs: number): Promise<Uint8Array[]>;
  shapeLink?(to: number, shape: { cut?: boolean; delayMs?: number; bandwidth?: number }, ms: number | null): void;
  /** The emulated fabric on every link (latency, bandwidth), under any per-link shape. */
  setLinkModel?(model: { latencyMs: number; bandwidth: number }): void;
}

interface Assignment {
  epoch: number;
  rank: number;
  size: number;
  firstCard: number;
  next: number;
  algo: AllreduceAlgo;
  job: JobSpec;
  runner: OpRunner;
  faults: FaultOrder[];
  lostCards: number[];
  stragglers: StragglerOrder[];
}

export class Worker {
  private a: Assignment | null = null;
  private cards: CardGroup | null = null;
  private store: CheckpointStore | SharedCheckpointStore | null = null;
  /** A slot named by the predecessor that this host could not read: said once. */
  private unreadableSlotSaid = false;
  private stopHeartbeat: (() => void) | null = null;
  private rssMBMax = 0;
  private stopped = false;
  private resolveExit!: (code: number) => void;
  /** Resolves with the exit code once the worker is done (shutdown, or its coordinator is gone). */
  readonly exited = new Promise<number>((r) => (this.resolveExit = r));
  private readonly fired = new Set<number>();
  /** The newest epoch an abort announced: an assignment older than it runs nothing more. */
  private abortedEpoch = -1;
  private benchOpSeq = 0;
  /** --trace: the spans not yet reported (null without --trace: nothing is timed or sent). */
  private spans: SpanLog | null = null;

  constructor(
    private readonly control: Channel<CoordinatorMessage, WorkerMessage>,
    private readonly transport: Transport & TransportExtras,
    private readonly id: WorkerIdentity,
    private readonly env: WorkerEnv,
  ) {
    control.setHandlers({
      onMessage: (m) => this.onMessage(m),
      onClose: (code, reason) => this.stop(workerExitForClose(code), `control connection closed (${code} ${reason})`),
    });
    transport.setEvents({
      onFrame: (from, frame) => this.onFrame(from, frame),
      onLinkLost: (_peer, reason) => this.a?.runner.abort(new RingswarmError('RS_ERR_PEER_LOST', reason)),
    });
    transport.fetchHandler = (owner, step) => this.serveCheckpoint(owner, step);
    control.send({
      type: 'hello',
      version: PROTOCOL_VERSION,
      token: id.token,
      workerId: id.workerId,
      pid: id.pid,
      dataUrl: transport.dataUrl,
      spawned: id.spawned,
      clock: env.clock.now(),
      ...(id.host !== undefined ? { host: id.host } : {}),
      ...(id.launcher ? { launcher: id.launcher, worldSize: id.worldSize ?? null } : {}),
    });
  }

  /**
   * Resident memory, less the checkpoint slots this worker maps beyond the one its live states are
   * in: those are its checkpoints, in shared memory whether mapped or not, and the report counts
   * them beside (checkpointSlotsMB).
   */
  private sampleRss(): number {
    const rss = this.env.rssMB() - this.mappedCheckpointMB();
    if (rss > this.rssMBMax) this.rssMBMax = rss;
    return rss;
  }

  private mappedCheckpointMB(): number {
    return this.store instanceof SharedCheckpointStore ? this.store.mappedCheckpointBytes / 2 ** 20 : 0;
  }

  /** The Pss reader for a ring of `pssFor.size` (a read walks the whole address space: see pssEveryMs). */
  private pssFor: { size: number; read: () => number | null } | null = null;

  private samplePss(): number | null {
    const size = this.a?.size ?? 1;
    if (this.pssFor?.size !== size) this.pssFor = { size, read: readAtMostEvery(() => this.env.pssMB(), pssEveryMs(size), () => this.env.clock.now()) };
    const pss = this.pssFor.read();
    return pss === null ? null : pss - this.mappedCheckpointMB();
  }

  stop(code: number, why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    if (code !== 0) this.env.log(`worker ${this.id.workerId} stopping: ${why}`);
    this.stopHeartbeat?.();
    this.a?.runner.abort(new RingswarmError('RS_ERR_ABORTED', why));
    this.transport.close();
    this.control.close(1000, 'bye');
    this.resolveExit(code);
  }

  private onMessage(m: CoordinatorMessage): void {
    switch (m.type) {
      case 'assign':
        void this.assign(m).catch((e) => this.failed(m.epoch, e));
        return;
      case 'start':
        void this.train(m.epoch, m.fromStep).catch((e) => this.failed(m.epoch, e));
        return;
      case 'bench':
        void this.bench(m.epoch, m.spec).catch((e) => this.failed(m.epoch, e));
        return;
      case 'abort':
        // Every rank abandons the op under way, and its training loop with it (no step, no
        // checkpoint after this); frames of the old epoch are dropped from now on. The answer says
        // which checkpoints this worker really keeps: reports it sent meanwhile are of the old epoch.
        this.abortedEpoch = Math.max(this.abortedEpoch, m.epoch);
        this.a?.runner.abort(new RingswarmError('RS_ERR_ABORTED', `epoch ${m.epoch}: ${m.reason}`));
        this.control.send({ type: 'aborted', epoch: m.epoch, ...(this.store ? { checkpoints: { own: this.store.ownSteps(), held: this.store.heldInventory() } } : {}) });
        return;
      case 'inject':
        if (!m.arm) this.strike(m.fault);
        else if (this.a?.epoch === m.epoch && !this.a.faults.some((f) => f.id === m.fault.id)) this.a.faults.push(m.fault);
        return;
      case 'shutdown':
        this.stop(0, m.reason);
        return;
    }
  }

  private failed(epoch: number, e: unknown, restore = false): void {
    if (this.stopped || (this.a && this.a.epoch !== epoch)) return;
    const err = isRingswarmError(e) ? e : new RingswarmError('RS_ERR_INTERNAL', e instanceof Error ? (e.stack ?? e.message) : String(e));
    if (err.code === 'RS_ERR_ABORTED') return;
    this.env.log(`rank ${this.a?.rank ?? '?'}: ${err.code}: ${err.message}`);
    this.control.send({ type: 'failed', epoch, code: err.code, message: err.message, ...(restore ? { restore: true } : {}) });
  }

  private async assign(m: Extract<CoordinatorMessage, { type: 'assign' }>): Promise<void> {
    const { job } = m;
    const eb = elementBytes(job.dtype);
    if (job.bytesPerCard % eb !== 0) throw new RingswarmError('RS_ERR_PROTOCOL', `${job.bytesPerCard} bytes is not a whole number of ${job.dtype} elements`);
    const count = job.bytesPerCard / eb;
    const chunkElems = Math.max(1, Math.floor(job.chunkBytes / eb));
    this.a?.runner.abort(new RingswarmError('RS_ERR_ABORTED', `epoch ${m.epoch} started`));
    const runner = new OpRunner(
      this.transport,
      {
        rank: m.rank,
        epoch: m.epoch,
        dtype: job.dtype,
        chunkElems,
        timeoutMs: job.timeoutMs,
        // A stalled op is reported, not failed: from here a partner that has not begun the op looks
        // dead; the coordinator, which sees every rank move or not, decides.
        failAfterMs: Infinity,
        onStall: (s) => this.control.send({ type: 'stalled', epoch: m.epoch, opSeq: s.opSeq, idleMs: s.idleMs }),
        clock: this.env.clock,
        cpuTimes: this.env.cpuTimes && (() => this.env.cpuTimes!()),
        checksums: job.checksums,
        delivered: (opSeq, phase, n) => this.trigger(opSeq, phase, n),
        // A corrupt frame found after a lost partner ended the op is still a fault to report.
        onLateBadFrame: (e) => this.failed(m.epoch, e),
        trace: job.trace === true,
      },
      this.env.log,
      this.transport.pool,
    );
    if (!this.cards) {
      this.store =
        job.checkpointShm && this.env.sharedSlots
          ? new SharedCheckpointStore(this.env.sharedSlots(job.checkpointShm), job.dtype, job.cardsPerWorker, count, m.firstCard, slotWriter(this.id))
          : new CheckpointStore(job.dtype, job.cardsPerWorker, count);
      // With shared slots that can be mapped, the states live in one: a checkpoint copies nothing.
      let mapped: Elements[] | null = null;
      if (this.store instanceof SharedCheckpointStore) {
        try {
          mapped = this.store.mapStates();
        } catch (e) {
          this.env.log(`warning: ${(e as Error).message}; card states stay in this process and checkpoints copy them`);
        }
      }
      // Gradients, the reduced buffer, the states (unless mapped) and the expected result: the fill,
      // the reductions, the update and the check's expected values run as SIMD. An arena too large
      // for that holds the first two only (the states and the expected result then in malloc).
      const g = job.cardsPerWorker;
      const arenaOf = (buffers: number) => workerArena(this.transport.pool, buffers, job.bytesPerCard, job.chunkBytes);
      const arena = this.env.arena === false ? null : (arenaOf(mapped ? g + 2 : 2 * g + 2) ?? arenaOf(g + 1));
      this.cards = new CardGroup({
        alloc: arenaAlloc(arena),
        firstCard: m.firstCard,
        cards: g,
        totalCards: job.totalCards,
        count,
        dtype: job.dtype,
        op: job.op,
        seed: job.seed,
        ...(mapped ? { states: mapped } : {}),
      });
    }
    // Copies held for the predecessor stay: a replacement in its rank fetches them from us.
    this.unshapeSlowLink();
    this.benchOpSeq = 0;
    // A new log per epoch: what the old one still holds (a copy written after its abort) is of the old epoch.
    this.spans = job.trace ? new SpanLog() : null;
    this.a = { epoch: m.epoch, rank: m.rank, size: m.size, firstCard: m.firstCard, next: m.next.rank, algo: m.algo, job, runner, faults: m.faults, lostCards: m.lostCards, stragglers: m.stragglers };
    try {
      await this.restore(m);
    } catch (e) {
      // Said as such: a checkpoint that cannot be read is no fault of a link or of this rank's op.
      return this.failed(m.epoch, e, true);
    }
    this.transport.setLinkModel?.({ latencyMs: job.link.latencyUs / 1000, bandwidth: job.link.bandwidth });
    await this.transport.ring(m.epoch, m.rank, m.prev, m.next, job.ringUpTimeoutMs ?? job.timeoutMs, m.peers);
    this.startHeartbeat(job.heartbeatMs);
    this.control.send({ type: 'ready', epoch: m.epoch });
  }

  /** Put the cards in the state of checkpoint `restore.step`, from wherever the coordinator says it is. */
  private async restore(m: Extract<CoordinatorMessage, { type: 'assign' }>): Promise<void> {
    const cards = this.cards!;
    const store = this.store!;
    const { step, source } = m.restore;
    // Every element is written below (or the restore fails, and the states are not used).
    this.changeStates((to) => void (cards.states = to));
    if (source === 'initial') {
      for (const s of cards.states) s.fill(0);
    } else if (source === 'local') {
      if (!store.restore(step, cards.states)) throw new RingswarmError('RS_ERR_PROTOCOL', `no checkpoint of step ${step} in memory`);
    } else if (source === 'peer') {
      if (!m.restore.peer || !this.transport.fetchCheckpoint) throw new RingswarmError('RS_ERR_PROTOCOL', 'peer restore without a peer');
      const frames = await this.transport.fetchCheckpoint(m.restore.peer.dataUrl, m.epoch, m.firstCard, step, m.job.timeoutMs);
      const mine = new CheckpointStore(m.job.dtype, m.job.cardsPerWorker, cards.states[0]?.length ?? 0);
      for (const f of frames) {
        const d = decodeFrame(f, { maxPayload: f.byteLength, verifyChecksum: true, crc: crc32c });
        mine.receive(m.firstCard, step, { card: d.header.chunk, offset: d.header.offset, data: viewElements(m.job.dtype, d.payload) });
      }
      if (!mine.restore(step, cards.states, m.firstCard)) throw new RingswarmError('RS_ERR_PROTOCOL', `incomplete copy of checkpoint ${step} from rank ${m.restore.peer.rank}`);
    } else {
      if (!this.env.disk || !m.job.checkpointDir) throw new RingswarmError('RS_ERR_PROTOCOL', 'disk restore without a checkpoint folder');
      const states = await this.env.disk.read(m.job.checkpointDir, m.firstCard, step);
      states.forEach((b, j) => cards.states[j].set(viewElements(m.job.dtype, b)));
    }
  }

  private startHeartbeat(everyMs: number): void {
    this.stopHeartbeat?.();
    this.stopHeartbeat = every(this.env.clock, everyMs, () => {
      const a = this.a;
      if (!a) return;
      const p = a.runner.progress();
      this.control.send({
        type: 'heartbeat',
        epoch: a.epoch,
        rssMB: this.sampleRss(),
        progress: p && {
          opSeq: p.opSeq,
          phase: p.phase,
          step: p.step,
          chunksReceived: p.chunksReceived,
          chunksExpected: p.chunksExpected,
          chunksSent: p.chunksSent,
          moved: p.moved,
          ...(p.waitingFor !== undefined ? { waitingFor: p.waitingFor } : {}),
        },
        ...(this.spans ? { clock: this.env.clock.now() } : {}),
      });
    });
  }

  /** Whether assignment `a` may go on: the worker runs, `a` is its assignment, and no abort came since. */
  private live(a: Assignment): boolean {
    return !this.stopped && this.a === a && a.epoch >= this.abortedEpoch;
  }

  private current(epoch: number): Assignment {
    const a = this.a;
    if (!a || a.epoch !== epoch) throw new RingswarmError('RS_ERR_STALE_EPOCH', `command for epoch ${epoch}, current ${a?.epoch ?? 'none'}`);
    return a;
  }

  /** Frames that are not part of a collective (checkpoint copies) are kept here; the rest go to the op runner. */
  private onFrame(from: number, frame: Uint8Array): void {
    const a = this.a;
    if (!a) return;
    if (frame.byteLength < FRAME_HEADER_BYTES || frame[3] !== 3) {
      a.runner.onFrame(from, frame);
      return;
    }
    let d: DecodedFrame;
    try {
      d = decodeFrame(frame, { maxPayload: a.runner.maxPayload, verifyChecksum: a.job.checksums, crc: crc32c });
    } catch (e) {
      this.env.log(`bad checkpoint frame from rank ${from}: ${(e as Error).message}`);
      return;
    }
    // A copy sent in an epoch an abort has ended is dropped: the answer to that abort said which
    // copies this worker holds, and the coordinator plans the restore on it (a late copy kept here
    // would push out one it counts on: a thawed predecessor runs on until its abort reaches it).
    if (d.header.epoch < this.abortedEpoch) {
      this.transport.pool?.release(frame);
      return;
    }
    // Copies are kept by card (the owner's first card id, in the header's step field), not by rank:
    // cards keep their ids when ranks are replaced or renumbered.
    const step = d.header.opSeq;
    const firstCard = d.header.step;
    let done: boolean;
    try {
      done = this.keep(from, firstCard, step, d);
    } catch (e) {
      this.env.log(`bad checkpoint frame from rank ${from}: ${(e as Error).message}`);
      done = false;
    }
    // The store copied what it keeps: the frame goes back to the pool it was read into.
    this.transport.pool?.release(frame);
    if (done) this.control.send({ type: 'holding', epoch: a.epoch, owner: d.header.src, step });
  }

  /** Keep a piece of `firstCard`'s checkpoint `step`, or the name of the slot it is in. True when the copy just became complete. */
  private keep(from: number, firstCard: number, step: number, d: DecodedFrame): boolean {
    const store = this.store!;
    if (d.header.chunk !== SLOT_NOTICE) {
      if (!(store instanceof CheckpointStore)) throw new RangeError('a copy in frames, but this worker keeps copies in shared slots');
      return store.receive(firstCard, step, { card: d.header.chunk, offset: d.header.offset, data: viewElements(this.a!.job.dtype, d.payload) });
    }
    if (!(store instanceof SharedCheckpointStore)) throw new RangeError('a shared slot named, but this worker keeps copies in frames');
    const name = new TextDecoder().decode(d.payload);
    if (store.adopt(firstCard, step, name)) return true;
    if (!this.unreadableSlotSaid) {
      this.unreadableSlotSaid = true;
      this.env.log(`warning: rank ${from}'s checkpoint ${step} is in shared slot ${name}, which this host cannot read: no copy of it kept here`);
    }
    return false;
  }

  /** A replacement holding the cards from `firstCard` asks for their checkpoint `step`. */
  private serveCheckpoint(firstCard: number, step: number): Uint8Array[] | null {
    const a = this.a;
    const copy = this.store?.heldCopy(firstCard, step);
    if (!a || !copy) return null;
    return this.checkpointFrames(firstCard, step, copy, a, allocFrame);
  }

  /**
   * Frames (copies) of checkpoint `step` of the cards from `firstCard`, in buffers from `alloc`.
   * The owner's first card id rides in the header's step field.
   */
  private checkpointFrames(
    firstCard: number,
    step: number,
    states: readonly Elements[],
    a: Assignment,
    alloc: (payloadBytes: number) => { frame: Uint8Array; payload: Uint8Array },
  ): Uint8Array[] {
    const chunkElems = Math.max(1, Math.floor(a.job.chunkBytes / elementBytes(a.job.dtype)));
    return checkpointPieces(states, chunkElems).map((p) => {
      const { frame, payload } = alloc(p.data.byteLength);
      payload.set(new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength));
      return sealFrame(frame, { phase: 'checkpoint', epoch: a.epoch, opSeq: step, step: firstCard, chunk: p.card, offset: p.offset, src: a.rank }, crc32c);
    });
  }

  /** Checkpoint `step`: keep a copy, send one to the successor, and to disk when asked. */
  private async checkpoint(a: Assignment, step: number): Promise<void> {
    const store = this.store!;
    const spans = this.spans;
    const tk = spans ? this.env.clock.now() : 0;
    const states = this.cards!.states;
    let bytes = 0;
    for (const s of states) bytes += s.byteLength;
    const copied = () => spans?.add('checkpoint copy', `copy of checkpoint ${step} to rank ${a.next}${store instanceof SharedCheckpointStore ? ' (shared slot)' : ''}`, tk, this.env.clock.now(), { step, bytes });
    if (store instanceof SharedCheckpointStore) {
      const slot = store.save(step, states);
      // The one copy is in the slot: the successor is told its name (over the link, so a cut link
      // keeps the copy from it as it would the bytes).
      if (a.size > 1) {
        const payload = new TextEncoder().encode(slot);
        const header = sealHeader({ phase: 'checkpoint', epoch: a.epoch, opSeq: step, step: a.firstCard, chunk: SLOT_NOTICE, offset: 0, src: a.rank }, payload, crc32c);
        a.runner.sendFrame(a.next, [header, payload], copied);
      }
    } else {
      store.save(step, states);
      if (a.size > 1) {
        // Sent from the store's copy (the live states change as soon as the step runs), without
        // another: a header and a view of the payload each, the copy lent until all are written.
        const chunkElems = Math.max(1, Math.floor(a.job.chunkBytes / elementBytes(a.job.dtype)));
        const { pieces, returned } = store.lend(step, chunkElems);
        let unwritten = pieces.length;
        for (const p of pieces) {
          const payload = new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength);
          const header = sealHeader({ phase: 'checkpoint', epoch: a.epoch, opSeq: step, step: a.firstCard, chunk: p.card, offset: p.offset, src: a.rank }, payload, crc32c);
          // The copy's span ends once its last frame is written: it goes with the next report.
          a.runner.sendFrame(a.next, [header, payload], () => --unwritten === 0 && (returned(), copied()));
        }
      }
    }
    // A failed disk write (a full or read-only disk) is said once: the rest of the run keeps its checkpoints in memory.
    let disk = false;
    if (this.env.disk && a.job.checkpointDir && !this.diskOff) {
      try {
        await this.env.disk.write(
          a.job.checkpointDir,
          a.firstCard,
          step,
          states.map((s) => new Uint8Array(s.buffer, s.byteOffset, s.byteLength)),
        );
        disk = true;
      } catch (e) {
        this.diskOff = true;
        this.env.log(`warning: ${(e as Error).message}; checkpoints of this worker stay in memory only for the rest of the run`);
      }
    }
    spans?.add('checkpoint', `checkpoint ${step}${disk ? ' (disk)' : ''}`, tk, this.env.clock.now(), { step });
    this.control.send({ type: 'checkpointed', epoch: a.epoch, step, disk });
  }

  /**
   * Before the card states change: `write` gets the buffers to write them into, the states
   * themselves, or, where they live in a mapped slot that a checkpoint now keeps, another slot's
   * (SharedCheckpointStore.moveLive), into which `write` must set every element.
   */
  private changeStates(write: (to: Elements[]) => void): void {
    const store = this.store;
    if (store instanceof SharedCheckpointStore && store.statesMapped) store.moveLive(write);
    else write(this.cards!.states);
  }

  /** Set by checkpoint() once a disk write failed: no more disk writes in this run. */
  private diskOff = false;

  /**
   * The emulated card-to-card fabric (--intra-bandwidth): a reduce or a broadcast inside this worker
   * moves (cards - 1) x bytes, and takes that long at the emulated rate (the real copy is on top).
   */
  private async intraTransfer(job: JobSpec, bytes = job.bytesPerCard): Promise<void> {
    if (job.link.intraBandwidth <= 0 || job.cardsPerWorker < 2) return;
    await this.env.clock.sleep((((job.cardsPerWorker - 1) * bytes) / job.link.intraBandwidth) * 1000);
  }

  /**
   * Fire the armed faults whose trigger this point matches: the start of a step (phase null), a
   * chunk received in a phase, or the end of the step's op ('op-end'), where a fault armed at a
   * phase or chunk this rank never saw (an extra rank of recursive doubling, a chunk past the
   * last) strikes rather than not at all.
   */
  private trigger(opSeq: number, phase: string | null, received: number): void {
    const a = this.a;
    if (!a) return;
    for (const f of a.faults) {
      if (this.fired.has(f.id) || f.at.step !== opSeq) continue;
      const match =
        phase === null ? f.at.phase === undefined : phase === 'op-end' ? f.at.phase !== undefined : f.at.phase === phase && received > (f.at.chunk ?? 0);
      if (!match) continue;
      this.fired.add(f.id);
      if (phase === 'op-end') this.env.log(`rank ${a.rank}: fault ${f.id} (${f.kind} at ${f.at.phase} chunk ${f.at.chunk ?? 0}) strikes at the end of op ${opSeq}: this rank did not get that far in the phase`);
      this.control.send({ type: 'fault', epoch: a.epoch, id: f.id, step: opSeq, phase: phase === 'op-end' ? (f.at.phase ?? null) : phase, chunk: phase === null || phase === 'op-end' ? null : received - 1 });
      this.strike(f);
    }
  }

  /**
   * How long a worker that froze itself for good waits to be killed: well past its detection and
   * the recovery's decision (a frozen process is killed by its recovery; this one's recovery cannot
   * reach it), so that its launcher can start a replacement.
   */
  private get frozenKillMs(): number {
    const job = this.a?.job;
    return 3 * (job?.heartbeatDeadMs ?? 10 * (job?.heartbeatMs ?? 100)) + 1000;
  }

  private strike(f: FaultOrder): void {
    const a = this.a;
    switch (f.kind) {
      case 'kill':
        return this.env.strike({ signal: 'SIGKILL' });
      case 'hang':
        // A spawned worker is stopped and resumed by its coordinator; any other arranges both itself.
        if (this.id.spawned) return this.env.strike({ signal: 'SIGSTOP' });
        return this.env.strike({ freeze: f.ms, killAfterMs: this.frozenKillMs });
      case 'crash':
        return this.env.strike({ exit: f.code ?? 1 });
      case 'link': {
        // The physical link to the worker at the far end, whatever algorithm runs over it.
        const to = f.to ?? a?.next ?? -1;
        if (a && to >= 0) this.transport.shapeLink?.(to, { cut: f.cut, delayMs: f.delayMs, bandwidth: f.bandwidth }, f.ms);
        return;
      }
      case 'corrupt':
        a?.runner.corruptNext(f.frames ?? 1);
        return;
    }
  }

  /** The rank our emulated slow link goes to, while it is on (the coordinator says per epoch whether the link is still in the ring). */
  private slowLinkTo: number | null = null;

  private unshapeSlowLink(): void {
    if (this.slowLinkTo !== null) this.transport.shapeLink?.(this.slowLinkTo, {}, 0);
    this.slowLinkTo = null;
  }

  /** Emulated stragglers on this rank at `step`: extra compute, a slowed outgoing link, jitter. */
  private async straggle(a: Assignment, step: number, computedMs: number): Promise<number> {
    let extra = 0;
    for (const s of a.stragglers) {
      if (s.kind === 'jitter') {
        // Drawn from (seed, step, rank): the same run gives the same noise.
        extra += s.maxMs * unitHash(a.job.seed, step, a.rank);
        continue;
      }
      const on = step >= s.fromStep && (s.steps === null || step < s.fromStep + s.steps);
      if (s.kind === 'slow') {
        if (on) extra += s.addMs ?? Math.max(1, computedMs + a.job.computeMs) * ((s.factor ?? 1) - 1);
      } else if (on && this.slowLinkTo === null) {
        this.slowLinkTo = s.to ?? a.next;
        this.transport.shapeLink?.(this.slowLinkTo, { delayMs: s.delayMs, bandwidth: s.bandwidth }, null);
      } else if (!on) {
        this.unshapeSlowLink();
      }
    }
    if (extra > 0) await this.env.clock.sleep(extra);
    return extra;
  }

  private async train(epoch: number, fromStep: number): Promise<void> {
    const a = this.current(epoch);
    const { job, runner } = a;
    const cards = this.cards!;
    // Compute time runs from the end of one all-reduce to the start of the next (all this rank did
    // between), less the time it waited for a CPU meanwhile: the machine's, not the rank's.
    let lastAllreduceEnd: number | null = null;
    const cpu = new CpuWaitMeter(() => this.env.cpuWaitMs?.() ?? 0);
    for (let step = fromStep; step < job.steps; step++) {
      if (!this.live(a)) return;
      const t0 = this.env.clock.now();
      if (lastAllreduceEnd === null) cpu.reset();
      // At the first step of an epoch this re-keeps the state just restored and hands the copy to
      // the successor, which may be a new process.
      if (job.checkpointEvery > 0 && step % job.checkpointEvery === 0) await this.checkpoint(a, step);
      this.trigger(step, null, 0);
      cpu.worked();
      const ts = this.env.clock.now();
      if (job.computeMs > 0) await this.env.clock.sleep(job.computeMs);
      if (!this.live(a)) return;
      const tc = this.env.clock.now();
      cpu.slept(job.computeMs, tc - ts);
      cards.computeGradients(step);
      this.changeStates((to) => cards.foldOwnGradient(to));
      cpu.worked();
      const tg = this.env.clock.now();
      const straggledMs = await this.straggle(a, step, tg - tc);
      if (!this.live(a)) return;
      const t1 = this.env.clock.now();
      cpu.slept(straggledMs, t1 - tg);
      const computeMs = Math.max(0, t1 - (lastAllreduceEnd ?? t0) - cpu.waited);
      cards.reduceLocal();
      await this.intraTransfer(job);
      const tr = this.spans ? this.env.clock.now() : 0;
      await runner.run('allreduce', step, { size: a.size, op: job.op, buffer: cards.reduced, divisor: job.totalCards - a.lostCards.length, algo: a.algo });
      this.trigger(step, 'op-end', 0);
      if (!this.live(a)) return;
      const tb = this.spans ? this.env.clock.now() : 0;
      cards.broadcastLocal();
      await this.intraTransfer(job);
      const t2 = this.env.clock.now();
      const spans = this.spans;
      if (spans) {
        spans.add('compute', straggledMs > 0 ? 'compute (straggling)' : 'compute', ts, t1, { step });
        if (job.cardsPerWorker > 1) {
          spans.add('intra', 'local reduce', t1, tr, { step, bytes: (job.cardsPerWorker - 1) * job.bytesPerCard });
          spans.add('intra', 'local broadcast', tb, t2, { step, bytes: (job.cardsPerWorker - 1) * job.bytesPerCard });
        }
        spans.addOp(`all-reduce (${a.algo})`, runner.last, step, step);
      }
      cpu.reset();
      const op = runner.last;
      const wrong = cards.verify(step, a.lostCards);
      // In place: no checkpoint was kept of them since the fold.
      cards.applyResult();
      const t3 = this.env.clock.now();
      this.control.send({
        type: 'step',
        epoch,
        step,
        wrong,
        timings: {
          computeMs,
          allreduceMs: t2 - t1,
          stepMs: t3 - t0,
          waitMs: op?.waitMs ?? 0,
          linkMs: op?.linkMs ?? 0,
          bytesSent: op?.bytesSent ?? 0,
          links: op?.links ?? [],
          ...(op?.sleptMs != null ? { allreduceSleptMs: op.sleptMs } : {}),
        },
        rssMB: this.sampleRss(),
        pssMB: this.samplePss(),
        ...(spans ? { ...spans.take(), clock: this.env.clock.now() } : {}),
      });
      lastAllreduceEnd = t2;
    }
    this.control.send({ type: 'done', epoch, cardDigests: cards.stateDigests(), rssMBMax: Math.max(this.rssMBMax, this.sampleRss()) });
  }

  private async bench(epoch: number, spec: BenchSpec): Promise<void> {
    const a = this.current(epoch);
    for (const bytes of spec.sizes) {
      if (this.stopped || this.a !== a) return;
      const r = await runBenchSize({
        pool: this.transport.pool,
        runner: a.runner,
        // Op ids grow over every bench of the epoch (a bench per algorithm, one after the other).
        nextOpSeq: () => this.benchOpSeq++,
        now: () => this.env.clock.now(),
        rank: a.rank,
        size: a.size,
        firstCard: a.firstCard,
        job: a.job,
        spec,
        bytes,
        intraTransfer: () => this.intraTransfer(a.job, bytes),
        spans: this.spans,
      });
      const spans = this.spans;
      spans?.add('bench', `${spec.collective} ${formatBytes(bytes)}`, r.startedAt, r.endedAt, { bytes });
      this.control.send({
        type: 'bench-result',
        epoch,
        bytes,
        count: r.count,
        timeUs: r.timeUs,
        ...(r.itersUs.length <= MAX_BENCH_ITERS ? { itersUs: r.itersUs } : {}),
        wrong: r.wrong,
        ...(spans ? { ...spans.take(), clock: this.env.clock.now() } : {}),
      });
    }
    this.control.send({ type: 'done', epoch, cardDigests: [], rssMBMax: Math.max(this.rssMBMax, this.sampleRss()) });
  }
}

/** The chunk field of a 'checkpoint' frame that names a shared slot (its payload) instead of carrying a piece. */
const SLOT_NOTICE = 0xffffffff;

/** This process's part of its slot names: its worker id and pid, in the letters a slot name allows. */
function slotWriter(id: WorkerIdentity): string {
  return `${id.workerId}-${id.pid}`.replace(/[^A-Za-z0-9_-]/g, '_');
}
