// The data-link WebSocket reader, fed raw bytes split at every possible point.
import { describe, expect, it } from 'vitest';
import { RingswarmError } from '../../src/protocol/errors.js';
import { Sender } from 'ws';
import { encodeClientFrame, frameHeaderBytes, writeFrameHeader, WS_OPCODE, WsFrameReader } from '../../src/protocol/ws-frames.js';

/** A server-to-client frame (unmasked), as ws would send it. */
function serverFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + ext + n);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (ext === 0) out[1] = n;
  else if (ext === 2) {
    out[1] = 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 127;
    new DataView(out.buffer).setUint32(6, n);
  }
  out.set(payload, 2 + ext);
  return out;
}

function collect(maxPayload = 1 << 20) {
  const messages: Uint8Array[] = [];
  const controls: [number, Uint8Array][] = [];
  const reader = new WsFrameReader(
    {
      binaryStart: (n) => new Uint8Array(n),
      // As the data link does: the first fragment announces the total (here: its first byte x 10).
      fragmented: (first) => new Uint8Array(first.length + (first[0] ?? 0) * 10),
      binaryEnd: (m) => messages.push(m),
      control: (op, p) => controls.push([op, p]),
    },
    maxPayload,
  );
  return { reader, messages, controls };
}

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('WsFrameReader', () => {
  it.each([0, 1, 125, 126, 127, 65535, 65536, 70000])('reads a %i-byte binary message whole', (n) => {
    const { reader, messages } = collect();
    const p = bytes(n);
    reader.push(serverFrame(WS_OPCODE.binary, p));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toEqual(p);
  });

  it('reads messages split at every byte boundary, and several in one read', () => {
    const stream = new Uint8Array([...serverFrame(2, bytes(300, 1)), ...serverFrame(9, bytes(3, 2)), ...serverFrame(2, bytes(5, 3)), ...serverFrame(2, new Uint8Array(0))]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const { reader, messages, controls } = collect();
      reader.push(stream.subarray(0, cut));
      reader.push(stream.subarray(cut));
      expect(messages.map((m) => m.length)).toEqual([300, 5, 0]);
      expect(messages[0]).toEqual(bytes(300, 1));
      expect(controls).toEqual([[WS_OPCODE.ping, bytes(3, 2)]]);
    }
    const { reader, messages } = collect();
    for (const b of stream) reader.push(Uint8Array.of(b));
    expect(messages).toHaveLength(3);
  });

  it('copies out of the read buffer before returning (the buffer is reused)', () => {
    const { reader, messages } = collect();
    const read = serverFrame(2, bytes(10));
    reader.push(read);
    read.fill(0);
    expect(messages[0]).toEqual(bytes(10));
  });

  it.each([
    ['a masked frame', Uint8Array.of(0x82, 0x81, 1, 2, 3, 4, 5), /masked frame/],
    ['reserved bits', Uint8Array.of(0xc2, 0x00), /reserved bits/],
    ['a continuation with no message', Uint8Array.of(0x80, 0x01, 7), /unexpected opcode 0/],
    ['a long first fragment', Uint8Array.of(0x02, 126, 0x04, 0x01), /first fragment of 1025 bytes/],
    ['a text message', serverFrame(1, bytes(2)), /unexpected opcode 1/],
    ['an oversized message', serverFrame(2, bytes(101)), /over the 100-byte limit/],
    ['a long control frame', Uint8Array.of(0x89, 126, 0, 200), /bad control frame/],
  ])('refuses %s with RS_ERR_BAD_FRAME, and stays failed', (_, raw, message) => {
    const { reader } = collect(100);
    let err: unknown;
    try {
      reader.push(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RingswarmError);
    expect((err as RingswarmError).code).toBe('RS_ERR_BAD_FRAME');
    expect((err as RingswarmError).message).toMatch(message);
    expect(() => reader.push(serverFrame(2, bytes(1)))).toThrow(RingswarmError);
  });

  it('joins a fragmented message (header fragment, payload fragments, a ping between), at every split', () => {
    const first = Uint8Array.of(3, 9, 9); // announces 30 more bytes
    const rest = bytes(30, 5);
    const stream = new Uint8Array([
      ...serverFrame(2, first, false),
      ...serverFrame(0, rest.subarray(0, 12), false),
      ...serverFrame(9, bytes(2, 7)),
      ...serverFrame(0, rest.subarray(12), true),
      ...serverFrame(2, bytes(4, 8)),
    ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const { reader, messages, controls } = collect();
      reader.push(stream.subarray(0, cut));
      reader.push(stream.subarray(cut));
      expect(messages).toHaveLength(2);
      expect(messages[0]).toEqual(new Uint8Array([...first, ...rest]));
      expect(messages[1]).toEqual(bytes(4, 8));
      expect(controls).toHaveLength(1);
    }
  });

  it('reads payloads placed directly by the caller (directTarget, advance)', () => {
    const { reader, messages } = collect();
    const p = bytes(5000);
    const f = serverFrame(2, p);
    reader.push(f.subarray(0, 4 + 100));
    const t = reader.directTarget(1000)!;
    expect(t.length).toBe(4900);
    t.set(p.subarray(100));
    reader.advance(4900);
    expect(messages[0]).toEqual(p);
    expect(reader.directTarget(1)).toBeNull();
  });

  it.each([
    ['fragments that overrun the message', [serverFrame(2, Uint8Array.of(1), false), serverFrame(0, bytes(11), true)], /overrun/],
    ['a message that ends short', [serverFrame(2, Uint8Array.of(1), false), serverFrame(0, bytes(9), true)], /ended after 10 of 11/],
    ['a new message inside a fragmented one', [serverFrame(2, Uint8Array.of(1), false), serverFrame(2, bytes(1))], /inside a fragmented message/],
  ])('refuses %s', (_, frames, message) => {
    const { reader } = collect();
    expect(() => frames.forEach((f) => reader.push(f))).toThrow(message);
  });

  it('refuses a sink buffer of the wrong size', () => {
    const reader = new WsFrameReader({ binaryStart: (n) => new Uint8Array(n + 1), fragmented: (f) => f, binaryEnd: () => {}, control: () => {} }, 100);
    expect(() => reader.push(serverFrame(2, bytes(4)))).toThrow(/sink gave 5 bytes/);
  });
});

describe('encodeClientFrame', () => {
  it('masks the payload and encodes every length form', () => {
    const mask = Uint8Array.of(1, 2, 3, 4);
    for (const n of [0, 5, 125, 126, 65535, 65536]) {
      const p = bytes(n);
      const f = encodeClientFrame(WS_OPCODE.text, p, mask);
      expect(f[0]).toBe(0x81);
      expect(f[1] & 0x80).toBe(0x80);
      const len7 = f[1] & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const dv = new DataView(f.buffer);
      const len = ext === 0 ? len7 : ext === 2 ? dv.getUint16(2) : dv.getUint32(6);
      expect(len).toBe(n);
      const m = f.subarray(2 + ext, 6 + ext);
      expect(m).toEqual(mask);
      const body = f.subarray(6 + ext).map((b, i) => b ^ mask[i & 3]);
      expect(body).toEqual(p);
    }
  });
});

describe('writeFrameHeader', () => {
  it("writes the server frame header ws writes, at an offset, for every length form", () => {
    for (const n of [0, 1, 125, 126, 4095, 65535, 65536, 1 << 24]) {
      const [wsHeader] = Sender.frame(Buffer.alloc(n), { fin: true, opcode: WS_OPCODE.binary, mask: false, readOnly: false, rsv1: false });
      expect(frameHeaderBytes(n)).toBe(wsHeader.length);
      const out = new Uint8Array(3 + wsHeader.length).fill(0xee);
      expect(writeFrameHeader(out, 3, WS_OPCODE.binary, n, false)).toBe(3 + wsHeader.length);
      expect(out.subarray(0, 3)).toEqual(Uint8Array.of(0xee, 0xee, 0xee));
      expect(Buffer.from(out.subarray(3))).toEqual(wsHeader);
    }
  });

  it('is read back by the reader as one binary message', () => {
    const payload = bytes(300);
    const frame = new Uint8Array(frameHeaderBytes(300) + 300);
    frame.set(payload, writeFrameHeader(frame, 0, WS_OPCODE.binary, 300, false));
    const got: Uint8Array[] = [];
    const reader = new WsFrameReader({ binaryStart: (n) => new Uint8Array(n), fragmented: (f) => f, binaryEnd: (m) => got.push(m), control: () => {} }, 1000);
    reader.push(frame);
    expect(got).toEqual([payload]);
  });
});
