// The binary data-frame codec: one WebSocket binary message = a 40-byte little-endian header,
// then the payload. Pure.
//
// offset size field
//      0  u16 magic     0x5352
//      2   u8 version   1
//      3   u8 phase     0 reduce-scatter, 1 all-gather, 2 broadcast
//      4  u32 epoch
//      8  u32 opSeq
//     12  u32 step      ring step within the phase
//     16  u32 chunk     chunk index within the segment
//     20  u32 offset    element offset into the whole buffer
//     24  u32 length    payload bytes
//     28  u32 checksum  CRC32C of the payload
//     32  u32 src       sender rank
//     36  u32 reserved  0

import { crc32c as nodeRsCrc32c } from '@node-rs/crc32';
import { RingswarmError } from './errors.js';

export const FRAME_HEADER_BYTES = 40;
export const FRAME_MAGIC = 0x5352;
export const FRAME_VERSION = 1;

/** 'checkpoint' frames carry a card state copy to the rank that keeps it (not a collective). */
export type Phase = 'reduce-scatter' | 'all-gather' | 'broadcast' | 'checkpoint';

/** Phases by their wire number. */
export const PHASES: readonly Phase[] = ['reduce-scatter', 'all-gather', 'broadcast', 'checkpoint'];

export interface FrameHeader {
  phase: Phase;
  epoch: number;
  opSeq: number;
  /** Ring step within the phase. */
  step: number;
  /** Chunk index within the segment. */
  chunk: number;
  /** Element offset into the whole buffer. */
  offset: number;
  /** Payload bytes. */
  length: number;
  /** CRC32C of the payload, unsigned. */
  checksum: number;
  /** Sender rank. */
  src: number;
}

export type FrameFields = Omit<FrameHeader, 'length' | 'checksum'>;

export interface DecodedFrame {
  header: FrameHeader;
  /** A view into the decoded frame, not a copy. */
  payload: Uint8Array;
}

export interface DecodeOptions {
  /** Largest payload accepted, in bytes. */
  maxPayload: number;
  /** Default true. */
  verifyChecksum?: boolean;
  /** The CRC32C function to verify with (default @node-rs/crc32). */
  crc?: Crc32c;
}

const OFF_MAGIC = 0;
const OFF_VERSION = 2;
const OFF_PHASE = 3;
const OFF_EPOCH = 4;
const OFF_OP_SEQ = 8;
const OFF_STEP = 12;
const OFF_CHUNK = 16;
const OFF_OFFSET = 20;
const OFF_LENGTH = 24;
const OFF_CHECKSUM = 28;
const OFF_SRC = 32;
const OFF_RESERVED = 36;

const U32_FIELDS = [
  ['epoch', OFF_EPOCH],
  ['opSeq', OFF_OP_SEQ],
  ['step', OFF_STEP],
  ['chunk', OFF_CHUNK],
  ['offset', OFF_OFFSET],
  ['src', OFF_SRC],
] as const;

/**
 * A CRC32C function. The codec takes it as a value (default @node-rs/crc32); the data path passes
 * the fastest this machine has (src/native/kernels.ts). Every one gives the same CRC.
 */
export type Crc32c = (data: Uint8Array) => number;

/** CRC32C of the payload, as an unsigned 32-bit integer. */
export function payloadChecksum(payload: Uint8Array, crc: Crc32c = nodeRsCrc32c): number {
  return crc(payload) >>> 0;
}

/**
 * A zeroed frame with room for `payloadBytes`, and the payload view after the header. The payload
 * starts 40 bytes into a fresh ArrayBuffer, so it is 8-byte aligned and can back a Float64Array:
 * fill it in place, then seal and send the frame without copying.
 */
export function allocFrame(payloadBytes: number): { frame: Uint8Array; payload: Uint8Array } {
  if (!Number.isInteger(payloadBytes) || payloadBytes < 0) {
    throw new RangeError(`payloadBytes must be a non-negative integer, got ${payloadBytes}`);
  }
  const frame = new Uint8Array(new ArrayBuffer(FRAME_HEADER_BYTES + payloadBytes));
  return { frame, payload: frame.subarray(FRAME_HEADER_BYTES) };
}

/**
 * Writes the header into frame[0..40). The length is what follows the header; the checksum is
 * computed unless given (when forwarding a payload already checked). Returns `frame`.
 */
export function sealFrame(frame: Uint8Array, h: FrameFields & { checksum?: number }, crc?: Crc32c): Uint8Array {
  if (frame.byteLength < FRAME_HEADER_BYTES) {
    throw new RangeError(`frame of ${frame.byteLength} bytes has no room for the ${FRAME_HEADER_BYTES}-byte header`);
  }
  writeHeader(frame, h, frame.subarray(FRAME_HEADER_BYTES), crc);
  return frame;
}

/** Writes the header for `payload` into target[0..40). */
function writeHeader(target: Uint8Array, h: FrameFields & { checksum?: number }, payload: Uint8Array, crc?: Crc32c): void {
  const phase = phaseNumber(h.phase);
  for (const [name] of U32_FIELDS) checkU32(name, h[name]);
  let checksum: number;
  if (h.checksum === undefined) {
    checksum = payloadChecksum(payload, crc);
  } else {
    checkU32('checksum', h.checksum);
    checksum = h.checksum;
  }
  const view = dataView(target);
  view.setUint16(OFF_MAGIC, FRAME_MAGIC, true);
  view.setUint8(OFF_VERSION, FRAME_VERSION);
  view.setUint8(OFF_PHASE, phase);
  for (const [name, off] of U32_FIELDS) view.setUint32(off, h[name], true);
  view.setUint32(OFF_LENGTH, payload.byteLength, true);
  view.setUint32(OFF_CHECKSUM, checksum, true);
  view.setUint32(OFF_RESERVED, 0, true);
}

/** A new frame holding a copy of `payload`. */
export function encodeFrame(h: FrameFields, payload: Uint8Array): Uint8Array {
  const { frame, payload: room } = allocFrame(payload.byteLength);
  room.set(payload);
  return sealFrame(frame, h);
}

/** A header alone for `payload`, to send as a fragment before it (the payload is not copied). */
export function sealHeader(h: FrameFields & { checksum?: number }, payload: Uint8Array, crc?: Crc32c): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  writeHeader(header, h, payload, crc);
  return header;
}

/** The payload length a header announces (no other check): to size the buffer for the rest. */
export function framePayloadLength(header: Uint8Array): number {
  if (header.byteLength < FRAME_HEADER_BYTES) return -1;
  return new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(OFF_LENGTH, true);
}

/**
 * Validates a received frame. Throws RingswarmError RS_ERR_BAD_FRAME if it is malformed and
 * RS_ERR_CHECKSUM if the payload does not match its checksum. The payload is a view into `frame`;
 * frames from ws may sit at any offset of a pooled buffer, so the view need not be aligned.
 */
export function decodeFrame(frame: Uint8Array, opts: DecodeOptions): DecodedFrame {
  const { maxPayload, verifyChecksum = true, crc } = opts;
  if (!Number.isInteger(maxPayload) || maxPayload < 0) {
    throw new RangeError(`maxPayload must be a non-negative integer, got ${maxPayload}`);
  }
  if (frame.byteLength < FRAME_HEADER_BYTES) {
    throw badFrame(`truncated frame: ${frame.byteLength} bytes, the header alone is ${FRAME_HEADER_BYTES}`);
  }
  const view = dataView(frame);
  const magic = view.getUint16(OFF_MAGIC, true);
  if (magic !== FRAME_MAGIC) {
    throw badFrame(`bad frame magic ${hex(magic, 4)}, expected ${hex(FRAME_MAGIC, 4)}`);
  }
  const version = view.getUint8(OFF_VERSION);
  if (version !== FRAME_VERSION) {
    throw badFrame(`unsupported frame version ${version}, this build speaks version ${FRAME_VERSION}`);
  }
  const phaseNum = view.getUint8(OFF_PHASE);
  const phase = PHASES[phaseNum];
  if (phase === undefined) {
    throw badFrame(`unknown frame phase ${phaseNum}, expected ${PHASES.map((p, i) => `${i} (${p})`).join(', ')}`);
  }
  const reserved = view.getUint32(OFF_RESERVED, true);
  if (reserved !== 0) {
    throw badFrame(`frame reserved field is ${hex(reserved, 8)}, expected 0`);
  }
  const length = view.getUint32(OFF_LENGTH, true);
  if (length > maxPayload) {
    throw badFrame(`oversized frame: length field ${length} exceeds maxPayload ${maxPayload}`);
  }
  const actual = frame.byteLength - FRAME_HEADER_BYTES;
  if (length !== actual) {
    throw badFrame(`frame length field ${length} does not match the ${actual} payload bytes after the header`);
  }
  const payload = frame.subarray(FRAME_HEADER_BYTES);
  const checksum = view.getUint32(OFF_CHECKSUM, true);
  if (verifyChecksum) {
    const computed = payloadChecksum(payload, crc);
    if (computed !== checksum) {
      throw new RingswarmError(
        'RS_ERR_CHECKSUM',
        `frame checksum ${hex(checksum, 8)} does not match payload CRC32C ${hex(computed, 8)} (${length} bytes)`,
      );
    }
  }
  return {
    header: {
      phase,
      epoch: view.getUint32(OFF_EPOCH, true),
      opSeq: view.getUint32(OFF_OP_SEQ, true),
      step: view.getUint32(OFF_STEP, true),
      chunk: view.getUint32(OFF_CHUNK, true),
      offset: view.getUint32(OFF_OFFSET, true),
      length,
      checksum,
      src: view.getUint32(OFF_SRC, true),
    },
    payload,
  };
}

/**
 * Patches header fields in place, keeping payload, length and checksum: a received payload can be
 * forwarded to the next rank without a copy. The checksum covers only the payload, so it stays valid.
 */
export function rewriteFrameHeader(
  frame: Uint8Array,
  changes: Partial<Pick<FrameHeader, 'phase' | 'epoch' | 'opSeq' | 'step' | 'src'>>,
): void {
  if (frame.byteLength < FRAME_HEADER_BYTES) {
    throw new RangeError(`frame of ${frame.byteLength} bytes has no ${FRAME_HEADER_BYTES}-byte header to rewrite`);
  }
  // Validate everything before writing anything, so a bad change leaves the frame untouched.
  const phase = changes.phase === undefined ? undefined : phaseNumber(changes.phase);
  const fields = [
    ['epoch', OFF_EPOCH],
    ['opSeq', OFF_OP_SEQ],
    ['step', OFF_STEP],
    ['src', OFF_SRC],
  ] as const;
  for (const [name] of fields) {
    const v = changes[name];
    if (v !== undefined) checkU32(name, v);
  }
  const view = dataView(frame);
  if (phase !== undefined) view.setUint8(OFF_PHASE, phase);
  for (const [name, off] of fields) {
    const v = changes[name];
    if (v !== undefined) view.setUint32(off, v, true);
  }
}

function dataView(frame: Uint8Array): DataView {
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
}

function phaseNumber(phase: Phase): number {
  const n = PHASES.indexOf(phase);
  if (n < 0) throw new RangeError(`unknown phase ${JSON.stringify(phase)}, expected one of ${PHASES.join(', ')}`);
  return n;
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`frame field ${name} must be an integer in 0..4294967295, got ${v}`);
  }
}

function badFrame(message: string): RingswarmError {
  return new RingswarmError('RS_ERR_BAD_FRAME', message);
}

function hex(n: number, digits: number): string {
  return `0x${n.toString(16).padStart(digits, '0')}`;
}
