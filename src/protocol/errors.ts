// Errors with stable codes, each mapped to one WebSocket close code (4000–4999). Pure.

/** The one table of error codes and the close code each one closes a connection with. */
export const ERROR_CLOSE_CODES = {
  /** A control message fails its schema, or is not JSON. */
  RS_ERR_BAD_MESSAGE: 4001,
  /** A data frame is malformed: truncated, bad magic, wrong version, length mismatch, oversized. */
  RS_ERR_BAD_FRAME: 4002,
  /** Missing or wrong token. */
  RS_ERR_AUTH: 4003,
  /** A message from an epoch older than the current one. */
  RS_ERR_STALE_EPOCH: 4004,
  /** A peer vanished (exit, closed connection, missed heartbeats). */
  RS_ERR_PEER_LOST: 4005,
  /** A deadline passed. */
  RS_ERR_TIMEOUT: 4006,
  /** A payload does not match its checksum. */
  RS_ERR_CHECKSUM: 4007,
  /** A well-formed message that is unexpected in this state. */
  RS_ERR_PROTOCOL: 4008,
  /** The operation was aborted (a new epoch started, or a shutdown). */
  RS_ERR_ABORTED: 4009,
  /** A bug: an invariant of ringswarm itself does not hold. */
  RS_ERR_INTERNAL: 4010,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CLOSE_CODES;

const CODE_BY_CLOSE_CODE: ReadonlyMap<number, ErrorCode> = new Map(
  (Object.keys(ERROR_CLOSE_CODES) as ErrorCode[]).map((code) => [ERROR_CLOSE_CODES[code], code]),
);

export class RingswarmError extends Error {
  readonly code: ErrorCode;
  /** The WebSocket close code for this error (4000–4999). */
  readonly closeCode: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RingswarmError';
    this.code = code;
    this.closeCode = ERROR_CLOSE_CODES[code];
  }
}

export function isRingswarmError(e: unknown): e is RingswarmError {
  return e instanceof RingswarmError;
}

/** The error code a peer meant by closing with `closeCode`, or undefined if it is not one of ours. */
export function errorCodeForClose(closeCode: number): ErrorCode | undefined {
  return CODE_BY_CLOSE_CODE.get(closeCode);
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8 (RFC 6455, section 5.5). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * `${code}: ${message}` cut to at most 123 UTF-8 bytes, never inside a character; a cut reason
 * ends with "…" so the reader knows it was cut.
 */
export function closeReason(e: RingswarmError): string {
  const full = `${e.code}: ${e.message}`;
  if (utf8Bytes(full) <= MAX_CLOSE_REASON_BYTES) return full;
  const ellipsis = '…';
  const budget = MAX_CLOSE_REASON_BYTES - utf8Bytes(ellipsis);
  let used = 0;
  let end = 0;
  for (const ch of full) {
    const n = utf8Bytes(ch);
    if (used + n > budget) break;
    used += n;
    end += ch.length;
  }
  return full.slice(0, end) + ellipsis;
}

function utf8Bytes(s: string): number {
  let n = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    // A lone surrogate is encoded as U+FFFD, 3 bytes, like any other BMP character above U+07FF.
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

/** The error a caller's bad input throws, from the CLI, the API and the operator's requests alike (the CLI prints it and exits 2). */
export class RingswarmUsageError extends Error {
  readonly code = 'RS_ERR_USAGE';
  override name = 'RingswarmUsageError';
}
