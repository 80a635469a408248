// The coordinator's side of a job: control server, spawned workers, rendezvous (also for workers
// that join by themselves with the URL and token), ring assignment per epoch, replacement of lost
// workers, and an orderly end in which every spawned process is reaped.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_VERSION, WorkerMessage, type CoordinatorMessage, type FaultOrder, type JobSpec, type Restore, type StragglerOrder } from '../protocol/control.js';
import { closeReason, RingswarmError } from '../protocol/errors.js';
import { doublingPeers } from '../collective/recursive-doubling.js';
import { predecessor, successor } from '../collective/ring.js';
import type { AllreduceAlgo } from '../collective/types.js';
import { wsChannel, type Channel } from '../runtime/channel.js';
import { assignRing, type Member } from './rendezvous.js';
import { describeExit, WorkerProcess } from '../runtime/worker-process.js';

export interface SwarmOptions {
  workers: number;
  spawn: number;
  host: string;
  port: number;
  token?: string;
  readyTimeoutMs: number;
  /** Standby workers started at launch, to take the rank of a lost one at once. */
  spares?: number;
  log: (line: string) => void;
}

export interface SwarmMember extends Member {
  pid: number;
  /** Position in the ring of this epoch. */
  rank: number;
  /**
   * The rank this place in the job had at launch: what a scenario's rank means. A replacement
   * takes over its predecessor's home; a reroute moves workers in the ring, not their homes.
   */
  home: number;
  /** The first of the cards this worker holds (its cards keep their ids when ranks change). */
  firstCard: number;
  channel: Channel<WorkerMessage, CoordinatorMessage>;
  process: WorkerProcess | null;
  rssMB: number;
  /** performance.now() of the last message from it (heartbeats included). */
  lastSeen: number;
  gone: boolean;
}

export type SwarmEvent =
  | { type: 'message'; member: SwarmMember; msg: WorkerMessage }
  | { type: 'lost'; member: SwarmMember; why: string; by: 'exit' | 'closed' };

const HELLO_TIMEOUT_MS = 5_000;

export class Swarm {
  readonly token: string;
  controlUrl = '';
  epoch = 0;
  rejectedConnections = 0;
  private server: WebSocketServer | null = null;
  private readonly processes: WorkerProcess[] = [];
  private pendingJoin: SwarmMember[] = [];
  /** Members by rank, once the ring is formed. */
  members: SwarmMember[] = [];
  /** Every member that ever took part (for the report). */
  readonly everyone: SwarmMember[] = [];
  private listener: ((e: SwarmEvent) => void) | null = null;
  private joinWaiter: (() => void) | null = null;
  private joinFailure: string | undefined;
  private closing = false;
  private arrivals = 0;
  private replacements = 0;

  constructor(private readonly o: SwarmOptions) {
    this.token = o.token ?? randomBytes(16).toString('hex');
  }

  onEvent(fn: (e: SwarmEvent) => void): void {
    this.listener = fn;
  }

  private emit(e: SwarmEvent): void {
    if (!this.closing) this.listener?.(e);
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

  private spawnOne(workerId: string): WorkerProcess {
    // A recovery still under way when the run stops must not start a process nobody will reap.
    if (this.closing) throw new RingswarmError('RS_ERR_ABORTED', 'the swarm is closing');
    const p = new WorkerProcess({ workerId, controlUrl: this.controlUrl, token: this.token, host: this.o.host, log: this.o.log });
    this.processes.push(p);
    p.start();
    void p.exited.then((e) => {
      if (this.closing) return;
      const why = `worker ${p.workerId} (pid ${p.pid}) ${describeExit(e)}`;
      const m = this.everyone.find((x) => x.process === p);
      if (m && !m.gone) {
        m.gone = true;
        if (this.members.includes(m)) this.emit({ type: 'lost', member: m, why, by: 'exit' });
      } else if (!m) {
        this.o.log(`${why} before joining`);
        this.joinFailure ??= why;
        this.joinWaiter?.();
      }
    });
    return p;
  }

  spawnWorkers(): void {
    for (let i = 0; i < this.o.spawn; i++) this.spawnOne(`w${i}`);
    for (let i = 0; i < (this.o.spares ?? 0); i++) this.spawnOne(`spare${i}`);
  }

  /** Joined standby workers not yet given a rank. */
  spares: SwarmMember[] = [];

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
          member.lastSeen = performance.now();
          this.emit({ type: 'message', member, msg });
          return;
        }
        clearTimeout(timer);
        if (msg.type !== 'hello') return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `expected hello, got ${msg.type}`), from);
        if (msg.token !== this.token) return this.reject(ws, new RingswarmError('RS_ERR_AUTH', 'wrong token'), from);
        if (msg.version !== PROTOCOL_VERSION) {
          return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `protocol version ${msg.version}, expected ${PROTOCOL_VERSION}`), from);
        }
        const proc = msg.spawned ? (this.processes.find((p) => p.workerId === msg.workerId && p.pid === msg.pid) ?? null) : null;
        if (msg.spawned && !proc) return this.reject(ws, new RingswarmError('RS_ERR_AUTH', `no spawned worker ${msg.workerId} with pid ${msg.pid}`), from);
        if (!proc && (this.members.length > 0 || this.pendingJoin.length >= this.o.workers)) {
          return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', 'the job is full'), from);
        }
        if ([...this.pendingJoin, ...this.members].some((m) => m.workerId === msg.workerId)) {
          return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `worker id ${msg.workerId} already joined`), from);
        }
        const m: SwarmMember = {
          workerId: msg.workerId,
          dataUrl: msg.dataUrl,
          spawned: msg.spawned,
          arrival: this.arrivals++,
          pid: msg.pid,
          rank: -1,
          home: -1,
          firstCard: -1,
          channel,
          process: proc,
          rssMB: 0,
          lastSeen: performance.now(),
          gone: false,
        };
        member = m;
        this.everyone.push(m);
        this.pendingJoin.push(m);
        this.joinWaiter?.();
      },
      onClose: (code, reason) => {
        clearTimeout(timer);
        if (!member || member.gone) return;
        this.pendingJoin = this.pendingJoin.filter((x) => x !== member);
        // A spawned worker's exit is the better signal; a joined one has only its connection.
        if (member.process) return;
        member.gone = true;
        const why = `worker ${member.workerId} (pid ${member.pid}) closed its control connection (${code} ${reason})`;
        if (this.members.includes(member)) this.emit({ type: 'lost', member, why, by: 'closed' });
      },
    });
  }

  private async waitJoins(n: number, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.pendingJoin.length < n) {
      if (this.joinFailure) throw new RingswarmError('RS_ERR_PEER_LOST', this.joinFailure);
      if (this.closing) throw new RingswarmError('RS_ERR_ABORTED', 'the swarm is closing');
      const left = deadline - performance.now();
      if (left <= 0) throw new RingswarmError('RS_ERR_TIMEOUT', `only ${this.pendingJoin.length} of ${n} workers joined within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.joinWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.joinWaiter = null;
  }

  /** Wait until all workers have joined and give them ranks (spawned first, then joiners). */
  async rendezvous(cardsPerWorker: number): Promise<void> {
    const spares = this.o.spares ?? 0;
    await this.waitJoins(this.o.workers + spares, this.o.readyTimeoutMs);
    const isSpare = (m: SwarmMember) => m.spawned && m.workerId.startsWith('spare');
    this.spares = this.pendingJoin.filter(isSpare);
    this.pendingJoin = this.pendingJoin.filter((m) => !isSpare(m));
    const ring = assignRing(this.pendingJoin, cardsPerWorker);
    this.members = ring.map((a) => {
      const m = this.pendingJoin.find((x) => x.workerId === a.member.workerId)!;
      m.rank = a.rank;
      m.home = a.rank;
      m.firstCard = a.firstCard;
      return m;
    });
    this.pendingJoin = [];
  }

  /**
   * Give `rank` to a standby worker (`useSpare`, while one is left), else to a new process; the old
   * one is killed first if it still runs. Resolves once the new holder has joined.
   */
  async replace(rank: number, useSpare = false): Promise<SwarmMember> {
    const old = this.members[rank];
    old.gone = true;
    if (old.process && old.process.state !== 'stopped') {
      old.process.kill('SIGKILL');
      await old.process.exited;
    }
    old.channel.close(4005, 'RS_ERR_PEER_LOST: replaced');
    const spare = useSpare ? this.spares.find((s) => !s.gone) : undefined;
    if (spare) {
      this.spares = this.spares.filter((s) => s !== spare);
      spare.rank = rank;
      spare.home = old.home;
      spare.firstCard = old.firstCard;
      this.members[rank] = spare;
      return spare;
    }
    this.joinFailure = undefined;
    this.spawnOne(`w${rank}.${++this.replacements}`);
    await this.waitJoins(1, this.o.readyTimeoutMs);
    const m = this.pendingJoin.shift()!;
    m.rank = rank;
    m.home = old.home;
    m.firstCard = old.firstCard;
    this.members[rank] = m;
    return m;
  }

  /** Close the ring over lost ranks (--on-failure shrink): the others keep their order and cards, and are renumbered. */
  drop(ranks: ReadonlySet<number>): SwarmMember[] {
    const dropped = this.members.filter((m) => ranks.has(m.rank));
    for (const m of dropped) {
      m.gone = true;
      if (m.process && m.process.state !== 'stopped') m.process.kill('SIGKILL');
      m.channel.close(4005, 'RS_ERR_PEER_LOST: dropped from the ring');
    }
    this.members = this.members.filter((m) => !ranks.has(m.rank));
    this.members.forEach((m, i) => (m.rank = i));
    return dropped;
  }

  /** Re-form the ring in a new order (--on-straggler reroute): `order[i]` is the rank that becomes rank i. Workers keep their cards. */
  reorder(order: readonly number[]): void {
    if (order.length !== this.members.length || new Set(order).size !== order.length) throw new Error(`not a permutation of ${this.members.length} ranks: ${order.join(',')}`);
    this.members = order.map((r) => this.members[r]);
    this.members.forEach((m, i) => (m.rank = i));
  }

  /** The member whose home (rank at launch) is `home`, if it is still in the ring. */
  byHome(home: number): SwarmMember | undefined {
    return this.members.find((m) => m.home === home);
  }

  /** Announce epoch `epoch` to every member: its rank, neighbours, where its state comes from, its faults. */
  assignAll(
    epoch: number,
    job: JobSpec,
    restoreFor: (rank: number) => Restore,
    faultsFor: (rank: number) => FaultOrder[],
    lostCards: number[] = [],
    stragglersFor: (rank: number) => StragglerOrder[] = () => [],
    algo: AllreduceAlgo = 'ring',
    /** Open recursive doubling's links too (a bench that measures it after the ring). */
    doublingLinks = algo === 'rd',
  ): void {
    this.epoch = epoch;
    const n = this.members.length;
    for (const m of this.members) {
      const prev = this.members[predecessor(m.rank, n)];
      const next = this.members[successor(m.rank, n)];
      // About log2(n) each: the coordinator's work stays n log n per epoch.
      const peers = doublingLinks ? doublingPeers(m.rank, n).map((r) => ({ rank: r, dataUrl: this.members[r].dataUrl })) : [];
      m.channel.send({
        type: 'assign',
        epoch,
        rank: m.rank,
        size: n,
        firstCard: m.firstCard,
        prev: { rank: prev.rank, dataUrl: prev.dataUrl },
        next: { rank: next.rank, dataUrl: next.dataUrl },
        algo,
        peers,
        job,
        restore: restoreFor(m.rank),
        faults: faultsFor(m.rank),
        lostCards,
        stragglers: stragglersFor(m.rank),
      });
    }
  }

  broadcast(msg: CoordinatorMessage): void {
    for (const m of this.members) if (!m.gone) m.channel.send(msg);
  }

  /** Every process we spawned, ended and reaped; the server closed. */
  async close(reason: string): Promise<void> {
    this.closing = true;
    for (const m of [...this.members, ...this.pendingJoin, ...this.spares]) m.channel.send({ type: 'shutdown', reason });
    await Promise.all(this.processes.map((p) => p.reap(1500)));
    await this.closeServer();
  }

  /** Stop at once (Ctrl-C, a fatal error): SIGCONT (a frozen worker cannot exit), SIGTERM then SIGKILL, and reap. */
  async kill(): Promise<void> {
    this.closing = true;
    this.joinWaiter?.();
    for (const p of this.processes) p.kill('SIGCONT');
    await Promise.all(this.processes.map((p) => p.stop(1000)));
    await this.closeServer();
  }

  private async closeServer(): Promise<void> {
    for (const c of this.server?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
