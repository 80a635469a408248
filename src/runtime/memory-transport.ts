// An in-memory data plane for tests and simulations: one Network holds every rank's endpoint and
// delivers frames through a queue that the test drives, with per-link FIFO (as TCP gives) and a
// seeded choice of which link moves next, so any interleaving replays exactly from its seed.
import { seededRandom } from '../collective/random.js';
import type { LinkEvents, PeerAddress, Transport } from './transport.js';

interface InFlight {
  from: number;
  to: number;
  frame: Uint8Array;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export class MemoryNetwork {
  private readonly endpoints = new Map<string, MemoryTransport>();
  /** Per directed link (from->to), the frames in flight, in send order. */
  private readonly links = new Map<string, InFlight[]>();
  private readonly random: () => number;
  delivered = 0;

  constructor(seed = 1) {
    this.random = seededRandom(seed);
  }

  endpoint(name: string): MemoryTransport {
    const t = new MemoryTransport(this, `mem://${name}`);
    this.endpoints.set(t.dataUrl, t);
    return t;
  }

  byUrl(url: string): MemoryTransport | undefined {
    return this.endpoints.get(url);
  }

  enqueue(f: InFlight): void {
    const key = `${f.from}->${f.to}`;
    const q = this.links.get(key);
    // Copy: the sender's buffer is its own, as the kernel copies what a socket writes.
    const copy = { ...f, frame: f.frame.slice() };
    if (q) q.push(copy);
    else this.links.set(key, [copy]);
  }

  get inFlight(): number {
    let n = 0;
    for (const q of this.links.values()) n += q.length;
    return n;
  }

  /** Deliver one frame from a randomly chosen non-empty link. False when nothing is in flight. */
  step(): boolean {
    const busy = [...this.links.entries()].filter(([, q]) => q.length > 0);
    if (busy.length === 0) return false;
    const [, q] = busy[Math.floor(this.random() * busy.length)];
    const f = q.shift()!;
    const dst = [...this.endpoints.values()].find((e) => !e.isClosed && e.rank === f.to && e.connectedFrom.has(f.from));
    this.delivered++;
    dst?.deliver(f.from, f.frame);
    return true;
  }

  /** Deliver until nothing is in flight (or `max` frames). Returns how many were delivered. */
  run(max = 10_000_000): number {
    let n = 0;
    while (n < max && this.step()) n++;
    return n;
  }
}

export class MemoryTransport implements Transport {
  rank = -1;
  epoch = -1;
  readonly connectedFrom = new Set<number>();
  private events: LinkEvents = { onFrame: () => {}, onLinkLost: () => {} };
  private closed = false;

  constructor(
    private readonly net: MemoryNetwork,
    readonly dataUrl: string,
  ) {}

  readonly pendingBytes = 0;

  async drained(): Promise<void> {}

  setEvents(events: LinkEvents): void {
    this.events = events;
  }

  async ring(epoch: number, rank: number, prev: PeerAddress, _next: PeerAddress, _timeoutMs?: number, peers: readonly PeerAddress[] = []): Promise<void> {
    this.epoch = epoch;
    this.rank = rank;
    this.connectedFrom.clear();
    if (prev.rank !== rank) this.connectedFrom.add(prev.rank);
    for (const p of peers) if (p.rank !== rank) this.connectedFrom.add(p.rank);
  }

  send(to: number, frame: Uint8Array | readonly [Uint8Array, Uint8Array], written?: (ok: boolean) => void): void {
    const whole = frame instanceof Uint8Array ? frame : concat(frame[0], frame[1]);
    if (!this.closed) this.net.enqueue({ from: this.rank, to, frame: whole });
    written?.(true);
  }

  dropLink(peer: number, _closeCode: number, reason: string): void {
    if (!this.connectedFrom.delete(peer)) return;
    queueMicrotask(() => this.events.onLinkLost(peer, reason));
  }

  deliver(from: number, frame: Uint8Array): void {
    if (!this.closed) this.events.onFrame(from, frame);
  }

  close(): void {
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
