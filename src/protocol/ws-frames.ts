// The receiving side of a WebSocket data link, as a state machine over raw bytes (RFC 6455 §5).
// Server-to-client frames are unmasked, so a binary message's payload can be copied straight from
// the socket's read buffer into a buffer of the caller's choosing: no allocation per message and
// one copy, which is what lets the data plane keep up with a raw TCP ring. Pure: bytes in, calls out.
import { RingswarmError } from './errors.js';

export const WS_OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface WsReaderSink {
  /** A binary message of `length` bytes starts: return where to put it (exactly `length` bytes). */
  binaryStart(length: number): Uint8Array;
  /**
   * A binary message sent in fragments: `first` is its first fragment (at most 1 KiB). Return a
   * buffer for the whole message, which only the sink can size (a data frame's header says how
   * long its payload is); the reader copies `first` to its start and the rest after it.
   */
  fragmented(first: Uint8Array): Uint8Array;
  /** The buffer returned by binaryStart is complete. */
  binaryEnd(message: Uint8Array): void;
  /** A control frame (close, ping, pong), payload copied. */
  control(opcode: number, payload: Uint8Array): void;
}

const enum State {
  Header,
  /** Payload bytes of a binary message (or of one of its fragments) going into the sink's buffer. */
  Payload,
  Control,
  /** The first fragment of a fragmented binary message. */
  First,
}

const MAX_FIRST_FRAGMENT = 1024;

export class WsFrameReader {
  private state = State.Header;
  private readonly head = new Uint8Array(14);
  private headLen = 0;
  /** The message being filled, how much of it is, and where the current fragment ends. */
  private target: Uint8Array | null = null;
  private filled = 0;
  private fragmentEnd = 0;
  private fragmented = false;
  private finalFragment = true;
  /** A control frame or a first fragment: small, copied. */
  private small = new Uint8Array(0);
  private smallFilled = 0;
  private smallOpcode = 0;
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
        const take = Math.min(this.headerNeed() - this.headLen, n - i);
        this.head.set(bytes.subarray(i, i + take), this.headLen);
        this.headLen += take;
        i += take;
        if (this.headLen === this.headerNeed()) this.startFrame();
      } else if (this.state === State.Payload) {
        const take = Math.min(this.fragmentEnd - this.filled, n - i);
        this.target!.set(bytes.subarray(i, i + take), this.filled);
        i += take;
        this.advance(take);
      } else {
        const take = Math.min(this.small.length - this.smallFilled, n - i);
        this.small.set(bytes.subarray(i, i + take), this.smallFilled);
        this.smallFilled += take;
        i += take;
        if (this.smallFilled === this.small.length) this.endSmall();
      }
    }
  }

  /**
   * Where the next socket read may go directly (the rest of the current fragment's payload, if at
   * least `min` bytes), so large payloads skip the copy out of a read buffer; else null. After a
   * read into it, call `advance(n)` instead of `push`.
   */
  directTarget(min: number): Uint8Array | null {
    if (this.state !== State.Payload || this.failed) return null;
    return this.fragmentEnd - this.filled >= min ? this.target!.subarray(this.filled, this.fragmentEnd) : null;
  }

  /** `n` payload bytes were placed at directTarget(). */
  advance(n: number): void {
    this.filled += n;
    if (this.filled === this.fragmentEnd) this.endPayload();
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
    if (opcode >= 0x8) {
      // Control frames may come between the fragments of a message; they do not disturb it.
      if (!fin || length > 125) this.fail(`bad control frame (opcode ${opcode}, length ${length})`);
      this.startSmall(State.Control, opcode, length);
    } else if (opcode === WS_OPCODE.binary && !this.fragmented) {
      if (!fin) {
        if (length > MAX_FIRST_FRAGMENT) this.fail(`first fragment of ${length} bytes (at most ${MAX_FIRST_FRAGMENT})`);
        this.fragmented = true;
        this.startSmall(State.First, opcode, length);
        return;
      }
      if (length > this.maxPayload) this.fail(`message of ${length} bytes is over the ${this.maxPayload}-byte limit`);
      const t = this.sink.binaryStart(length);
      if (t.length !== length) this.fail(`sink gave ${t.length} bytes for a ${length}-byte message`);
      this.target = t;
      this.filled = 0;
      this.startPayload(length, true);
    } else if (opcode === WS_OPCODE.continuation && this.fragmented) {
      const size = this.target!.length;
      if (this.filled + length > size) this.fail(`fragments overrun the ${size}-byte message`);
      if (fin && this.filled + length !== size) this.fail(`message ended after ${this.filled + length} of ${size} bytes`);
      this.startPayload(this.filled + length, fin);
    } else {
      this.fail(`unexpected opcode ${opcode} on a data link${this.fragmented ? ' inside a fragmented message' : ''}`);
    }
  }

  private startSmall(state: State, opcode: number, length: number): void {
    this.state = state;
    this.smallOpcode = opcode;
    this.small = new Uint8Array(length);
    this.smallFilled = 0;
    if (length === 0) this.endSmall();
  }

  private startPayload(end: number, final: boolean): void {
    this.state = State.Payload;
    this.fragmentEnd = end;
    this.finalFragment = final;
    if (this.filled === end) this.endPayload();
  }

  private endSmall(): void {
    const small = this.small;
    if (this.state === State.Control) {
      this.state = State.Header;
      this.sink.control(this.smallOpcode, small);
      return;
    }
    const t = this.sink.fragmented(small);
    if (t.length < small.length || t.length > this.maxPayload) this.fail(`sink gave ${t.length} bytes for a fragmented message`);
    t.set(small);
    this.target = t;
    this.filled = small.length;
    this.state = State.Header;
  }

  private endPayload(): void {
    this.state = State.Header;
    if (!this.finalFragment) return;
    this.fragmented = false;
    const t = this.target!;
    this.target = null;
    this.sink.binaryEnd(t);
  }
}

/** Bytes of a frame header (RFC 6455 §5.2) for a payload of `n` bytes, without the mask key. */
export function frameHeaderBytes(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}

/**
 * Write a final frame's header for a payload of `n` bytes at `out[at..]` (frameHeaderBytes(n) of
 * them; the mask bit set when `masked`, the key itself is the caller's). Returns where it ends.
 */
export function writeFrameHeader(out: Uint8Array, at: number, opcode: number, n: number, masked: boolean): number {
  const m = masked ? 0x80 : 0;
  out[at] = 0x80 | opcode;
  if (n < 126) {
    out[at + 1] = m | n;
    return at + 2;
  }
  if (n < 65536) {
    out[at + 1] = m | 126;
    out[at + 2] = n >>> 8;
    out[at + 3] = n & 0xff;
    return at + 4;
  }
  out[at + 1] = m | 127;
  const hi = Math.floor(n / 2 ** 32);
  out[at + 2] = hi >>> 24;
  out[at + 3] = (hi >>> 16) & 0xff;
  out[at + 4] = (hi >>> 8) & 0xff;
  out[at + 5] = hi & 0xff;
  out[at + 6] = n >>> 24;
  out[at + 7] = (n >>> 16) & 0xff;
  out[at + 8] = (n >>> 8) & 0xff;
  out[at + 9] = n & 0xff;
  return at + 10;
}

/** A client-to-server frame (always masked, RFC 6455 §5.3), for the few small messages a reader sends. */
export function encodeClientFrame(opcode: number, payload: Uint8Array, mask: Uint8Array): Uint8Array {
  if (mask.length !== 4) throw new RangeError('mask must be 4 bytes');
  const n = payload.length;
  const out = new Uint8Array(frameHeaderBytes(n) + 4 + n);
  const m = writeFrameHeader(out, 0, opcode, n, true);
  out.set(mask, m);
  for (let i = 0; i < n; i++) out[m + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}
