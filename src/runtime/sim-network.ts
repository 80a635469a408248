// The data plane of `ringswarm sim`: every worker's endpoint on one simulated network, on a
// virtual clock. A link is the directed pair of endpoint names (a cable between two workers,
// whatever ranks they hold). A frame is copied when sent, waits for the link (FIFO), takes
// bytes/bandwidth to serialize, then the latency to arrive. Faults are set per link (cut, seeded
// drop, corrupt, shape, partition) and per endpoint (freeze, kill), by the endpoint's owner
// (shapeLink, as the real transport) or by the simulation driver.
//
// Timing of a frame on link a->b:
//   latency   = network latency + a's link model latency (setLinkModel) + shape delay
//   bandwidth = the lowest set of: network bandwidth, a's model bandwidth, shape bandwidth (0: none)
// The network figures stand for what the real transport costs; a job's emulated fabric comes on top.
import { RingswarmError } from '../protocol/errors.js';
import type { TimerHandle } from './clock.js';
import { FramePool } from './frame-pool.js';
import { seededRandom } from '../collective/random.js';
import { corruptFrame, partitionOf } from './memory-transport.js';
import type { LinkEvents, PeerAddress, Transport } from './transport.js';
import type { VirtualClock } from './virtual-clock.js';

export interface SimNetworkOptions {
  /** One-way latency of every link, in microseconds. */
  latencyUs: number;
  /** Bytes per second of every link; 0: no cap. */
  bandwidth: number;
  /** Seeds the one generator behind dropped frames. */
  seed: number;
  /** How long after an endpoint dies its peers hear of it (a TCP reset), ms. Default 1. */
  resetDelayMs?: number;
  /** Add every delivery to the clock's trace. */
  trace?: boolean;
}

export interface LinkShape {
  cut?: boolean;
  delayMs?: number;
  /** Bytes per second; 0: no cap. */
  bandwidth?: number;
}

export interface LinkStats {
  from: string;
  to: string;
  /** Handed to the link (serialized or waiting to be). */
  bytes: number;
  frames: number;
  /** Time the link has spent serializing, up to now. */
  busyMs: number;
  /** Frames lost to a cut, a partition, a drop, or a dead or refusing end. */
  dropped: number;
}

interface Link {
  readonly from: string;
  readonly to: string;
  busyUntil: number;
  lastArrival: number;
  bytes: number;
  frames: number;
  busyMs: number;
  dropped: number;
  cut: boolean;
  dropRate: number;
  corruptLeft: number;
  shape: Required<LinkShape> | null;
  shapeTimer: TimerHandle | null;
}

interface PendingRing {
  ep: SimEndpoint;
  epoch: number;
  /** Endpoint names we receive from / send to. */
  from: string[];
  to: string[];
  why: string;
  timer: TimerHandle;
  resolve: () => void;
}

interface Outgoing {
  to: number;
  bytes: Uint8Array;
  written?: (ok: boolean) => void;
}

/** Where frames to one rank go, for the sender's current epoch: looked up once, not per frame. */
interface Route {
  name: string;
  /** The link, once a frame went on it (linkStats lists only links that carried something). */
  link: Link | null;
  /** The endpoint last found under `name`: still the one there while it is open. */
  dst: SimEndpoint | undefined;
}

const SCHEME = 'sim://';

/**
 * Copies of small frames are cut from slabs this big (one allocation for hundreds of frames, where
 * a buffer of its own per frame costs more than the rest of the send); larger frames get their own.
 */
const SLAB_BYTES = 256 << 10;
const SLAB_FRAME_MAX = 4 << 10;

/** The lower of two bandwidth caps, 0 standing for none. */
function lowerCap(a: number, b: number): number {
  if (!(a > 0)) return b > 0 ? b : 0;
  return b > 0 && b < a ? b : a;
}

export class SimNetwork {
  private readonly endpoints = new Map<string, SimEndpoint>();
  /** By sender, then receiver (endpoint names). */
  private readonly links = new Map<string, Map<string, Link>>();
  private readonly random: () => number;
  private group = new Map<string, number>();
  private readonly rings = new Set<PendingRing>();
  private readonly resetDelayMs: number;
  /** Frames handed to their receiver's owner. */
  delivered = 0;
  private slab = new Uint8Array(0);
  private slabUsed = 0;

  constructor(
    readonly clock: VirtualClock,
    private readonly o: SimNetworkOptions,
  ) {
    this.random = seededRandom(o.seed);
    this.resetDelayMs = o.resetDelayMs ?? 1;
  }

  /** The endpoint of worker `name` (its launch identity), reached at sim://name. */
  endpoint(name: string): SimEndpoint {
    if (this.endpoints.get(name)?.closed === false) throw new Error(`sim endpoint ${name} already exists`);
    const ep = new SimEndpoint(this, name);
    this.endpoints.set(name, ep);
    return ep;
  }

  byName(name: string): SimEndpoint | undefined {
    return this.endpoints.get(name);
  }

  // --- Control, for the simulation driver and tests -------------------------------------------

  /** Lose every frame on the link from `from` to `to` (those in flight too), or stop. */
  cut(from: string, to: string, on: boolean): void {
    this.link(from, to).cut = on;
    this.poke();
  }

  /** Lose each frame on the link with this probability (drawn from the seed), after it is serialized. */
  drop(from: string, to: string, probability: number): void {
    if (!(probability >= 0 && probability <= 1)) throw new RangeError(`drop probability must be in [0, 1], got ${probability}`);
    this.link(from, to).dropRate = probability;
  }

  /** Cut every link between endpoints of different groups until heal(); endpoints in no group keep theirs. */
  partition(groups: readonly (readonly string[])[]): void {
    this.group = partitionOf(groups);
    this.poke();
  }

  heal(): void {
    this.group = new Map();
    this.poke();
  }

  /** Corrupt the payload of the next `n` frames sent on the link, so their checksum fails. */
  corruptNext(from: string, to: string, n: number): void {
    this.link(from, to).corruptLeft = n;
  }

  /** Shape the link for `ms` (null: until changed; 0: back to normal), as the sender's shapeLink. */
  shape(from: string, to: string, shape: LinkShape, ms: number | null): void {
    const link = this.link(from, to);
    this.clock.clearTimer(link.shapeTimer);
    link.shapeTimer = null;
    if (ms === 0) {
      link.shape = null;
    } else {
      const s = { cut: shape.cut ?? false, delayMs: shape.delayMs ?? 0, bandwidth: shape.bandwidth ?? 0 };
      link.shape = s;
      if (ms !== null) {
        link.shapeTimer = this.clock.setTimer(ms, () => {
          if (link.shape === s) link.shape = null;
          link.shapeTimer = null;
          this.poke();
        });
      }
    }
    this.poke();
  }

  /** A hung process: nothing reaches its owner and nothing leaves it until thaw (both are queued). */
  freeze(name: string): void {
    const ep = this.must(name);
    if (!ep.closed) ep.frozen = true;
  }

  thaw(name: string): void {
    const ep = this.must(name);
    if (!ep.frozen) return;
    ep.frozen = false;
    for (const f of ep.outbox.splice(0)) this.transmit(ep, f.to, f.bytes, f.written);
    ep.flushHeld();
    this.poke();
  }

  /** A dead process: frames to and from it are lost; peers linked to it hear of it shortly after. */
  kill(name: string): void {
    const ep = this.must(name);
    if (ep.closed) return;
    ep.closed = true;
    ep.frozen = false;
    ep.held.length = 0;
    for (const f of ep.outbox.splice(0)) f.written?.(false);
    ep.wakeDrained();
    for (const peer of this.endpoints.values()) {
      if (peer === ep) continue;
      for (const [rank, n] of peer.peers) {
        if (n !== name) continue;
        this.clock.setTimer(this.resetDelayMs, () =>
          peer.post(() => peer.events.onLinkLost(rank, `link with rank ${rank} (${name}) reset: its endpoint closed`)),
        );
      }
    }
    this.poke();
  }

  linkStats(): LinkStats[] {
    const now = this.clock.now();
    return [...this.links.values()]
      .flatMap((to) => [...to.values()])
      .map((l) => ({ from: l.from, to: l.to, bytes: l.bytes, frames: l.frames, busyMs: l.busyMs - Math.max(0, l.busyUntil - now), dropped: l.dropped }))
      .sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
  }

  // --- What endpoints call -------------------------------------------------------------------

  /** A copy of `frame` (one buffer, or two fragments), as a socket write would take. */
  copy(frame: Uint8Array | readonly [Uint8Array, Uint8Array]): Uint8Array {
    const one = frame instanceof Uint8Array;
    const n = one ? frame.byteLength : frame[0].byteLength + frame[1].byteLength;
    let out: Uint8Array;
    if (n > SLAB_FRAME_MAX) {
      out = new Uint8Array(n);
    } else {
      if (this.slabUsed + n > this.slab.byteLength) {
        this.slab = new Uint8Array(SLAB_BYTES);
        this.slabUsed = 0;
      }
      out = this.slab.subarray(this.slabUsed, this.slabUsed + n);
      // 16-aligned starts, as the frame pool's: a payload view of any element type fits.
      this.slabUsed += (n + 15) & ~15;
    }
    if (one) {
      out.set(frame);
    } else {
      out.set(frame[0]);
      out.set(frame[1], frame[0].byteLength);
    }
    return out;
  }

  /** Sends `bytes` (already copied) from `ep` to the endpoint that holds rank `to` for it. */
  transmit(ep: SimEndpoint, to: number, bytes: Uint8Array, written?: (ok: boolean) => void): void {
    if (ep.closed) return written?.(false);
    if (ep.frozen) {
      ep.outbox.push({ to, bytes, written });
      return;
    }
    const route = this.route(ep, to);
    const dst = route?.dst;
    if (!route || !dst || dst.closed) {
      this.clock.setTimer(0, () => {
        written?.(false);
        if (!route && !ep.closed) ep.post(() => ep.events.onLinkLost(to, `no link to rank ${to}`));
      });
      return;
    }
    const link = (route.link ??= this.link(ep.name, route.name));
    if (this.blocked(link)) {
      link.dropped++;
      this.clock.setTimer(0, () => written?.(true)); // into the void, as on a cut cable
      return;
    }
    const lost = link.dropRate > 0 && this.random() < link.dropRate;
    if (!lost && link.corruptLeft > 0) {
      corruptFrame(bytes);
      link.corruptLeft--;
    }
    const arrivesAt = this.occupy(link, ep, bytes.byteLength);
    const serializedAt = link.busyUntil;
    const now = this.clock.now();
    ep.pending += bytes.byteLength;
    this.clock.setTimer(serializedAt - now, () => {
      ep.pending -= bytes.byteLength;
      written?.(!ep.closed);
      ep.wakeDrained();
    });
    if (lost) {
      link.dropped++;
      return;
    }
    const fromRank = ep.rank;
    this.clock.setTimer(arrivesAt - now, () => {
      if (ep.closed || dst.closed || this.blocked(link) || dst.refused.has(ep.name)) {
        link.dropped++;
        return;
      }
      if (dst.holding) dst.held.push(() => this.handOver(ep, dst, fromRank, bytes));
      else this.handOver(ep, dst, fromRank, bytes);
    });
  }

  /** A frame that arrived goes to its receiver's owner (now, or once the receiver is thawed). */
  private handOver(from: SimEndpoint, dst: SimEndpoint, fromRank: number, bytes: Uint8Array): void {
    if (dst.closed) return;
    this.delivered++;
    if (this.o.trace) this.clock.trace(`frame ${from.name}->${dst.name} ${bytes.byteLength}`);
    dst.events.onFrame(fromRank, bytes);
  }

  ring(ep: SimEndpoint, epoch: number, rank: number, prev: PeerAddress, next: PeerAddress, timeoutMs: number, peers: readonly PeerAddress[]): Promise<void> {
    ep.epoch = epoch;
    ep.rank = rank;
    ep.refused.clear();
    ep.routes.clear();
    ep.peers = new Map([prev, next, ...peers].map((p) => [p.rank, nameOf(p.dataUrl)]));
    if (prev.rank === rank) {
      this.poke();
      return Promise.resolve(); // a ring of one has no links
    }
    return new Promise((resolve, reject) => {
      const pr: PendingRing = {
        ep,
        epoch,
        from: [prev, ...peers].map((p) => nameOf(p.dataUrl)),
        to: [next, ...peers].map((p) => nameOf(p.dataUrl)),
        why: '',
        resolve,
        timer: this.clock.setTimer(timeoutMs, () => {
          this.rings.delete(pr);
          reject(new RingswarmError('RS_ERR_TIMEOUT', `ring of epoch ${epoch} not up within ${timeoutMs} ms on rank ${rank}: ${pr.why}`));
        }),
      };
      this.rings.add(pr);
      this.poke();
    });
  }

  fetchCheckpoint(ep: SimEndpoint, url: string, epoch: number, owner: number, step: number, timeoutMs: number): Promise<Uint8Array[]> {
    const what = `checkpoint ${step} of rank ${owner} from ${url}`;
    const deadline = this.clock.now() + timeoutMs;
    const oneWay = this.o.latencyUs / 1000;
    return new Promise((resolve, reject) => {
      const fail = (code: 'RS_ERR_TIMEOUT' | 'RS_ERR_PEER_LOST', why: string) => {
        const at = code === 'RS_ERR_TIMEOUT' ? deadline : this.clock.now();
        this.clock.setTimer(at - this.clock.now(), () => reject(new RingswarmError(code, `fetching ${what}: ${why}`)));
      };
      // The request reaches the server after one link latency; it answers then.
      this.clock.setTimer(oneWay, () => {
        const name = nameOf(url);
        const src = this.endpoints.get(name);
        if (ep.closed) return fail('RS_ERR_PEER_LOST', 'our endpoint closed');
        if (!src || src.closed) return fail('RS_ERR_PEER_LOST', 'connection refused');
        const up = this.link(ep.name, name);
        const down = this.link(name, ep.name);
        if (src.frozen || this.blocked(up) || this.blocked(down)) return fail('RS_ERR_TIMEOUT', `not fetched within ${timeoutMs} ms`);
        if (epoch < src.epoch) return fail('RS_ERR_PEER_LOST', `RS_ERR_STALE_EPOCH: hello for epoch ${epoch}, current ${src.epoch}`);
        const frames = src.fetchHandler?.(owner, step) ?? null;
        if (!frames) return fail('RS_ERR_PEER_LOST', `RS_ERR_PROTOCOL: no copy of checkpoint ${step} of cards from ${owner} here`);
        const copies = frames.map((f) => f.slice());
        let done = this.clock.now() + oneWay;
        for (const f of copies) done = this.occupy(down, src, f.byteLength);
        if (done > deadline) return fail('RS_ERR_TIMEOUT', `not fetched within ${timeoutMs} ms`);
        this.clock.setTimer(done - this.clock.now(), () => (ep.closed ? reject(new RingswarmError('RS_ERR_PEER_LOST', `fetching ${what}: our endpoint closed`)) : resolve(copies)));
      });
    });
  }

  dropLink(ep: SimEndpoint, peer: number, closeCode: number, reason: string): void {
    const name = ep.peers.get(peer);
    if (name === undefined || ep.refused.has(name) || ep.closed) return;
    ep.refused.add(name);
    ep.post(() => ep.events.onLinkLost(peer, `link from rank ${peer} closed by us: ${reason}`));
    const other = this.endpoints.get(name);
    if (!other || other.closed) return;
    for (const [rank, n] of other.peers) {
      if (n !== ep.name) continue;
      this.clock.setTimer(this.resetDelayMs, () => other.post(() => other.events.onLinkLost(rank, `link to rank ${rank} closed (${closeCode} ${reason})`)));
    }
  }

  // --- Inside ----------------------------------------------------------------------------------

  private must(name: string): SimEndpoint {
    const ep = this.endpoints.get(name);
    if (!ep) throw new Error(`no sim endpoint ${name}`);
    return ep;
  }

  private link(from: string, to: string): Link {
    let out = this.links.get(from);
    if (!out) {
      out = new Map();
      this.links.set(from, out);
    }
    let l = out.get(to);
    if (!l) {
      l = { from, to, busyUntil: 0, lastArrival: 0, bytes: 0, frames: 0, busyMs: 0, dropped: 0, cut: false, dropRate: 0, corruptLeft: 0, shape: null, shapeTimer: null };
      out.set(to, l);
    }
    return l;
  }

  /** Where `ep` sends to rank `to`, or undefined when no peer of its epoch holds that rank. */
  private route(ep: SimEndpoint, to: number): Route | undefined {
    let r = ep.routes.get(to);
    if (!r) {
      const name = ep.peers.get(to);
      if (name === undefined) return undefined;
      r = { name, link: null, dst: undefined };
      ep.routes.set(to, r);
    }
    // A name gets a new endpoint only once the old one is closed (a restarted worker).
    if (!r.dst || r.dst.closed) r.dst = this.endpoints.get(r.name);
    return r;
  }

  private blocked(l: Link): boolean {
    if (l.cut || l.shape?.cut) return true;
    if (this.group.size === 0) return false;
    const a = this.group.get(l.from);
    const b = this.group.get(l.to);
    return a !== undefined && b !== undefined && a !== b;
  }

  /** Puts `bytes` on the link after what it already carries: when they arrive (they are serialized at its new busyUntil). */
  private occupy(l: Link, sender: SimEndpoint, bytes: number): number {
    const m = sender.model;
    const latencyMs = this.o.latencyUs / 1000 + (m?.latencyMs ?? 0) + (l.shape?.delayMs ?? 0);
    const bandwidth = lowerCap(lowerCap(this.o.bandwidth, m?.bandwidth ?? 0), l.shape?.bandwidth ?? 0);
    const start = Math.max(this.clock.now(), l.busyUntil);
    const serialize = bandwidth > 0 ? (bytes / bandwidth) * 1000 : 0;
    l.busyUntil = start + serialize;
    l.busyMs += serialize;
    l.bytes += bytes;
    l.frames++;
    // Order is kept even when a shape's delay shrinks between two frames.
    l.lastArrival = Math.max(l.busyUntil + latencyMs, l.lastArrival);
    return l.lastArrival;
  }

  /** Why the ring cannot come up yet, or null once it can. */
  private notReady(pr: PendingRing): string | null {
    const self = pr.ep;
    if (self.closed) return 'our endpoint closed';
    if (self.frozen) return 'our endpoint is frozen';
    for (const names of [pr.from, pr.to]) {
      for (const name of names) {
        const p = this.endpoints.get(name);
        if (!p || p.closed) return `${name} is not there`;
        if (p.frozen) return `${name} does not answer`;
      }
    }
    for (const name of pr.from) if (this.blocked(this.link(name, self.name))) return `link ${name} -> ${self.name} is cut`;
    for (const name of pr.to) {
      if (this.blocked(this.link(self.name, name))) return `link ${self.name} -> ${name} is cut`;
      const p = this.endpoints.get(name)!;
      if (p.epoch < pr.epoch || !hasValue(p.peers, self.name)) return `${name} has not connected for epoch ${pr.epoch}`;
    }
    return null;
  }

  private pokeDue = false;

  /**
   * Brings up every pending ring that can come up now (after a round trip), once per instant:
   * thousands of workers ringing up at the same time would otherwise scan every pending ring each.
   */
  private poke(): void {
    if (this.pokeDue) return;
    this.pokeDue = true;
    this.clock.setTimer(0, () => {
      this.pokeDue = false;
      this.pokeNow();
    });
  }

  private pokeNow(): void {
    for (const pr of [...this.rings]) {
      const why = this.notReady(pr);
      if (why !== null) {
        pr.why = why;
        continue;
      }
      this.rings.delete(pr);
      this.clock.clearTimer(pr.timer);
      this.clock.setTimer((2 * this.o.latencyUs) / 1000, pr.resolve);
    }
  }
}

function hasValue<K, V>(m: ReadonlyMap<K, V>, v: V): boolean {
  for (const x of m.values()) if (x === v) return true;
  return false;
}

function nameOf(url: string): string {
  return url.startsWith(SCHEME) ? url.slice(SCHEME.length) : url;
}

export class SimEndpoint implements Transport {
  readonly dataUrl: string;
  rank = -1;
  epoch = -1;
  closed = false;
  frozen = false;
  events: LinkEvents = { onFrame: () => {}, onLinkLost: () => {} };
  /** Rank -> endpoint name, for the current epoch. */
  peers = new Map<number, string>();
  /** Rank -> where frames to it go (from `peers`, filled as used). */
  readonly routes = new Map<number, Route>();
  /** Endpoints whose link to us we closed (dropLink) in this epoch. */
  readonly refused = new Set<string>();
  /** Deliveries held while frozen (and behind them, until they are out). */
  readonly held: (() => void)[] = [];
  /** Sends made while frozen. */
  readonly outbox: Outgoing[] = [];
  pending = 0;
  /**
   * Frames the owner sends come from here and go back once written (the op runner shares it, as
   * over WebSockets). What it receives are copies of its own, not from this pool.
   */
  readonly pool = new FramePool();
  model: { latencyMs: number; bandwidth: number } | null = null;
  fetchHandler: ((owner: number, step: number) => Uint8Array[] | null) | null = null;
  private drainWaiters: { bytes: number; resolve: () => void }[] = [];
  private flushing = false;

  constructor(
    private readonly net: SimNetwork,
    readonly name: string,
  ) {
    this.dataUrl = `${SCHEME}${name}`;
  }

  get pendingBytes(): number {
    return this.pending;
  }

  setEvents(events: LinkEvents): void {
    this.events = events;
  }

  ring(epoch: number, rank: number, prev: PeerAddress, next: PeerAddress, timeoutMs: number, peers: readonly PeerAddress[] = []): Promise<void> {
    return this.net.ring(this, epoch, rank, prev, next, timeoutMs, peers);
  }

  send(to: number, frame: Uint8Array | readonly [Uint8Array, Uint8Array], written?: (ok: boolean) => void): void {
    this.net.transmit(this, to, this.net.copy(frame), written);
  }

  drained(bytes: number): Promise<void> {
    if (this.pending <= bytes || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push({ bytes, resolve }));
  }

  dropLink(peer: number, closeCode: number, reason: string): void {
    this.net.dropLink(this, peer, closeCode, reason);
  }

  shapeLink(to: number, shape: LinkShape, ms: number | null): void {
    const name = this.peers.get(to);
    if (name !== undefined) this.net.shape(this.name, name, shape, ms);
  }

  setLinkModel(m: { latencyMs: number; bandwidth: number }): void {
    this.model = m;
  }

  fetchCheckpoint(url: string, epoch: number, owner: number, step: number, timeoutMs: number): Promise<Uint8Array[]> {
    return this.net.fetchCheckpoint(this, url, epoch, owner, step, timeoutMs);
  }

  close(): void {
    this.net.kill(this.name);
  }

  /** Whether a delivery now waits (frozen, or behind deliveries held before). */
  get holding(): boolean {
    return this.frozen || this.held.length > 0;
  }

  /** Runs `fn` (a delivery to the owner) now, or once thawed and after what was held before it. */
  post(fn: () => void): void {
    if (this.closed) return;
    if (this.holding) {
      this.held.push(fn);
      return;
    }
    fn();
  }

  /** Delivers what was held, one per clock event, in order. */
  flushHeld(): void {
    if (this.flushing || this.held.length === 0) return;
    this.flushing = true;
    const next = () => {
      if (this.frozen || this.closed) {
        this.flushing = false;
        return;
      }
      this.held.shift()!();
      if (this.held.length > 0) this.net.clock.setTimer(0, next);
      else this.flushing = false;
    };
    this.net.clock.setTimer(0, next);
  }

  wakeDrained(): void {
    if (this.drainWaiters.length === 0) return;
    this.drainWaiters = this.drainWaiters.filter((w) => (this.pending <= w.bytes || this.closed ? (w.resolve(), false) : true));
  }
}
