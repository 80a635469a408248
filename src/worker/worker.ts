// A worker's logic: join the job, take a rank, ring up with its neighbours, run the training
// loop or the bench, report. All I/O comes in through the control channel and the transport.
import { elementBytes } from '../collective/dtypes.js';
import type { BenchSpec, CoordinatorMessage, JobSpec, WorkerMessage } from '../protocol/control.js';
import { PROTOCOL_VERSION } from '../protocol/control.js';
import { isRingswarmError, RingswarmError } from '../protocol/errors.js';
import type { Channel } from '../runtime/channel.js';
import { OpRunner } from '../runtime/op-runner.js';
import type { Transport } from '../runtime/transport.js';
import { runBenchSize } from './bench.js';
import { arenaAlloc, workerArena } from './arena.js';
import { CardGroup } from './cards.js';

export interface WorkerIdentity {
  workerId: string;
  pid: number;
  token: string;
  spawned: boolean;
}

export interface WorkerEnv {
  now(): number;
  sleep(ms: number): Promise<void>;
  rssMB(): number;
  log(line: string): void;
}

interface Assignment {
  epoch: number;
  rank: number;
  size: number;
  firstCard: number;
  job: JobSpec;
  runner: OpRunner;
  cards: CardGroup;
}

export class Worker {
  private a: Assignment | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private rssMBMax = 0;
  private stopped = false;
  private resolveExit!: (code: number) => void;
  /** Resolves with the exit code once the worker is done (shutdown, or its coordinator is gone). */
  readonly exited = new Promise<number>((r) => (this.resolveExit = r));

  constructor(
    private readonly control: Channel<CoordinatorMessage, WorkerMessage>,
    private readonly transport: Transport,
    private readonly id: WorkerIdentity,
    private readonly env: WorkerEnv,
  ) {
    control.setHandlers({
      onMessage: (m) => this.onMessage(m),
      onClose: (code, reason) => this.stop(code === 1000 ? 0 : 1, `control connection closed (${code} ${reason})`),
    });
    transport.setEvents({
      onFrame: (from, frame) => this.a?.runner.onFrame(from, frame),
      onLinkLost: (peer, reason) => this.a?.runner.abort(new RingswarmError('RS_ERR_PEER_LOST', reason)),
    });
    control.send({
      type: 'hello',
      version: PROTOCOL_VERSION,
      token: id.token,
      workerId: id.workerId,
      pid: id.pid,
      dataUrl: transport.dataUrl,
      spawned: id.spawned,
    });
  }

  private sampleRss(): number {
    const rss = this.env.rssMB();
    if (rss > this.rssMBMax) this.rssMBMax = rss;
    return rss;
  }

  stop(code: number, why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    if (code !== 0) this.env.log(`worker ${this.id.workerId} stopping: ${why}`);
    if (this.heartbeat) clearInterval(this.heartbeat);
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
      case 'shutdown':
        this.stop(0, m.reason);
        return;
    }
  }

  private failed(epoch: number, e: unknown): void {
    if (this.stopped) return;
    const err = isRingswarmError(e) ? e : new RingswarmError('RS_ERR_INTERNAL', e instanceof Error ? (e.stack ?? e.message) : String(e));
    this.env.log(`rank ${this.a?.rank ?? '?'}: ${err.code}: ${err.message}`);
    this.control.send({ type: 'failed', epoch, code: err.code, message: err.message });
  }

  private async assign(m: Extract<CoordinatorMessage, { type: 'assign' }>): Promise<void> {
    const { job } = m;
    const eb = elementBytes(job.dtype);
    if (job.bytesPerCard % eb !== 0) throw new RingswarmError('RS_ERR_PROTOCOL', `${job.bytesPerCard} bytes is not a whole number of ${job.dtype} elements`);
    const count = job.bytesPerCard / eb;
    const chunkElems = Math.max(1, Math.floor(job.chunkBytes / eb));
    const runner = new OpRunner(
      this.transport,
      { rank: m.rank, epoch: m.epoch, dtype: job.dtype, chunkElems, timeoutMs: job.timeoutMs, checksums: job.checksums },
      this.env.log,
      this.transport.pool,
    );
    const arena = workerArena(this.transport.pool, job.cardsPerWorker + 1, job.bytesPerCard, job.chunkBytes);
    const cards = new CardGroup({
      alloc: arenaAlloc(arena),
      firstCard: m.firstCard,
      cards: job.cardsPerWorker,
      totalCards: job.totalCards,
      count,
      dtype: job.dtype,
      op: job.op,
      seed: job.seed,
    });
    this.a = { epoch: m.epoch, rank: m.rank, size: m.size, firstCard: m.firstCard, job, runner, cards };
    await this.transport.ring(m.epoch, m.rank, m.prev, m.next, job.timeoutMs);
    this.startHeartbeat(job.heartbeatMs);
    this.control.send({ type: 'ready', epoch: m.epoch });
  }

  private startHeartbeat(everyMs: number): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      const a = this.a;
      if (!a) return;
      const p = a.runner.progress();
      this.control.send({
        type: 'heartbeat',
        epoch: a.epoch,
        rssMB: this.sampleRss(),
        progress: p && { opSeq: p.opSeq, phase: p.phase, step: p.step, chunksReceived: p.chunksReceived, chunksExpected: p.chunksExpected, chunksSent: p.chunksSent },
      });
    }, everyMs);
    this.heartbeat.unref();
  }

  private current(epoch: number): Assignment {
    const a = this.a;
    if (!a || a.epoch !== epoch) throw new RingswarmError('RS_ERR_STALE_EPOCH', `command for epoch ${epoch}, current ${a?.epoch ?? 'none'}`);
    return a;
  }

  private async train(epoch: number, fromStep: number): Promise<void> {
    const a = this.current(epoch);
    const { job, cards, runner } = a;
    for (let step = fromStep; step < job.steps; step++) {
      if (this.stopped || this.a !== a) return;
      const t0 = this.env.now();
      if (job.computeMs > 0) await this.env.sleep(job.computeMs);
      cards.computeGradients(step);
      cards.foldOwnGradient();
      const t1 = this.env.now();
      cards.reduceLocal();
      await runner.run('allreduce', step, { size: a.size, op: job.op, buffer: cards.reduced, divisor: job.totalCards });
      cards.broadcastLocal();
      const t2 = this.env.now();
      const wrong = cards.verify(step);
      cards.applyResult();
      const t3 = this.env.now();
      this.control.send({
        type: 'step',
        epoch,
        step,
        wrong,
        timings: { computeMs: t1 - t0, allreduceMs: t2 - t1, stepMs: t3 - t0 },
        rssMB: this.sampleRss(),
      });
    }
    this.control.send({ type: 'done', epoch, cardDigests: cards.stateDigests(), rssMBMax: Math.max(this.rssMBMax, this.sampleRss()) });
  }

  private async bench(epoch: number, spec: BenchSpec): Promise<void> {
    const a = this.current(epoch);
    let opSeq = 0;
    for (const bytes of spec.sizes) {
      if (this.stopped || this.a !== a) return;
      const r = await runBenchSize({
        pool: this.transport.pool,
        runner: a.runner,
        nextOpSeq: () => opSeq++,
        now: () => this.env.now(),
        rank: a.rank,
        size: a.size,
        firstCard: a.firstCard,
        job: a.job,
        spec,
        bytes,
      });
      this.control.send({ type: 'bench-result', epoch, bytes, count: r.count, timeUs: r.timeUs, wrong: r.wrong });
    }
    this.control.send({ type: 'done', epoch, cardDigests: [], rssMBMax: Math.max(this.rssMBMax, this.sampleRss()) });
  }
}
