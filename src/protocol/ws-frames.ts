// The receiving side of a WebSocket data link, as a state machine over raw bytes (RFC 6455 §5).
// Server-to-client frames are unmasked, so a binary message's payload can be copied straight from
// the socket's read buffer into a buffer of the caller's choosing: no allocation per message and
// one copy, which is what lets the data plane keep up with a raw TCP ring. Pure: bytes in, calls out.
import { RingswarmError } from './errors.js';

export const WS_OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface WsReaderSink {
  /** A binary message of `length` bytes starts: return where to put it (exactly `length` bytes). */
  binaryStart(length: number): Uint8Array;
  /** The buffer returned by binaryStart is complete. */
  binaryEnd(message: Uint8Array): void;
  /** A control frame (close, ping, pong), payload copied. */
  control(opcode: number, payload: Uint8Array): void;
}

const enum State {
  Header,
  Payload,
  Control,
}

export class WsFrameReader {
  private state = State.Header;
  private readonly head = new Uint8Array(14);
  private headLen = 0;
  private target: Uint8Array | null = null;
  private filled = 0;
  private opcode = 0;
  private controlBuf = new Uint8Array(0);
  failed: RingswarmError | null = null;

  constructor(
    private readonly sink: WsReaderSink,
    private readonly maxPayload: number,
  ) {}

  /** Feed bytes as they arrive. Bytes are copied out before returning. Throws on a protocol violation. */
  push(bytes: Uint8Array): void {
    if (this.failed) throw this.failed;
    let i = 0;
    const n = bytes.length;
    while (i < n) {
      if (this.state === State.Header) {
        // Collect the 2..14 header bytes, which a read may split anywhere.
        const need = this.headerNeed();
        const take = Math.min(need - this.headLen, n - i);
        this.head.set(bytes.subarray(i, i + take), this.headLen);
        this.headLen += take;
        i += take;
        if (this.headLen === this.headerNeed()) this.startFrame();
        continue;
      }
      const buf = this.state === State.Payload ? this.target! : this.controlBuf;
      const take = Math.min(buf.length - this.filled, n - i);
      buf.set(bytes.subarray(i, i + take), this.filled);
      this.filled += take;
      i += take;
      if (this.filled === buf.length) this.endFrame();
    }
  }

  private headerNeed(): number {
    if (this.headLen < 2) return 2;
    const len7 = this.head[1] & 0x7f;
    const masked = (this.head[1] & 0x80) !== 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  private fail(message: string): never {
    this.failed = new RingswarmError('RS_ERR_BAD_FRAME', message);
    throw this.failed;
  }

  private startFrame(): void {
    const b0 = this.head[0];
    const b1 = this.head[1];
    const fin = (b0 & 0x80) !== 0;
    if ((b0 & 0x70) !== 0) this.fail('reserved bits set (no extension was negotiated)');
    if ((b1 & 0x80) !== 0) this.fail('masked frame from the server');
    const opcode = b0 & 0x0f;
    const len7 = b1 & 0x7f;
    let length = len7;
    if (len7 === 126) length = (this.head[2] << 8) | this.head[3];
    else if (len7 === 127) {
      const hi = ((this.head[2] << 24) | (this.head[3] << 16) | (this.head[4] << 8) | this.head[5]) >>> 0;
      const lo = ((this.head[6] << 24) | (this.head[7] << 16) | (this.head[8] << 8) | this.head[9]) >>> 0;
      length = hi * 2 ** 32 + lo;
    }
    this.headLen = 0;
    this.filled = 0;
    this.opcode = opcode;
    if (opcode >= 0x8) {
      if (!fin || length > 125) this.fail(`bad control frame (opcode ${opcode}, length ${length})`);
      this.controlBuf = new Uint8Array(length);
      this.state = State.Control;
    } else if (opcode === WS_OPCODE.binary) {
      // Data frames are sent whole; fragmentation is never used on a data link.
      if (!fin) this.fail('fragmented binary message');
      if (length > this.maxPayload) this.fail(`message of ${length} bytes is over the ${this.maxPayload}-byte limit`);
      this.target = this.sink.binaryStart(length);
      if (this.target.length !== length) this.fail(`sink gave ${this.target.length} bytes for a ${length}-byte message`);
      this.state = State.Payload;
    } else {
      this.fail(`unexpected opcode ${opcode} on a data link`);
    }
    if (length === 0) this.endFrame();
  }

  private endFrame(): void {
    if (this.state === State.Payload) {
      const t = this.target!;
      this.target = null;
      this.state = State.Header;
      this.sink.binaryEnd(t);
    } else {
      const p = this.controlBuf;
      this.state = State.Header;
      this.sink.control(this.opcode, p);
    }
  }
}

/** A client-to-server frame (always masked, RFC 6455 §5.3), for the few small messages a reader sends. */
export function encodeClientFrame(opcode: number, payload: Uint8Array, mask: Uint8Array): Uint8Array {
  if (mask.length !== 4) throw new RangeError('mask must be 4 bytes');
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + ext + 4 + n);
  out[0] = 0x80 | opcode;
  if (ext === 0) out[1] = 0x80 | n;
  else if (ext === 2) {
    out[1] = 0x80 | 126;
    out[2] = n >>> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    const hi = Math.floor(n / 2 ** 32);
    out[2] = hi >>> 24;
    out[3] = (hi >>> 16) & 0xff;
    out[4] = (hi >>> 8) & 0xff;
    out[5] = hi & 0xff;
    out[6] = n >>> 24;
    out[7] = (n >>> 16) & 0xff;
    out[8] = (n >>> 8) & 0xff;
    out[9] = n & 0xff;
  }
  const m = 2 + ext;
  out.set(mask, m);
  for (let i = 0; i < n; i++) out[m + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}
