import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { RingswarmError } from '../../src/protocol/errors.js';
import {
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  FRAME_VERSION,
  allocFrame,
  decodeFrame,
  encodeFrame,
  payloadChecksum,
  rewriteFrameHeader,
  sealFrame,
  type FrameFields,
  type Phase,
} from '../../src/protocol/frame.js';

const MAX = 1 << 20;

interface RawHeader {
  magic: number;
  version: number;
  phase: number;
  epoch: number;
  opSeq: number;
  step: number;
  chunk: number;
  offset: number;
  length: number;
  checksum: number;
  src: number;
  reserved: number;
}

/** Builds a frame byte by byte, independently of the codec under test. */
function rawFrame(payload: Uint8Array, over: Partial<RawHeader> = {}): Buffer {
  const h: RawHeader = {
    magic: 0x5352,
    version: 1,
    phase: 0,
    epoch: 7,
    opSeq: 42,
    step: 3,
    chunk: 5,
    offset: 1024,
    length: payload.length,
    checksum: crc32c(payload) >>> 0,
    src: 2,
    reserved: 0,
    ...over,
  };
  const b = Buffer.alloc(40 + payload.length);
  b.writeUInt16LE(h.magic, 0);
  b.writeUInt8(h.version, 2);
  b.writeUInt8(h.phase, 3);
  b.writeUInt32LE(h.epoch, 4);
  b.writeUInt32LE(h.opSeq, 8);
  b.writeUInt32LE(h.step, 12);
  b.writeUInt32LE(h.chunk, 16);
  b.writeUInt32LE(h.offset, 20);
  b.writeUInt32LE(h.length, 24);
  b.writeUInt32LE(h.checksum, 28);
  b.writeUInt32LE(h.src, 32);
  b.writeUInt32LE(h.reserved, 36);
  Buffer.from(payload).copy(b, 40);
  return b;
}

const payload = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);

function fields(phase: Phase = 'reduce-scatter'): FrameFields {
  return { phase, epoch: 7, opSeq: 42, step: 3, chunk: 5, offset: 1024, src: 2 };
}

function decodeError(frame: Uint8Array, maxPayload = MAX): RingswarmError {
  try {
    decodeFrame(frame, { maxPayload });
  } catch (e) {
    expect(e).toBeInstanceOf(RingswarmError);
    return e as RingswarmError;
  }
  throw new Error('decodeFrame accepted a bad frame');
}

describe('constants', () => {
  it('match the documented layout', () => {
    expect(FRAME_HEADER_BYTES).toBe(40);
    expect(FRAME_MAGIC).toBe(0x5352);
    expect(FRAME_VERSION).toBe(1);
  });
});

describe('encode and decode', () => {
  it.each([
    ['reduce-scatter', 0],
    ['all-gather', 1],
    ['broadcast', 2],
    ['checkpoint', 3],
  ] as const)('round-trips phase %s (wire number %d), byte for byte', (phase, wire) => {
    const frame = encodeFrame(fields(phase), payload);
    expect(Buffer.from(frame).equals(rawFrame(payload, { phase: wire }))).toBe(true);
    const { header, payload: out } = decodeFrame(frame, { maxPayload: MAX });
    expect(header).toEqual({ ...fields(phase), length: 64, checksum: crc32c(payload) >>> 0 });
    expect(Buffer.from(out).equals(Buffer.from(payload))).toBe(true);
  });

  it('decodes a frame built from raw bytes', () => {
    const { header } = decodeFrame(rawFrame(payload, { phase: 1, epoch: 0xffffffff, src: 4095 }), { maxPayload: MAX });
    expect(header.phase).toBe('all-gather');
    expect(header.epoch).toBe(0xffffffff);
    expect(header.src).toBe(4095);
  });

  it('returns the payload as a view of the input, not a copy', () => {
    const frame = encodeFrame(fields(), payload);
    const { payload: out } = decodeFrame(frame, { maxPayload: MAX });
    expect(out.buffer).toBe(frame.buffer);
    expect(out.byteOffset).toBe(frame.byteOffset + 40);
    frame[40] ^= 0xff;
    expect(out[0]).toBe(payload[0]! ^ 0xff);
  });

  it('handles a zero-length payload', () => {
    const frame = encodeFrame(fields('broadcast'), new Uint8Array(0));
    expect(frame.length).toBe(40);
    const { header, payload: out } = decodeFrame(frame, { maxPayload: 0 });
    expect(header.length).toBe(0);
    expect(header.checksum).toBe(0);
    expect(out.length).toBe(0);
  });

  it('decodes a frame that is a view at an odd offset inside a larger Buffer', () => {
    const raw = rawFrame(payload, { phase: 2 });
    const pool = Buffer.alloc(raw.length + 100, 0xee);
    raw.copy(pool, 13);
    const view = pool.subarray(13, 13 + raw.length);
    expect(view.byteOffset % 2).toBe(1);
    const { header, payload: out } = decodeFrame(view, { maxPayload: MAX });
    expect(header).toEqual({ ...fields('broadcast'), length: 64, checksum: crc32c(payload) >>> 0 });
    expect(Buffer.from(out).equals(Buffer.from(payload))).toBe(true);
    expect(out.byteOffset).toBe(13 + 40);
  });

  it('rejects a payload view at an odd offset the same way, without reading outside it', () => {
    const raw = rawFrame(payload);
    const pool = Buffer.alloc(raw.length + 7, 0);
    raw.copy(pool, 3);
    // The view stops one byte short: the bytes after it in the pool must not count as payload.
    const err = decodeError(pool.subarray(3, 3 + raw.length - 1));
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.message).toBe('frame length field 64 does not match the 63 payload bytes after the header');
  });
});

describe('malformed frames', () => {
  it.each([0, 10, 39])('rejects %d bytes as truncated', (n) => {
    const err = decodeError(rawFrame(payload).subarray(0, n));
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.closeCode).toBe(4002);
    expect(err.message).toBe(`truncated frame: ${n} bytes, the header alone is 40`);
  });

  it('rejects a wrong magic', () => {
    const err = decodeError(rawFrame(payload, { magic: 0x1234 }));
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.message).toBe('bad frame magic 0x1234, expected 0x5352');
  });

  it('rejects a big-endian magic (the bytes swapped)', () => {
    expect(decodeError(rawFrame(payload, { magic: 0x5253 })).message).toBe('bad frame magic 0x5253, expected 0x5352');
  });

  it('rejects an unknown version', () => {
    const err = decodeError(rawFrame(payload, { version: 2 }));
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.message).toBe('unsupported frame version 2, this build speaks version 1');
  });

  it.each([4, 255])('rejects phase %d', (phase) => {
    const err = decodeError(rawFrame(payload, { phase }));
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.message).toBe(
      `unknown frame phase ${phase}, expected 0 (reduce-scatter), 1 (all-gather), 2 (broadcast), 3 (checkpoint)`,
    );
  });

  it('rejects a length field larger than the data', () => {
    const err = decodeError(rawFrame(payload, { length: 65 }));
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.message).toBe('frame length field 65 does not match the 64 payload bytes after the header');
  });

  it('rejects a length field smaller than the data', () => {
    const err = decodeError(rawFrame(payload, { length: 0 }));
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.message).toBe('frame length field 0 does not match the 64 payload bytes after the header');
  });

  it('rejects a payload over maxPayload and accepts one exactly at it', () => {
    const frame = rawFrame(payload);
    const err = decodeError(frame, 63);
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.message).toBe('oversized frame: length field 64 exceeds maxPayload 63');
    expect(decodeFrame(frame, { maxPayload: 64 }).header.length).toBe(64);
  });

  it('reports a huge length field as oversized before comparing it with the data', () => {
    const err = decodeError(rawFrame(payload, { length: 0xffffffff }));
    expect(err.message).toBe(`oversized frame: length field 4294967295 exceeds maxPayload ${MAX}`);
  });

  it('rejects a non-zero reserved field', () => {
    const err = decodeError(rawFrame(payload, { reserved: 1 }));
    expect(err.code).toBe('RS_ERR_BAD_FRAME');
    expect(err.message).toBe('frame reserved field is 0x00000001, expected 0');
  });

  it('rejects a flipped payload byte with RS_ERR_CHECKSUM', () => {
    const frame = rawFrame(payload);
    frame[40 + 17] ^= 0x01;
    const err = decodeError(frame);
    expect(err.code).toBe('RS_ERR_CHECKSUM');
    expect(err.closeCode).toBe(4007);
    const expected = (crc32c(payload) >>> 0).toString(16).padStart(8, '0');
    const actual = (crc32c(frame.subarray(40)) >>> 0).toString(16).padStart(8, '0');
    expect(err.message).toBe(`frame checksum 0x${expected} does not match payload CRC32C 0x${actual} (64 bytes)`);
  });

  it('accepts a flipped payload byte with verifyChecksum: false', () => {
    const frame = rawFrame(payload);
    frame[40 + 17] ^= 0x01;
    const { header, payload: out } = decodeFrame(frame, { maxPayload: MAX, verifyChecksum: false });
    expect(header.checksum).toBe(crc32c(payload) >>> 0);
    expect(out[17]).toBe(payload[17]! ^ 0x01);
  });

  it('still rejects structural damage with verifyChecksum: false', () => {
    const frame = rawFrame(payload, { version: 9 });
    expect(() => decodeFrame(frame, { maxPayload: MAX, verifyChecksum: false })).toThrow(/version 9/);
  });

  it('throws a RangeError for a bad maxPayload (a caller mistake, not bad data)', () => {
    expect(() => decodeFrame(rawFrame(payload), { maxPayload: -1 })).toThrow(RangeError);
    expect(() => decodeFrame(rawFrame(payload), { maxPayload: Number.NaN })).toThrow(RangeError);
  });
});

describe('allocFrame and sealFrame', () => {
  it('gives an 8-aligned payload usable as a Float64Array, sent without a copy', () => {
    const { frame, payload: room } = allocFrame(8 * 5);
    expect(frame.length).toBe(80);
    expect(room.byteOffset % 8).toBe(0);
    expect(room.buffer).toBe(frame.buffer);
    const f64 = new Float64Array(room.buffer, room.byteOffset, 5);
    f64.set([1.5, -2, Math.PI, 1e300, -0]);
    sealFrame(frame, fields('all-gather'));
    const { header, payload: out } = decodeFrame(frame, { maxPayload: MAX });
    expect(header.length).toBe(40);
    expect(Array.from(new Float64Array(out.buffer, out.byteOffset, 5))).toEqual([1.5, -2, Math.PI, 1e300, -0]);
  });

  it('overwrites every header byte when a frame buffer is reused', () => {
    const frame = new Uint8Array(40 + payload.length).fill(0xff);
    frame.set(payload, 40);
    sealFrame(frame, fields('all-gather'));
    expect(Buffer.from(frame).equals(rawFrame(payload, { phase: 1 }))).toBe(true);
  });

  it('uses a given checksum instead of computing one', () => {
    const { frame, payload: room } = allocFrame(4);
    room.set([1, 2, 3, 4]);
    sealFrame(frame, { ...fields(), checksum: 0xdeadbeef });
    expect(decodeFrame(frame, { maxPayload: MAX, verifyChecksum: false }).header.checksum).toBe(0xdeadbeef);
    expect(decodeError(frame).code).toBe('RS_ERR_CHECKSUM');
  });

  it('rejects field values that do not fit a u32', () => {
    const { frame } = allocFrame(0);
    expect(() => sealFrame(frame, { ...fields(), epoch: -1 })).toThrow('frame field epoch must be an integer in 0..4294967295, got -1');
    expect(() => sealFrame(frame, { ...fields(), offset: 2 ** 32 })).toThrow(RangeError);
    expect(() => sealFrame(frame, { ...fields(), step: 1.5 })).toThrow(RangeError);
    expect(() => sealFrame(frame, { ...fields(), phase: 'scatter' as Phase })).toThrow(RangeError);
    expect(() => sealFrame(new Uint8Array(39), fields())).toThrow(RangeError);
  });

  it('computes the checksum as an unsigned CRC32C', () => {
    const bytes = Buffer.from('123456789');
    expect(payloadChecksum(bytes)).toBe(0xe3069283); // the CRC-32C check value
    expect(payloadChecksum(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toBeGreaterThan(0);
  });
});

describe('rewriteFrameHeader', () => {
  it('patches fields in place and keeps payload and checksum valid', () => {
    const frame = encodeFrame(fields('reduce-scatter'), payload);
    const before = decodeFrame(frame, { maxPayload: MAX }).header;
    rewriteFrameHeader(frame, { phase: 'all-gather', epoch: 8, opSeq: 43, step: 0, src: 3 });
    const { header, payload: out } = decodeFrame(frame, { maxPayload: MAX });
    expect(header).toEqual({
      ...before,
      phase: 'all-gather',
      epoch: 8,
      opSeq: 43,
      step: 0,
      src: 3,
    });
    expect(Buffer.from(out).equals(Buffer.from(payload))).toBe(true);
  });

  it('leaves fields that are not named untouched', () => {
    const frame = encodeFrame(fields(), payload);
    rewriteFrameHeader(frame, { src: 9 });
    expect(Buffer.from(frame).equals(rawFrame(payload, { src: 9 }))).toBe(true);
  });

  it('works on a view at an odd offset', () => {
    const raw = rawFrame(payload);
    const pool = Buffer.alloc(raw.length + 10);
    raw.copy(pool, 5);
    const view = pool.subarray(5, 5 + raw.length);
    rewriteFrameHeader(view, { step: 1 });
    expect(decodeFrame(view, { maxPayload: MAX }).header.step).toBe(1);
    expect(pool.subarray(0, 5).every((b) => b === 0)).toBe(true);
  });

  it('changes nothing when one change is invalid', () => {
    const frame = encodeFrame(fields(), payload);
    const copy = Uint8Array.from(frame);
    expect(() => rewriteFrameHeader(frame, { epoch: 9, src: -1 })).toThrow(RangeError);
    expect(Buffer.from(frame).equals(Buffer.from(copy))).toBe(true);
  });
});
