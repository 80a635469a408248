// The coordinator's side of a job: control server, spawned workers, rendezvous (also for workers
// that join by themselves with the URL and token), ring assignment, and an orderly end in which
// every spawned process is reaped.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_VERSION, WorkerMessage, type CoordinatorMessage, type JobSpec } from '../protocol/control.js';
import { closeReason, RingswarmError } from '../protocol/errors.js';
import { wsChannel, type Channel } from '../runtime/channel.js';
import { assignRing, type Member, type RankAssignment } from './rendezvous.js';
import { describeExit, WorkerProcess } from './worker-process.js';

export interface SwarmOptions {
  workers: number;
  spawn: number;
  host: string;
  port: number;
  token?: string;
  readyTimeoutMs: number;
  log: (line: string) => void;
}

export interface SwarmMember extends Member {
  pid: number;
  rank: number;
  channel: Channel<WorkerMessage, CoordinatorMessage>;
  process: WorkerProcess | null;
  rssMB: number;
}

export type SwarmEvent =
  | { type: 'message'; member: SwarmMember; msg: WorkerMessage }
  | { type: 'lost'; member: SwarmMember; why: string };

const HELLO_TIMEOUT_MS = 5_000;

export class Swarm {
  readonly token: string;
  controlUrl = '';
  epoch = 0;
  rejectedConnections = 0;
  private server: WebSocketServer | null = null;
  private readonly processes: WorkerProcess[] = [];
  private pendingJoin: (SwarmMember & { arrival: number })[] = [];
  members: SwarmMember[] = [];
  private listener: ((e: SwarmEvent) => void) | null = null;
  private joinWaiter: (() => void) | null = null;
  private closing = false;
  private arrivals = 0;

  constructor(private readonly o: SwarmOptions) {
    this.token = o.token ?? randomBytes(16).toString('hex');
  }

  onEvent(fn: (e: SwarmEvent) => void): void {
    this.listener = fn;
  }

  private emit(e: SwarmEvent): void {
    this.listener?.(e);
  }

  async listen(): Promise<string> {
    const server = new WebSocketServer({ host: this.o.host, port: this.o.port, perMessageDeflate: false, maxPayload: 64 << 20 });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.on('connection', (ws, req) => this.accept(ws, req.socket.remoteAddress ?? '?'));
    const port = (server.address() as AddressInfo).port;
    this.controlUrl = `ws://${this.o.host}:${port}`;
    return this.controlUrl;
  }

  spawnWorkers(): void {
    for (let i = 0; i < this.o.spawn; i++) {
      const p = new WorkerProcess({ workerId: `w${i}`, controlUrl: this.controlUrl, token: this.token, host: this.o.host, log: this.o.log });
      this.processes.push(p);
      p.start();
      void p.exited.then((e) => {
        const m = this.members.find((x) => x.process === p) ?? this.pendingJoin.find((x) => x.process === p);
        if (!this.closing) {
          const why = `worker ${p.workerId} (pid ${p.pid}) ${describeExit(e)}`;
          if (m) this.emit({ type: 'lost', member: m, why });
          else this.o.log(`${why} before joining`);
          this.joinFailure ??= why;
          this.joinWaiter?.();
        }
      });
    }
  }

  private joinFailure: string | undefined;

  private reject(ws: WebSocket, e: RingswarmError, from: string): void {
    this.rejectedConnections++;
    this.o.log(`connection from ${from} refused: ${e.code}: ${e.message}`);
    ws.close(e.closeCode, closeReason(e));
  }

  private accept(ws: WebSocket, from: string): void {
    const channel = wsChannel<WorkerMessage, CoordinatorMessage>(ws, WorkerMessage, (l) => {
      if (l.startsWith('control message rejected')) this.rejectedConnections++;
      this.o.log(`from ${from}: ${l}`);
    });
    const timer = setTimeout(() => this.reject(ws, new RingswarmError('RS_ERR_AUTH', `no hello within ${HELLO_TIMEOUT_MS} ms`), from), HELLO_TIMEOUT_MS);
    let member: SwarmMember | null = null;
    channel.setHandlers({
      onMessage: (msg) => {
        if (member) {
          this.emit({ type: 'message', member, msg });
          return;
        }
        clearTimeout(timer);
        if (msg.type !== 'hello') return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `expected hello, got ${msg.type}`), from);
        if (msg.token !== this.token) return this.reject(ws, new RingswarmError('RS_ERR_AUTH', 'wrong token'), from);
        if (msg.version !== PROTOCOL_VERSION) {
          return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `protocol version ${msg.version}, expected ${PROTOCOL_VERSION}`), from);
        }
        if (this.members.length > 0 || this.pendingJoin.length >= this.o.workers) {
          return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', 'the job is full'), from);
        }
        if (this.pendingJoin.some((m) => m.workerId === msg.workerId)) {
          return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `worker id ${msg.workerId} already joined`), from);
        }
        const proc = msg.spawned ? (this.processes.find((p) => p.workerId === msg.workerId && p.pid === msg.pid) ?? null) : null;
        if (msg.spawned && !proc) return this.reject(ws, new RingswarmError('RS_ERR_AUTH', `no spawned worker ${msg.workerId} with pid ${msg.pid}`), from);
        const m = { workerId: msg.workerId, dataUrl: msg.dataUrl, spawned: msg.spawned, arrival: this.arrivals++, pid: msg.pid, rank: -1, channel, process: proc, rssMB: 0 };
        member = m;
        this.pendingJoin.push(m);
        this.joinWaiter?.();
      },
      onClose: (code, reason) => {
        clearTimeout(timer);
        if (!member || this.closing) return;
        const why = `worker ${member.workerId} (pid ${member.pid}) closed its control connection (${code} ${reason})`;
        this.pendingJoin = this.pendingJoin.filter((x) => x !== member);
        if (this.members.includes(member)) this.emit({ type: 'lost', member, why });
      },
    });
  }

  /** Wait until all workers have joined, then assign ranks and ring them up. Returns ready time. */
  async rendezvous(job: JobSpec): Promise<RankAssignment[]> {
    const deadline = Date.now() + this.o.readyTimeoutMs;
    while (this.pendingJoin.length < this.o.workers) {
      if (this.joinFailure) throw new RingswarmError('RS_ERR_PEER_LOST', this.joinFailure);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new RingswarmError('RS_ERR_TIMEOUT', `only ${this.pendingJoin.length} of ${this.o.workers} workers joined within ${this.o.readyTimeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.joinWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.joinWaiter = null;
    const ring = assignRing(this.pendingJoin, job.cardsPerWorker);
    this.members = ring.map((a) => {
      const m = this.pendingJoin.find((x) => x.workerId === a.member.workerId)!;
      m.rank = a.rank;
      return m;
    });
    this.pendingJoin = [];
    for (const a of ring) {
      this.members[a.rank].channel.send({
        type: 'assign',
        epoch: this.epoch,
        rank: a.rank,
        size: ring.length,
        firstCard: a.firstCard,
        prev: a.prev,
        next: a.next,
        job,
      });
    }
    return ring;
  }

  broadcast(msg: CoordinatorMessage): void {
    for (const m of this.members) m.channel.send(msg);
  }

  /** Every process we spawned, ended and reaped; the server closed. */
  async close(reason: string): Promise<void> {
    this.closing = true;
    for (const m of [...this.members, ...this.pendingJoin]) m.channel.send({ type: 'shutdown', reason });
    await Promise.all(this.processes.map((p) => p.reap(1500)));
    for (const c of this.server?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Stop at once (Ctrl-C, a fatal error): SIGTERM then SIGKILL, and reap. */
  async kill(): Promise<void> {
    this.closing = true;
    await Promise.all(this.processes.map((p) => p.stop(1000)));
    for (const c of this.server?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  get spawnedProcesses(): readonly WorkerProcess[] {
    return this.processes;
  }
}
