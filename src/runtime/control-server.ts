// The coordinator's control server: a WebSocket server where workers say hello with the job token.
// It checks the hello at the door (token, protocol version, a spawned worker is one we started, no
// duplicate id) and hands each accepted worker on as a typed channel; everything else is refused
// with a stable code and close code, and counted.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_VERSION, WorkerMessage, type CoordinatorMessage } from '../protocol/control.js';
import { closeReason, RingswarmError } from '../protocol/errors.js';
import { wsChannel, type Channel } from './channel.js';

export type Hello = Extract<WorkerMessage, { type: 'hello' }>;
export type ControlChannel = Channel<WorkerMessage, CoordinatorMessage>;

export interface ControlServerOptions {
  host: string;
  port: number;
  token?: string;
  log: (line: string) => void;
  /** Whether a hello that says it was spawned names a process we started. */
  isSpawned(workerId: string, pid: number): boolean;
}

const HELLO_TIMEOUT_MS = 5_000;

export class ControlServer {
  readonly token: string;
  url = '';
  /** Connections refused at the door. */
  rejected = 0;
  private server: WebSocketServer | null = null;
  private readonly open = new Set<string>();
  /** An accepted worker: its hello, and its channel with the hello already read (set its handlers). */
  onHello: (hello: Hello, channel: ControlChannel) => void = () => {};

  constructor(private readonly o: ControlServerOptions) {
    this.token = o.token ?? randomBytes(16).toString('hex');
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
    this.url = `ws://${this.o.host}:${port}`;
    return this.url;
  }

  private reject(ws: WebSocket, e: RingswarmError, from: string): void {
    this.rejected++;
    this.o.log(`connection from ${from} refused: ${e.code}: ${e.message}`);
    ws.close(e.closeCode, closeReason(e));
  }

  private accept(ws: WebSocket, from: string): void {
    const channel = wsChannel<WorkerMessage, CoordinatorMessage>(ws, WorkerMessage, (l) => {
      if (l.startsWith('control message rejected')) this.rejected++;
      this.o.log(`from ${from}: ${l}`);
    });
    const timer = setTimeout(() => this.reject(ws, new RingswarmError('RS_ERR_AUTH', `no hello within ${HELLO_TIMEOUT_MS} ms`), from), HELLO_TIMEOUT_MS);
    channel.setHandlers({
      onMessage: (msg) => {
        clearTimeout(timer);
        if (msg.type !== 'hello') return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `expected hello, got ${msg.type}`), from);
        if (msg.token !== this.token) return this.reject(ws, new RingswarmError('RS_ERR_AUTH', 'wrong token'), from);
        if (msg.version !== PROTOCOL_VERSION) {
          return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `protocol version ${msg.version}, expected ${PROTOCOL_VERSION}`), from);
        }
        if (msg.spawned && !this.o.isSpawned(msg.workerId, msg.pid)) return this.reject(ws, new RingswarmError('RS_ERR_AUTH', `no spawned worker ${msg.workerId} with pid ${msg.pid}`), from);
        if (this.open.has(msg.workerId)) return this.reject(ws, new RingswarmError('RS_ERR_PROTOCOL', `worker id ${msg.workerId} already joined`), from);
        this.open.add(msg.workerId);
        ws.once('close', () => this.open.delete(msg.workerId));
        this.onHello(msg, channel);
      },
      onClose: () => clearTimeout(timer),
    });
  }

  async close(): Promise<void> {
    for (const c of this.server?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }
}
