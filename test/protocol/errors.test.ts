import { describe, expect, it } from 'vitest';
import {
  ERROR_CLOSE_CODES,
  MAX_CLOSE_REASON_BYTES,
  RingswarmError,
  closeReason,
  errorCodeForClose,
  isRingswarmError,
  type ErrorCode,
} from '../../src/protocol/errors.js';

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

describe('RingswarmError', () => {
  it('maps every code to its close code', () => {
    expect(ERROR_CLOSE_CODES).toEqual({
      RS_ERR_BAD_MESSAGE: 4001,
      RS_ERR_BAD_FRAME: 4002,
      RS_ERR_AUTH: 4003,
      RS_ERR_STALE_EPOCH: 4004,
      RS_ERR_PEER_LOST: 4005,
      RS_ERR_TIMEOUT: 4006,
      RS_ERR_CHECKSUM: 4007,
      RS_ERR_PROTOCOL: 4008,
      RS_ERR_ABORTED: 4009,
      RS_ERR_INTERNAL: 4010,
    });
    for (const code of Object.keys(ERROR_CLOSE_CODES) as ErrorCode[]) {
      const e = new RingswarmError(code, 'x');
      expect(e.closeCode).toBe(ERROR_CLOSE_CODES[code]);
      expect(errorCodeForClose(e.closeCode)).toBe(code);
    }
    expect(errorCodeForClose(1000)).toBeUndefined();
  });

  it('is an Error with a name, a message and a cause', () => {
    const cause = new Error('socket hang up');
    const e = new RingswarmError('RS_ERR_PEER_LOST', 'rank 3 closed its connection', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('RingswarmError');
    expect(e.message).toBe('rank 3 closed its connection');
    expect(e.cause).toBe(cause);
    expect(isRingswarmError(e)).toBe(true);
    expect(isRingswarmError(cause)).toBe(false);
    expect(isRingswarmError({ code: 'RS_ERR_PEER_LOST' })).toBe(false);
  });
});

describe('closeReason', () => {
  it('is code and message when short', () => {
    expect(closeReason(new RingswarmError('RS_ERR_AUTH', 'wrong token'))).toBe('RS_ERR_AUTH: wrong token');
  });

  it('keeps a reason of exactly 123 bytes whole', () => {
    const prefix = 'RS_ERR_TIMEOUT: ';
    const message = 'a'.repeat(123 - prefix.length);
    expect(closeReason(new RingswarmError('RS_ERR_TIMEOUT', message))).toBe(prefix + message);
  });

  it('cuts ASCII to 123 bytes, ending with an ellipsis', () => {
    const r = closeReason(new RingswarmError('RS_ERR_TIMEOUT', 'x'.repeat(500)));
    expect(utf8(r)).toBe(MAX_CLOSE_REASON_BYTES);
    expect(r.startsWith('RS_ERR_TIMEOUT: xxx')).toBe(true);
    expect(r.endsWith('x…')).toBe(true);
  });

  it.each([
    ['2-byte', 'é'],
    ['3-byte', '€'],
    ['4-byte (surrogate pair)', '🦀'],
  ])('never splits a %s character', (_label, ch) => {
    // Vary the ASCII lead so the cut falls at every position inside a character.
    for (let lead = 0; lead < 4; lead++) {
      const r = closeReason(new RingswarmError('RS_ERR_CHECKSUM', 'a'.repeat(lead) + ch.repeat(100)));
      expect(utf8(r)).toBeLessThanOrEqual(123);
      expect(utf8(r)).toBeGreaterThan(123 - utf8(ch) - 1);
      expect(r).not.toContain('\uFFFD');
      expect(Buffer.from(r, 'utf8').toString('utf8')).toBe(r);
      expect(r.endsWith(`${ch}…`)).toBe(true);
    }
  });
});
