import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, parseSize } from '../../src/protocol/units.js';

describe('parseSize', () => {
  it.each([
    ['0', 0],
    ['0B', 0],
    ['8', 8],
    ['8B', 8],
    ['8b', 8],
    ['1K', 1024],
    ['1k', 1024],
    ['1KiB', 1024],
    ['1kib', 1024],
    ['64M', 64 * 1024 ** 2],
    ['64MiB', 64 * 1024 ** 2],
    ['64m', 64 * 1024 ** 2],
    ['2G', 2 * 1024 ** 3],
    ['2GiB', 2 * 1024 ** 3],
    ['2g', 2 * 1024 ** 3],
    ['1.5MiB', 1.5 * 1024 ** 2],
    ['0.5K', 512],
    ['1.0', 1],
    ['007', 7],
    ['64 MiB', 64 * 1024 ** 2],
    ['8388608 B', 8388608],
  ])('parses %j as %d', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  const help = 'use a whole number of bytes with an optional suffix K, KiB, M, MiB, G or GiB (powers of 1024)';

  it.each(['', '-1', 'abc', '1e3', '12X', '1KB', '1MB', '1 ', ' 1', '1  K', '.5K', '1.', '1,5K', '0x10', 'K', 'Infinity'])(
    'rejects %j naming what is accepted',
    (text) => {
      expect(() => parseSize(text)).toThrow(RangeError);
      expect(() => parseSize(text)).toThrow(`${JSON.stringify(text)} is not a size: ${help}`);
    },
  );

  it.each(['1.3B', '1.3', '0.0001K'])('rejects %j as not a whole number of bytes', (text) => {
    expect(() => parseSize(text)).toThrow(`${JSON.stringify(text)} is not a whole number of bytes: ${help}`);
  });

  it('gives the exact message from the example', () => {
    expect(() => parseSize('12X')).toThrow(
      '"12X" is not a size: use a whole number of bytes with an optional suffix K, KiB, M, MiB, G or GiB (powers of 1024)',
    );
  });

  it('rejects sizes beyond the safe integer range rather than rounding them', () => {
    expect(parseSize('8388607G')).toBe(8388607 * 1024 ** 3);
    expect(() => parseSize('8388608G')).toThrow(/too large/);
    expect(() => parseSize('99999999999999999999')).toThrow(/too large/);
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [8, '8 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [1025, '1.00 KiB'],
    [64 * 1024 ** 2, '64 MiB'],
    [1.5 * 1024 ** 2, '1.5 MiB'],
    [1.25 * 1024 ** 3, '1.25 GiB'],
    [1024 ** 4, '1 TiB'],
    [1024 ** 2 - 1, '1.00 MiB'],
    [100.5 * 1024, '100.5 KiB'],
    [123456789, '118 MiB'],
  ])('formats %d as %j', (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });

  it('round-trips with parseSize for the exact forms', () => {
    for (const n of [0, 8, 1024, 1536, 64 * 1024 ** 2, 3 * 1024 ** 3]) expect(parseSize(formatBytes(n))).toBe(n);
  });

  it('rejects negative and non-finite counts', () => {
    expect(() => formatBytes(-1)).toThrow(RangeError);
    expect(() => formatBytes(Number.NaN)).toThrow(RangeError);
    expect(() => formatBytes(Infinity)).toThrow(RangeError);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 s'],
    [0.0005, '500 ns'],
    [0.85, '850 µs'],
    [0.0123, '12.3 µs'],
    [0.9997, '1.00 ms'],
    [1, '1.00 ms'],
    [9.996, '10.0 ms'],
    [12.34, '12.3 ms'],
    [999.9, '1.00 s'],
    [4200, '4.20 s'],
    [61_000, '61.0 s'],
    [1_234_567, '1235 s'],
  ])('formats %d ms as %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('rejects negative and non-finite durations', () => {
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(Number.NaN)).toThrow(RangeError);
  });
});
