// The WebSocket data plane. Each rank runs a data server; a rank that receives from peer P opens a
// client connection to P's server and says hello (token, epoch, its rank). P then sends on the
// server side of that connection, where ws frames are not masked (client-to-server masking in JS
// costs about 10x, measured). A data frame goes out as one WebSocket message written straight to
// the socket: a small one copied into one buffer (one write), a large one as its three parts in one
// corked writev, no copy. (Through ws's send, header and payload as two fragments, it was two
// writev calls of two buffers each: 8 B x 8 spent 2.8x the plain-Node ring's time in writev.)
import type { Socket } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { closeReason, RingswarmError } from '../protocol/errors.js';
import { DataHello, parseMessage, PROTOCOL_VERSION } from '../protocol/control.js';
import { FRAME_HEADER_BYTES, framePayloadLength } from '../protocol/frame.js';
import { frameHeaderBytes, writeFrameHeader, WS_OPCODE } from '../protocol/ws-frames.js';
import { DataLinkClient } from './data-link-client.js';
import type { FramePool } from './frame-pool.js';
import { RefusalLog } from './refusal-log.js';
import type { LinkEvents, PeerAddress, Transport } from './transport.js';
import { listenGuarded, urlHost } from './ws-server.js';

interface LinkShape {
  cut: boolean;
  delayMs: number;
  /** Bytes per second; 0: no cap. */
  bandwidth: number;
}

export interface WsTransportOptions {
  host: string;
  /** The address peers dial (its data URL's), when not `host` (binding 0.0.0.0, say). */
  advertise?: string;
  token: string;
  /** Largest frame payload accepted. */
  maxPayload: number;
  log: (line: string) => void;
  /** Received frames are read into buffers from this pool (the op runner gives them back). */
  pool: FramePool;
  /** How long a connection may take to upgrade, and then to say hello, ms (default LINK_TIMEOUT_MS). */
  linkTimeoutMs?: number;
}

/**
 * How long a data link may take from connecting to its upgrade, and from its upgrade to its hello,
 * before it is refused (WsTransportOptions.linkTimeoutMs). It was 5 s: 256 workers starting on 2
 * cores (each a sliver of a core, its event loop busy with its own start) took longer than that to
 * send a hello after their upgrade, and the refused link failed the ring-up, a false fault in a
 * clean 10,240-card run.
 */
const LINK_TIMEOUT_MS = 30_000;
/**
 * A data frame under this many bytes is copied, with its WebSocket header, into one buffer and
 * written with one write; a larger one goes as a writev of its parts. A copy of 4 KiB costs less
 * than a writev's extra buffers (and Buffer.allocUnsafe takes it from Node's pool).
 */
const COPY_BELOW = 4096;
/** How long a refused connection may take to answer our close before it is cut. */
const CLOSE_GRACE_MS = 1_000;

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

export class WsTransport implements Transport {
  private server: WebSocketServer | null = null;
  private url = '';
  /** Where we send to each rank: the server side of the connection that rank opened to us. */
  private readonly outgoing = new Map<number, WebSocket>();
  /** The socket under each outgoing link's WebSocket: data frames are written to it directly. */
  private readonly sockets = new WeakMap<WebSocket, Socket>();
  /** The epoch each outgoing link was opened for (a peer may get its assignment before we do). */
  private readonly outgoingEpoch = new Map<WebSocket, number>();
  /** Where we receive from each rank: our client connection to that rank's server. */
  private readonly incoming = new Map<number, DataLinkClient>();
  private events: LinkEvents = { onFrame: () => {}, onLinkLost: () => {} };
  private outgoingWaiters: { rank: number; resolve: () => void }[] = [];
  private epoch = -1;
  private rank = -1;
  private pending = 0;
  private drainWaiters: { bytes: number; resolve: () => void }[] = [];
  private closed = false;
  /** Refused connections (their count: `rejected`), logged a few at a time. */
  private readonly refusals: RefusalLog;

  get rejected(): number {
    return this.refusals.count;
  }

  private get linkTimeoutMs(): number {
    return this.o.linkTimeoutMs ?? LINK_TIMEOUT_MS;
  }

  constructor(private readonly o: WsTransportOptions) {
    this.refusals = new RefusalLog((l) => this.closed || o.log(l));
  }

  get pool(): FramePool {
    return this.o.pool;
  }

  async listen(): Promise<string> {
    const { wss, port } = await listenGuarded({
      host: this.o.host,
      port: 0,
      maxPayload: this.o.maxPayload + FRAME_HEADER_BYTES,
      handshakeTimeoutMs: this.linkTimeoutMs,
      onHandshakeTimeout: (from) => this.refuse(null, new RingswarmError('RS_ERR_TIMEOUT', `no WebSocket upgrade within ${this.linkTimeoutMs} ms`), from),
      onConnection: (ws, req) => {
        this.sockets.set(ws, req.socket);
        this.accept(ws, req.socket.remoteAddress ?? '?');
      },
    });
    this.server = wss;
    this.url = `ws://${urlHost(this.o.advertise ?? this.o.host)}:${port}`;
    return this.url;
  }

  get dataUrl(): string {
    return this.url;
  }

  get pendingBytes(): number {
    return this.pending;
  }

  setEvents(events: LinkEvents): void {
    this.events = events;
  }

  /** Membership for the current epoch: links from older epochs are closed. */
  setEpoch(epoch: number, rank: number): void {
    const changed = epoch !== this.epoch || rank !== this.rank;
    this.epoch = epoch;
    this.rank = rank;
    if (!changed) return;
    for (const [r, ws] of this.outgoing) {
      if ((this.outgoingEpoch.get(ws) ?? -1) >= epoch) continue;
      this.outgoing.delete(r);
      ws.close(4004, 'RS_ERR_STALE_EPOCH: new epoch');
    }
    for (const [r, link] of this.incoming) {
      this.incoming.delete(r);
      link.shut(4004, 'RS_ERR_STALE_EPOCH: new epoch', false);
    }
  }

  /** Refuse a connection (`ws` null: it never finished its upgrade and is gone): counted, logged a few at a time, closed, then cut. */
  private refuse(ws: WebSocket | null, e: RingswarmError | string, from: string): void {
    this.refusals.refused(`data link from ${from} refused: ${typeof e === 'string' ? e : `${e.code}: ${e.message}`}`);
    if (!ws) return;
    if (typeof e !== 'string') ws.close(e.closeCode, closeReason(e));
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private accept(ws: WebSocket, from: string): void {
    let refused = false;
    let admitted = false;
    const reject = (e: RingswarmError | string) => {
      if (refused) return;
      refused = true;
      clearTimeout(timer);
      this.refuse(ws, e, from);
    };
    const timer = setTimeout(() => reject(new RingswarmError('RS_ERR_AUTH', `no hello within ${this.linkTimeoutMs} ms`)), this.linkTimeoutMs);
    ws.once('message', (data, isBinary) => {
      clearTimeout(timer);
      if (refused) return;
      try {
        if (isBinary) throw new RingswarmError('RS_ERR_PROTOCOL', 'binary data before hello');
        const hello = parseMessage(DataHello, toBytes(data).toString());
        if (hello.token !== this.o.token) throw new RingswarmError('RS_ERR_AUTH', 'wrong token');
        if (hello.version !== PROTOCOL_VERSION) throw new RingswarmError('RS_ERR_PROTOCOL', `protocol version ${hello.version}, expected ${PROTOCOL_VERSION}`);
        if (hello.epoch < this.epoch) throw new RingswarmError('RS_ERR_STALE_EPOCH', `hello for epoch ${hello.epoch}, current ${this.epoch}`);
        if (hello.fetch) {
          // Not a ring link: a replacement asks for the copy we keep of its checkpoint.
          const frames = this.fetchHandler?.(hello.fetch.owner, hello.fetch.step) ?? null;
          if (!frames) throw new RingswarmError('RS_ERR_PROTOCOL', `no copy of checkpoint ${hello.fetch.step} of cards from ${hello.fetch.owner} here`);
          for (const f of frames) ws.send(f);
          ws.close(1000, 'done');
          return;
        }
        admitted = true;
        this.outgoing.get(hello.rank)?.close(4008, 'RS_ERR_PROTOCOL: replaced by a newer link');
        this.outgoing.set(hello.rank, ws);
        this.outgoingEpoch.set(ws, hello.epoch);
        ws.once('message', () => {
          this.o.log(`rank ${hello.rank} sent a message on a sending link: closing it`);
          ws.close(4008, 'RS_ERR_PROTOCOL: unexpected message on a sending link');
        });
        ws.on('close', (code, reason) => {
          if (this.outgoing.get(hello.rank) !== ws) return;
          this.outgoing.delete(hello.rank);
          if (!this.closed) this.events.onLinkLost(hello.rank, `link to rank ${hello.rank} closed (${code} ${reason.toString()})`);
        });
        this.outgoingWaiters = this.outgoingWaiters.filter((w) => (w.rank === hello.rank ? (w.resolve(), false) : true));
      } catch (e) {
        reject(e instanceof RingswarmError ? e : new RingswarmError('RS_ERR_BAD_MESSAGE', String(e)));
      }
    });
    // Before hello, an error (a bad frame, an oversized one) is one more refused connection.
    ws.on('error', (e) => (admitted ? this.o.log(`data link error: ${e.message}`) : reject(`${e.message}`)));
  }

  async ring(epoch: number, rank: number, prev: PeerAddress, next: PeerAddress, timeoutMs: number, peers: readonly PeerAddress[] = []): Promise<void> {
    this.setEpoch(epoch, rank);
    if (prev.rank === rank) return; // a ring of one has no links
    const from = new Map([prev, ...peers].map((p) => [p.rank, p.dataUrl]));
    const to = new Set([next.rank, ...peers.map((p) => p.rank)]);
    await Promise.all([...[...from].map(([r, url]) => this.connectFrom(r, url, timeoutMs)), ...[...to].map((r) => this.waitForOutgoing(r, timeoutMs))]);
  }

  /** Resolves once `rank` has connected to us, so we can send to it. */
  waitForOutgoing(rank: number, timeoutMs: number): Promise<void> {
    if (this.outgoing.has(rank)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new RingswarmError('RS_ERR_TIMEOUT', `rank ${rank} did not connect within ${timeoutMs} ms`)), timeoutMs);
      this.outgoingWaiters.push({
        rank,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  /** Serves checkpoint copies to replacements that ask (set by the worker). */
  fetchHandler: ((owner: number, step: number) => Uint8Array[] | null) | null = null;

  /** Fetch, from the data server at `url`, the frames of its copy of `owner`'s checkpoint `step` (we are `owner`, in `epoch`). */
  fetchCheckpoint(url: string, epoch: number, owner: number, step: number, timeoutMs: number): Promise<Uint8Array[]> {
    const frames: Uint8Array[] = [];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        link.destroy();
        reject(new RingswarmError('RS_ERR_TIMEOUT', `checkpoint ${step} of rank ${owner} not fetched from ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      const link: DataLinkClient = new DataLinkClient({
        url,
        maxPayload: this.o.maxPayload + FRAME_HEADER_BYTES,
        timeoutMs,
        buffer: (n) => new Uint8Array(n),
        fragmented: (first) => new Uint8Array(first.length + Math.max(0, framePayloadLength(first))),
        onMessage: (m) => frames.push(m),
        onClose: (code, reason) => {
          clearTimeout(timer);
          if (code === 1000) resolve(frames);
          else reject(new RingswarmError('RS_ERR_PEER_LOST', `fetching checkpoint ${step} of rank ${owner} from ${url}: ${code} ${reason}`));
        },
      });
      const hello: DataHello = { type: 'data-hello', version: PROTOCOL_VERSION, token: this.o.token, epoch, rank: owner, fetch: { owner, step } };
      link.open(JSON.stringify(hello)).catch((e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  private readonly shapes = new Map<number, LinkShape>();

  /**
   * Fault injection on the link to `to`: drop everything (cut), or hold each frame `delayMs` and/or
   * pace frames to `bandwidth` bytes per second, for `ms` (null: for good). Order is kept.
   */
  shapeLink(to: number, shape: { cut?: boolean; delayMs?: number; bandwidth?: number }, ms: number | null): void {
    if (ms === 0) {
      this.shapes.delete(to); // back to normal
      return;
    }
    const s: LinkShape = { cut: shape.cut ?? false, delayMs: shape.delayMs ?? 0, bandwidth: shape.bandwidth ?? 0 };
    this.shapes.set(to, s);
    if (ms !== null) setTimeout(() => this.shapes.get(to) === s && this.shapes.delete(to), ms).unref();
  }

  /** Open the link on which we receive from `rank`. */
  async connectFrom(rank: number, url: string, timeoutMs: number): Promise<void> {
    const link: DataLinkClient = new DataLinkClient({
      url,
      maxPayload: this.o.maxPayload + FRAME_HEADER_BYTES,
      timeoutMs,
      buffer: (length) => (length >= FRAME_HEADER_BYTES ? this.o.pool.acquire(length - FRAME_HEADER_BYTES).frame : new Uint8Array(length)),
      // A frame sent as header + payload fragments: the header says how long the payload is.
      fragmented: (first) => {
        const n = first.length === FRAME_HEADER_BYTES ? framePayloadLength(first) : -1;
        return n >= 0 && n <= this.o.maxPayload ? this.o.pool.acquire(n).frame : new Uint8Array(first.length);
      },
      onMessage: (m) => this.events.onFrame(rank, m),
      onClose: (code, reason) => {
        if (this.incoming.get(rank) !== link) return;
        this.incoming.delete(rank);
        if (!this.closed) this.events.onLinkLost(rank, `link from rank ${rank} closed (${code} ${reason})`);
      },
    });
    const hello: DataHello = { type: 'data-hello', version: PROTOCOL_VERSION, token: this.o.token, epoch: this.epoch, rank: this.rank };
    this.incoming.set(rank, link);
    try {
      await link.open(JSON.stringify(hello));
    } catch (e) {
      if (this.incoming.get(rank) === link) this.incoming.delete(rank);
      throw e;
    }
  }

  dropLink(peer: number, closeCode: number, reason: string): void {
    const link = this.incoming.get(peer);
    if (!link) return;
    this.incoming.delete(peer);
    link.shut(closeCode, reason, false);
    if (!this.closed) this.events.onLinkLost(peer, `link from rank ${peer} closed by us: ${reason}`);
  }

  private model: LinkShape | null = null;
  /** Per link: when the last paced frame goes out (frames keep their order). */
  private readonly releaseAt = new Map<number, number>();

  /**
   * The emulated fabric on every outgoing link: each frame held `latencyMs` and paced to
   * `bandwidth` bytes/s (0: no cap), on top of which a fault's or straggler's shape adds its delay
   * and the lower cap. Node's timers fire at 1 ms granularity: latencies under 1 ms come out as
   * about 1 ms per frame.
   */
  setLinkModel(m: { latencyMs: number; bandwidth: number }): void {
    this.model = m.latencyMs > 0 || m.bandwidth > 0 ? { cut: false, delayMs: m.latencyMs, bandwidth: m.bandwidth } : null;
  }

  private shapeFor(to: number): LinkShape | null {
    const s = this.shapes.get(to);
    const m = this.model;
    if (!s || !m) return s ?? m;
    const caps = [s.bandwidth, m.bandwidth].filter((b) => b > 0);
    return { cut: s.cut, delayMs: s.delayMs + m.delayMs, bandwidth: caps.length ? Math.min(...caps) : 0 };
  }

  send(to: number, frame: Uint8Array | readonly [Uint8Array, Uint8Array], written?: (ok: boolean) => void): void {
    const shape = this.shapeFor(to);
    if (shape) {
      if (shape.cut) {
        written?.(true); // into the void, as on a cut cable
        return;
      }
      const bytes = frame instanceof Uint8Array ? frame.byteLength : frame[0].byteLength + frame[1].byteLength;
      const t = performance.now();
      const start = Math.max(t + shape.delayMs, this.releaseAt.get(to) ?? 0);
      const release = start + (shape.bandwidth > 0 ? (bytes / shape.bandwidth) * 1000 : 0);
      this.releaseAt.set(to, release);
      setTimeout(() => this.sendNow(to, frame, written), Math.max(0, release - t));
      return;
    }
    this.sendNow(to, frame, written);
  }

  private sendNow(to: number, frame: Uint8Array | readonly [Uint8Array, Uint8Array], written?: (ok: boolean) => void): void {
    const ws = this.outgoing.get(to);
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      written?.(false);
      this.events.onLinkLost(to, `no open link to rank ${to}`);
      return;
    }
    const n = frame instanceof Uint8Array ? frame.byteLength : frame[0].byteLength + frame[1].byteLength;
    this.pending += n;
    const done = (err?: Error | null) => {
      this.pending -= n;
      written?.(!err);
      if (this.drainWaiters.length) this.wakeDrained();
    };
    const socket = this.sockets.get(ws)!;
    const parts = frame instanceof Uint8Array ? [frame] : frame;
    if (n < COPY_BELOW) {
      const all = Buffer.allocUnsafe(frameHeaderBytes(n) + n);
      let at = writeFrameHeader(all, 0, WS_OPCODE.binary, n, false);
      for (const p of parts) {
        all.set(p, at);
        at += p.byteLength;
      }
      socket.write(all, done);
      return;
    }
    // One message, its parts in one writev (ws's own writes, a ping's pong or a close, go between
    // messages: a corked sequence is written whole).
    const head = Buffer.allocUnsafe(frameHeaderBytes(n));
    writeFrameHeader(head, 0, WS_OPCODE.binary, n, false);
    socket.cork();
    socket.write(head);
    for (let i = 0; i < parts.length; i++) socket.write(parts[i]!, i === parts.length - 1 ? done : undefined);
    socket.uncork();
  }

  private wakeDrained(): void {
    this.drainWaiters = this.drainWaiters.filter((w) => (this.pending <= w.bytes ? (w.resolve(), false) : true));
  }

  drained(bytes: number): Promise<void> {
    if (this.pending <= bytes || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push({ bytes, resolve }));
  }

  close(): void {
    this.refusals.flush();
    this.closed = true;
    for (const w of this.drainWaiters.splice(0)) w.resolve();
    for (const ws of this.outgoing.values()) ws.terminate();
    for (const link of this.incoming.values()) link.destroy();
    this.outgoing.clear();
    this.incoming.clear();
    for (const c of this.server?.clients ?? []) c.terminate();
    this.server?.close();
  }
}
