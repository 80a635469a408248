// An in-memory data plane for tests and simulations: one Network holds every rank's endpoint and
// delivers frames through a queue that the test drives, with per-link FIFO (as TCP gives) and a
// seeded choice of which link moves next, so any interleaving replays exactly from its seed.
// Faults per directed link (ranks): cut, seeded drop, partition, corrupt.
import { FRAME_HEADER_BYTES } from '../protocol/frame.js';
import { seededRandom } from '../collective/random.js';
import type { LinkEvents, PeerAddress, Transport } from './transport.js';

interface InFlight {
  from: number;
  to: number;
  frame: Uint8Array;
}

/**
 * Flips one byte of a sealed frame's payload (the middle one) so the receiver's CRC check fails;
 * a frame with no payload gets a byte of its checksum flipped instead.
 */
export function corruptFrame(frame: Uint8Array): void {
  const payload = frame.byteLength - FRAME_HEADER_BYTES;
  frame[payload > 0 ? FRAME_HEADER_BYTES + (payload >> 1) : 28] ^= 0xff;
}

/** Which group each member is in; members of no group are not affected. */
export function partitionOf<T>(groups: readonly (readonly T[])[]): Map<T, number> {
  const m = new Map<T, number>();
  groups.forEach((g, i) => g.forEach((x) => m.set(x, i)));
  return m;
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
  private readonly cuts = new Set<string>();
  private readonly dropRate = new Map<string, number>();
  private readonly corruptLeft = new Map<string, number>();
  private group = new Map<number, number>();
  delivered = 0;
  /** Frames lost to cut, partitioned or dropping links. */
  dropped = 0;

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

  /** Lose every frame on the directed link from rank `from` to rank `to` (on) or stop (off). */
  cut(from: number, to: number, on: boolean): void {
    if (on) this.cuts.add(`${from}->${to}`);
    else this.cuts.delete(`${from}->${to}`);
  }

  /** Lose each frame on the link with this probability (drawn from the network's seed); 0: none. */
  drop(from: number, to: number, probability: number): void {
    if (!(probability >= 0 && probability <= 1)) throw new RangeError(`drop probability must be in [0, 1], got ${probability}`);
    if (probability > 0) this.dropRate.set(`${from}->${to}`, probability);
    else this.dropRate.delete(`${from}->${to}`);
  }

  /** Cut every link between ranks of different groups (ranks in no group keep their links) until heal(). */
  partition(groups: readonly (readonly number[])[]): void {
    this.group = partitionOf(groups);
  }

  heal(): void {
    this.group = new Map();
  }

  /** Corrupt the payload of the next `n` frames sent on the link (see corruptFrame). */
  corruptNext(from: number, to: number, n: number): void {
    this.corruptLeft.set(`${from}->${to}`, n);
  }

  private blocked(from: number, to: number): boolean {
    const a = this.group.get(from);
    const b = this.group.get(to);
    return this.cuts.has(`${from}->${to}`) || (a !== undefined && b !== undefined && a !== b);
  }

  enqueue(f: InFlight): void {
    if (this.blocked(f.from, f.to)) {
      this.dropped++;
      return;
    }
    const key = `${f.from}->${f.to}`;
    const q = this.links.get(key);
    // Copy: the sender's buffer is its own, as the kernel copies what a socket writes.
    const copy = { ...f, frame: f.frame.slice() };
    const corrupt = this.corruptLeft.get(key) ?? 0;
    if (corrupt > 0) {
      corruptFrame(copy.frame);
      this.corruptLeft.set(key, corrupt - 1);
    }
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
    const [key, q] = busy[Math.floor(this.random() * busy.length)];
    const f = q.shift()!;
    const rate = this.dropRate.get(key) ?? 0;
    // Frames in flight when a link is cut are lost with it.
    if (this.blocked(f.from, f.to) || (rate > 0 && this.random() < rate)) {
      this.dropped++;
      return true;
    }
    const dst = [...this.endpoints.values()].find((e) => !e.isClosed && e.rank === f.to && e.connectedFrom.has(f.from));
    this.delivered++;
    dst?.deliver(f.from, f.frame);
    return true;
  }

  /** Deliver until nothing is in flight (or `max` frames). Returns how many were delivered. */
  run(max = 10_000_000): number {
    const before = this.delivered;
    for (let n = 0; n < max && this.step(); n++);
    return this.delivered - before;
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
