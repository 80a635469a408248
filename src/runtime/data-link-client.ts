// The receiving end of a data link: a WebSocket client written for one job, receiving binary
// messages straight from a fixed read buffer (net's `onread`) into pooled frame buffers. `ws`
// would allocate two fresh buffers per message (its 64 KiB reads and the message it joins them
// into), which on this machine cost a major GC every few tens of MiB received.
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { RingswarmError } from '../protocol/errors.js';
import { encodeClientFrame, WS_OPCODE, WsFrameReader } from '../protocol/ws-frames.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const READ_BUFFER_BYTES = 256 << 10;
const DIRECT_READ_MIN_BYTES = 16 << 10;

export interface DataLinkClientOptions {
  url: string;
  maxPayload: number;
  timeoutMs: number;
  /** Where a message of `length` bytes goes (a pooled frame). */
  buffer(length: number): Uint8Array;
  /** Where a message sent in fragments goes, given its first fragment (a data frame's header). */
  fragmented(first: Uint8Array): Uint8Array;
  onMessage(message: Uint8Array): void;
  onClose(code: number, reason: string): void;
}

export class DataLinkClient {
  private socket: Socket | null = null;
  private closed = false;

  constructor(private readonly o: DataLinkClientOptions) {}

  /** Connect and complete the opening handshake; then send `hello` as a text message. */
  open(hello: string): Promise<void> {
    const u = new URL(this.o.url);
    if (u.protocol !== 'ws:') return Promise.reject(new RingswarmError('RS_ERR_PROTOCOL', `data URL ${this.o.url} is not ws://`));
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    let handshake: Buffer | null = Buffer.alloc(0);
    const reader = new WsFrameReader(
      {
        binaryStart: (length) => this.o.buffer(length),
        fragmented: (first) => this.o.fragmented(first),
        binaryEnd: (m) => this.o.onMessage(m),
        control: (opcode, payload) => this.control(opcode, payload),
      },
      this.o.maxPayload,
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new RingswarmError('RS_ERR_TIMEOUT', `no WebSocket handshake from ${this.o.url} within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return this.shut(1006, e.message);
        settled = true;
        clearTimeout(timer);
        this.shut(1006, e.message, false);
        reject(e);
      };
      const onBytes = (bytes: Uint8Array) => {
        if (handshake) {
          handshake = Buffer.concat([handshake, bytes]);
          const end = handshake.indexOf('\r\n\r\n');
          if (end < 0) {
            if (handshake.length > 16 << 10) fail(new RingswarmError('RS_ERR_PROTOCOL', 'handshake response too long'));
            return;
          }
          const head = handshake.subarray(0, end).toString('latin1').split('\r\n');
          const rest = handshake.subarray(end + 4);
          handshake = null;
          const headers = new Map(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
          if (!/^HTTP\/1\.1 101/.test(head[0])) return fail(new RingswarmError('RS_ERR_PROTOCOL', `handshake refused: ${head[0]}`));
          if (headers.get('sec-websocket-accept') !== accept) return fail(new RingswarmError('RS_ERR_PROTOCOL', 'handshake with a wrong Sec-WebSocket-Accept'));
          settled = true;
          clearTimeout(timer);
          this.write(WS_OPCODE.text, Buffer.from(hello));
          resolve();
          if (rest.length) onBytes(rest);
          return;
        }
        try {
          reader.push(bytes);
        } catch (e) {
          const err = e instanceof RingswarmError ? e : new RingswarmError('RS_ERR_BAD_FRAME', String(e));
          this.shut(err.closeCode, `${err.code}: ${err.message}`);
        }
      };
      // Large payloads are read by the kernel straight into their frame buffer (the rest of the
      // message in progress); headers and small frames go through one reused read buffer.
      const scratch = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      let direct: Uint8Array | null = null;
      const socket = connect({
        host: u.hostname,
        port: Number(u.port),
        noDelay: true,
        onread: {
          buffer: () => {
            direct = handshake ? null : reader.directTarget(DIRECT_READ_MIN_BYTES);
            return direct ?? scratch;
          },
          callback: (nread: number, buf: Uint8Array) => {
            if (direct !== null && buf.buffer === direct.buffer && buf.byteOffset === direct.byteOffset) {
              direct = null;
              try {
                reader.advance(nread);
              } catch (e) {
                const err = e instanceof RingswarmError ? e : new RingswarmError('RS_ERR_BAD_FRAME', String(e));
                this.shut(err.closeCode, `${err.code}: ${err.message}`);
              }
            } else {
              onBytes(buf.subarray(0, nread));
            }
            return true;
          },
        },
      });
      this.socket = socket;
      socket.on('connect', () => {
        socket.write(
          `GET ${u.pathname || '/'} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      socket.on('error', (e) => fail(new RingswarmError('RS_ERR_PEER_LOST', `data link ${this.o.url}: ${e.message}`)));
      socket.on('close', () => {
        if (!settled) fail(new RingswarmError('RS_ERR_PEER_LOST', `data link ${this.o.url} closed during the handshake`));
        else this.shut(1006, 'connection lost');
      });
    });
  }

  private control(opcode: number, payload: Uint8Array): void {
    if (opcode === WS_OPCODE.ping) this.write(WS_OPCODE.pong, payload);
    else if (opcode === WS_OPCODE.close) {
      const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
      const reason = Buffer.from(payload.subarray(2)).toString();
      this.shut(code, reason);
    }
  }

  private write(opcode: number, payload: Uint8Array): void {
    if (this.socket && !this.socket.destroyed) this.socket.write(encodeClientFrame(opcode, payload, randomBytes(4)));
  }

  /** Close with a close frame (best effort), then end the socket; reports onClose once. */
  shut(code: number, reason: string, notify = true): void {
    if (this.closed) return;
    this.closed = true;
    const r = Buffer.from(reason).subarray(0, 123);
    const body = Buffer.alloc(2 + r.length);
    body.writeUInt16BE(code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 ? code : 1000, 0);
    r.copy(body, 2);
    this.write(WS_OPCODE.close, body);
    this.socket?.end();
    setTimeout(() => this.socket?.destroy(), 1000).unref();
    if (notify) this.o.onClose(code, reason);
  }

  /** Close now, without a handshake. */
  destroy(): void {
    this.closed = true;
    this.socket?.destroy();
  }
}
