// Sizes and durations as people type and read them. Pure.

const SIZE_MULTIPLIERS: Record<string, bigint> = {
  '': 1n,
  b: 1n,
  k: 1024n,
  kib: 1024n,
  m: 1024n ** 2n,
  mib: 1024n ** 2n,
  g: 1024n ** 3n,
  gib: 1024n ** 3n,
};

const SIZE_HELP = 'use a whole number of bytes with an optional suffix K, KiB, M, MiB, G or GiB (powers of 1024)';

// Digits, an optional fraction, an optional single space, an optional suffix.
const SIZE_PATTERN = /^(\d+)(?:\.(\d+))?(?: ?(b|k|kib|m|mib|g|gib))?$/i;

/**
 * Parses a size in bytes: "4096", "8B", "64K", "1.5MiB", "2 GiB". Suffixes are case-insensitive.
 * K, M and G are powers of 1024, as in nccl-tests (K = KiB, not 1000). A fraction is accepted
 * only if the result is a whole number of bytes ("1.5K" = 1536; "1.3B" is rejected). "KB" and
 * "MB" are rejected rather than guessed at. Throws RangeError naming what is accepted.
 */
export function parseSize(text: string): number {
  const m = SIZE_PATTERN.exec(text);
  if (!m) throw new RangeError(`${JSON.stringify(text)} is not a size: ${SIZE_HELP}`);
  const [, whole, fraction = '', suffix = ''] = m;
  const multiplier = SIZE_MULTIPLIERS[suffix.toLowerCase()]!;
  const scaled = BigInt(whole + fraction) * multiplier;
  const divisor = 10n ** BigInt(fraction.length);
  if (scaled % divisor !== 0n) {
    throw new RangeError(`${JSON.stringify(text)} is not a whole number of bytes: ${SIZE_HELP}`);
  }
  const bytes = scaled / divisor;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`${JSON.stringify(text)} is too large: sizes go up to ${Number.MAX_SAFE_INTEGER} bytes`);
  }
  return Number(bytes);
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/**
 * Short form of a byte count in powers of 1024: "8 B", "1 KiB", "64 MiB", "1.5 MiB". Values with
 * at most two decimals are shown exactly; others get three significant digits ("1.00 KiB" for
 * 1025 bytes), so a short form without trailing zeros is always exact.
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`byte count must be a finite number >= 0, got ${n}`);
  let unit = 0;
  while (unit < BYTE_UNITS.length - 1 && n >= 1024 ** (unit + 1)) unit++;
  for (;;) {
    const value = n / 1024 ** unit;
    const text = Number.isInteger(value * 100) ? String(value) : threeDigits(value);
    // Rounding can reach the next unit (1023.9 KiB would print as "1024 KiB").
    if (Number(text) >= 1024 && unit < BYTE_UNITS.length - 1) {
      unit++;
      continue;
    }
    return `${text} ${BYTE_UNITS[unit]}`;
  }
}

const DURATION_UNITS = [
  ['ns', 1e-6],
  ['µs', 1e-3],
  ['ms', 1],
  ['s', 1e3],
] as const;

/** Short form of a duration given in milliseconds, three significant digits: "850 µs", "12.3 ms", "4.20 s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`duration must be a finite number of ms >= 0, got ${ms}`);
  if (ms === 0) return '0 s';
  let unit = 0;
  while (unit < DURATION_UNITS.length - 1 && ms >= DURATION_UNITS[unit + 1]![1]) unit++;
  for (;;) {
    const [name, scale] = DURATION_UNITS[unit]!;
    const text = threeDigits(ms / scale);
    // Rounding can reach the next unit (999.7 µs would print as "1000 µs").
    if (Number(text) >= 1000 && unit < DURATION_UNITS.length - 1) {
      unit++;
      continue;
    }
    return `${text} ${name}`;
  }
}

function threeDigits(v: number): string {
  const decimals = v < 10 ? 2 : v < 100 ? 1 : 0;
  const text = v.toFixed(decimals);
  // 9.996 rounds to "10.00": keep three significant digits ("10.0").
  return decimals > 0 && Number(text) >= 10 ** (3 - decimals) ? v.toFixed(decimals - 1) : text;
}
