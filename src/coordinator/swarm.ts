// The bench's swarm: spawn the workers, let them join through the control server, give them ranks,
// assign one epoch, and end with every spawned process reaped. (A run's membership, epochs and
// recovery are the coordinator machine's: machine.ts.)
import type { AllreduceAlgo } from '../collective/types.js';
import type { CoordinatorMessage, JobSpec, WorkerMessage } from '../protocol/control.js';
import { RingswarmError } from '../protocol/errors.js';
import { ControlServer, type ControlChannel } from '../runtime/control-server.js';
import { describeExit, WorkerProcess } from '../runtime/worker-process.js';
import { assignMessage, assignRing } from './rendezvous.js';

export interface SwarmOptions {
  workers: number;
  host: string;
  port: number;
  readyTimeoutMs: number;
  log: (line: string) => void;
}

export interface SwarmMember {
  workerId: string;
  pid: number;
  /** The worker's clock in its hello, and when the hello came (this process's clock): for --trace. */
  helloClock?: number;
  joinedAt: number;
  dataUrl: string;
  rank: number;
  firstCard: number;
  channel: ControlChannel;
}

export type SwarmEvent = { type: 'message'; member: SwarmMember; msg: WorkerMessage } | { type: 'lost'; why: string };

export class Swarm {
  epoch = 0;
  /** Members by rank, once the ring is formed. */
  members: SwarmMember[] = [];
  private readonly server: ControlServer;
  private readonly processes = new Map<string, WorkerProcess>();
  private joined: (SwarmMember & { arrival: number })[] = [];
  private listener: (e: SwarmEvent) => void = () => {};
  private joinWaiter: (() => void) | null = null;
  private closing = false;

  constructor(private readonly o: SwarmOptions) {
    this.server = new ControlServer({ host: o.host, port: o.port, log: o.log });
    this.server.onHello = (hello, channel) => {
      if (this.processes.get(hello.workerId)?.pid !== hello.pid) return new RingswarmError('RS_ERR_AUTH', `no spawned worker ${hello.workerId} with pid ${hello.pid}`);
      const m = { workerId: hello.workerId, pid: hello.pid, helloClock: hello.clock, joinedAt: performance.now(), dataUrl: hello.dataUrl, rank: -1, firstCard: -1, channel, arrival: this.joined.length };
      this.joined.push(m);
      channel.setHandlers({ onMessage: (msg) => this.emit({ type: 'message', member: m, msg }), onClose: () => {} });
      this.joinWaiter?.();
    };
  }

  onEvent(fn: (e: SwarmEvent) => void): void {
    this.listener = fn;
  }

  private emit(e: SwarmEvent): void {
    if (!this.closing) this.listener(e);
  }

  listen(): Promise<string> {
    return this.server.listen();
  }

  spawnWorkers(): void {
    for (let i = 0; i < this.o.workers; i++) {
      const workerId = `w${i}`;
      const p = new WorkerProcess({ workerId, controlUrl: this.server.url, token: this.server.token, host: this.o.host, log: this.o.log });
      this.processes.set(workerId, p);
      p.start();
      void p.exited.then((e) => this.emit({ type: 'lost', why: `worker ${workerId} (pid ${p.pid}) ${describeExit(e)}` }));
    }
  }

  /** Wait until every worker has joined and give them ranks in launch order. */
  async rendezvous(cardsPerWorker: number): Promise<void> {
    const deadline = performance.now() + this.o.readyTimeoutMs;
    while (this.joined.length < this.o.workers) {
      if (this.closing) throw new RingswarmError('RS_ERR_ABORTED', 'the swarm is closing');
      const left = deadline - performance.now();
      if (left <= 0) throw new RingswarmError('RS_ERR_TIMEOUT', `only ${this.joined.length} of ${this.o.workers} workers joined within ${this.o.readyTimeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.joinWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.joinWaiter = null;
    const ring = assignRing(this.joined.map((m) => ({ workerId: m.workerId, dataUrl: m.dataUrl, spawned: true, arrival: m.arrival })), cardsPerWorker);
    this.members = ring.map((a) => Object.assign(this.joined.find((x) => x.workerId === a.member.workerId)!, { rank: a.rank, firstCard: a.firstCard }));
  }

  /** Announce one epoch: ranks, neighbours, nothing to restore, no faults. */
  assign(job: JobSpec, algo: AllreduceAlgo, doublingLinks: boolean): void {
    for (const m of this.members) {
      m.channel.send(assignMessage(this.members, m.rank, this.epoch, job, algo, doublingLinks, { restore: { step: 0, source: 'initial' }, faults: [], lostCards: [], stragglers: [] }));
    }
  }

  broadcast(msg: CoordinatorMessage): void {
    for (const m of this.members) m.channel.send(msg);
  }

  /** Every process we spawned, ended and reaped; the server closed. */
  async close(reason: string): Promise<void> {
    this.closing = true;
    for (const m of this.joined) m.channel.send({ type: 'shutdown', reason });
    await Promise.all([...this.processes.values()].map((p) => p.reap(1500)));
    await this.server.close();
  }

  /** Stop at once (a fatal error): SIGCONT (a frozen worker cannot exit), SIGTERM then SIGKILL, and reap. */
  async kill(): Promise<void> {
    this.closing = true;
    this.joinWaiter?.();
    for (const p of this.processes.values()) p.kill('SIGCONT');
    await Promise.all([...this.processes.values()].map((p) => p.stop(1000)));
    await this.server.close();
  }
}
