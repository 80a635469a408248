// The coordinator's control server: a WebSocket server where workers say hello with the job token.
// It checks the hello at the door (token, protocol version, no duplicate id, and whatever the caller
// adds: a spawned worker is one we started, the job is not full) and hands each admitted worker on
// as a typed channel. Everything else is refused with a stable code and close code, counted, and
// logged a few at a time; an upgrade or a hello that takes too long is cut off.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';
import { PROTOCOL_VERSION, WorkerMessage, type CoordinatorMessage } from '../protocol/control.js';
import { closeReason, RingswarmError } from '../protocol/errors.js';
import { wsChannel, type Channel } from './channel.js';
import { RefusalLog } from './refusal-log.js';
import { HANDSHAKE_TIMEOUT_MS, listenGuarded, urlHost } from './ws-server.js';

export type Hello = Extract<WorkerMessage, { type: 'hello' }>;
export type ControlChannel = Channel<WorkerMessage, CoordinatorMessage>;

export interface ControlServerOptions {
  host: string;
  port: number;
  /** The address workers dial (the URL's), when not `host` (binding 0.0.0.0, say). */
  advertise?: string;
  token?: string;
  log: (line: string) => void;
}

const HELLO_TIMEOUT_MS = 5_000;
/** How long a refused connection may take to answer our close before it is cut. */
const CLOSE_GRACE_MS = 1_000;

export class ControlServer {
  readonly token: string;
  url = '';
  private server: WebSocketServer | null = null;
  private readonly open = new Set<string>();
  private closing = false;
  private readonly refusals: RefusalLog;
  /**
   * A hello that passed the door's checks. Return an error to refuse it; otherwise set the
   * channel's handlers (the hello itself has been read).
   */
  onHello: (hello: Hello, channel: ControlChannel) => RingswarmError | void = () => {};
  /** Plain HTTP on the control port (the operator's requests); without it, 426 Upgrade Required. */
  onRequest: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  constructor(private readonly o: ControlServerOptions) {
    this.token = o.token ?? randomBytes(16).toString('hex');
    // Refusals are logged a few at a time (an attack makes thousands), and not once the job is closing.
    this.refusals = new RefusalLog((l) => this.closing || o.log(l));
  }

  /** A request refused outside the WebSocket door (an operator's without the token): counted and logged with the rest. */
  noteRefused(line: string): void {
    this.refusals.refused(line);
  }

  /** Connections refused at the door (a member's bad message later is that member lost, not a refusal). */
  get rejected(): number {
    return this.refusals.count;
  }

  async listen(): Promise<string> {
    let listening: { wss: WebSocketServer; port: number };
    try {
      listening = await listenGuarded({
        host: this.o.host,
        port: this.o.port,
        maxPayload: 64 << 20,
        onHandshakeTimeout: (from) => this.refuse(null, new RingswarmError('RS_ERR_TIMEOUT', `no WebSocket upgrade within ${HANDSHAKE_TIMEOUT_MS} ms`), from),
        onConnection: (ws, req) => this.accept(ws, req.socket.remoteAddress ?? '?'),
        onRequest: this.onRequest && ((req, res) => this.onRequest!(req, res)),
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') throw new Error(`control port ${this.o.port} on ${this.o.host} is already in use (another coordinator?)`, { cause: e });
      throw e;
    }
    this.server = listening.wss;
    this.url = `ws://${urlHost(this.o.advertise ?? this.o.host)}:${listening.port}`;
    return this.url;
  }

  /**
   * Refuse a connection not admitted: counted, logged (the first few, then summed up), closed, and
   * cut off if its peer does not answer the close. `ws` null: it never finished its upgrade and is
   * already destroyed; a string: the channel already closed it for a malformed message.
   */
  private refuse(ws: WebSocket | null, e: RingswarmError | string, from: string): void {
    this.refusals.refused(`connection from ${from} refused: ${typeof e === 'string' ? e : `${e.code}: ${e.message}`}`);
    if (!ws) return;
    if (typeof e !== 'string') ws.close(e.closeCode, closeReason(e));
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private accept(ws: WebSocket, from: string): void {
    let admitted: string | null = null;
    let refused = false;
    const refuse = (e: RingswarmError | string) => {
      if (refused) return;
      refused = true;
      clearTimeout(timer);
      this.refuse(ws, e, from);
    };
    const channel = wsChannel<WorkerMessage, CoordinatorMessage>(ws, WorkerMessage, (l) => {
      if (admitted) this.o.log(`from ${admitted} (${from}): ${l}`);
      else refuse(l);
    });
    const timer = setTimeout(() => refuse(new RingswarmError('RS_ERR_AUTH', `no hello within ${HELLO_TIMEOUT_MS} ms`)), HELLO_TIMEOUT_MS);
    channel.setHandlers({
      onMessage: (msg) => {
        if (refused || admitted) return;
        clearTimeout(timer);
        if (msg.type !== 'hello') return refuse(new RingswarmError('RS_ERR_PROTOCOL', `expected hello, got ${msg.type}`));
        if (msg.token !== this.token) return refuse(new RingswarmError('RS_ERR_AUTH', 'wrong token'));
        if (msg.version !== PROTOCOL_VERSION) return refuse(new RingswarmError('RS_ERR_PROTOCOL', `protocol version ${msg.version}, expected ${PROTOCOL_VERSION}`));
        if (this.open.has(msg.workerId)) return refuse(new RingswarmError('RS_ERR_PROTOCOL', `worker id ${msg.workerId} already joined`));
        const no = this.onHello(msg, channel);
        if (no) return refuse(no);
        admitted = msg.workerId;
        this.open.add(msg.workerId);
        ws.once('close', () => this.open.delete(msg.workerId));
      },
      onClose: () => clearTimeout(timer),
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.refusals.flush();
    this.refusals.stop();
    for (const c of this.server?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }
}
