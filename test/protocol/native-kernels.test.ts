import { crc32c as nodeRsCrc32c } from '@node-rs/crc32';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checksumKernel, crc32c, nativeKernels, nativeMemory } from '../../src/native/kernels.js';
import { payloadChecksum } from '../../src/protocol/frame.js';

// The native CRC32C (src/native/kernels.c, built by `npm run build`) must equal @node-rs/crc32 on
// every length, alignment and starting CRC: the frames' checksum is the same either way.
describe('native kernels', () => {
  it('are built and used where CI builds them (a C compiler and Node headers)', () => {
    if (process.env.RINGSWARM_REQUIRE_ENGINES !== '1') return;
    expect(checksumKernel).toMatch(/^native/);
    expect(nativeKernels?.hardware).toBe(true);
    expect(nativeMemory).toBeDefined();
  });

  it.skipIf(!nativeMemory)('axpy gives the bits of the JS update, in place and out of place, f32, f64 and i32', () => {
    const k = nativeMemory!;
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 2 ** ((seed >>> 27) - 8);
    // Odd lengths and offsets: the vector loops' tails and unaligned starts.
    for (const n of [0, 1, 3, 4, 5, 17, 1023]) {
      for (const [make, scale] of [[Float32Array, 1 / 256], [Float64Array, -1 / 256]] as const) {
        const x = make.from({ length: n + 1 }, rand).subarray(1);
        const y = make.from({ length: n }, rand);
        const want = x.map((v, i) => v + scale * y[i]!);
        const out = new make(n);
        k.axpy(out, x, y, scale);
        expect(out, `${make.name} ${n} out of place`).toEqual(want);
        k.axpy(x, x, y, scale);
        expect(x, `${make.name} ${n} in place`).toEqual(want);
      }
      const xi = Int32Array.from({ length: n }, (_, i) => (i & 1 ? 0x7fffffff : -0x80000000) + i);
      const yi = Int32Array.from({ length: n }, (_, i) => i * 977 + 1);
      for (const sign of [1, -1]) {
        const want = xi.map((v, i) => (v + sign * yi[i]!) | 0);
        const out = new Int32Array(n);
        k.axpy(out, xi, yi, sign);
        expect(out, `i32 ${n} sign ${sign}`).toEqual(want);
      }
    }
    expect(() => k.axpy(new Float32Array(2), new Float64Array(2) as never, new Float32Array(2), 1)).toThrow(/one type and length/);
    expect(() => k.axpy(new Int32Array(2), new Int32Array(2), new Int32Array(2), 0.5)).toThrow(/1 or -1/);
  });

  it.skipIf(!nativeMemory)('maps a file shared, and an unmapped buffer reads as empty', () => {
    const k = nativeMemory!;
    const file = join(mkdtempSync(join(tmpdir(), 'rs-map-')), 'slot');
    const fd = openSync(file, 'w+');
    try {
      writeSync(fd, new Uint8Array(8192));
      const buffer = k.map(fd, 4096, 4096);
      const view = new Uint8Array(buffer);
      view.set([1, 2, 3], 10);
      const back = new Uint8Array(3);
      readSync(fd, back, 0, 3, 4096 + 10);
      expect([...back]).toEqual([1, 2, 3]);
      k.unmap(buffer);
      expect(view.length).toBe(0);
      expect(buffer.byteLength).toBe(0);
      k.unmap(buffer); // a second time: left alone
      expect(() => k.map(fd, 4096, 0)).toThrow(/positive/);
      expect(() => k.map(-1, 0, 4096)).toThrow(/Bad file descriptor/);
    } finally {
      closeSync(fd);
      rmSync(dirname(file), { recursive: true, force: true });
    }
  });

  it.skipIf(!nativeKernels)('crc32c equals @node-rs/crc32 on every length, alignment and starting CRC', () => {
    const k = nativeKernels!;
    let seed = 12345;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const pool = new Uint8Array(3 * 8192 * 3 + 64).map(() => rand() & 0xff);
    // Lengths around the 8-byte words and the 256 B / 8 KiB three-way blocks.
    const lengths = [0, 1, 7, 8, 9, 255, 256, 767, 768, 769, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 2 * 3 * 8192 + 3 * 256 + 13, pool.length - 8];
    for (const n of lengths) {
      for (let off = 0; off < 8; off++) {
        const view = pool.subarray(off, off + n);
        const initial = off & 1 ? rand() : 0;
        expect(k.crc32c(view, initial), `${n} bytes at offset ${off}`).toBe(nodeRsCrc32c(Buffer.from(view), initial) >>> 0);
      }
    }
    expect(k.crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it.skipIf(!nativeKernels)('detects a flipped bit anywhere in a large payload', () => {
    const payload = new Uint8Array(1 << 20).map((_, i) => (i * 131) & 0xff);
    const good = payloadChecksum(payload, crc32c);
    for (const bit of [0, 7, 8 * 8191, 8 * 8192 + 3, 8 * 3 * 8192, 8 * (payload.length - 1) + 7]) {
      payload[bit >> 3] ^= 1 << (bit & 7);
      expect(payloadChecksum(payload, crc32c)).not.toBe(good);
      payload[bit >> 3] ^= 1 << (bit & 7);
    }
    expect(payloadChecksum(payload, crc32c)).toBe(good);
    expect(payloadChecksum(payload)).toBe(good); // the codec's default, @node-rs/crc32
  });

  it('RINGSWARM_NATIVE=0 keeps @node-rs/crc32, with the same checksums', () => {
    const script =
      "const k = await import('./dist/src/native/kernels.js');" +
      "console.log(JSON.stringify([k.checksumKernel, k.crc32c(new TextEncoder().encode('123456789')) >>> 0]))";
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, RINGSWARM_NATIVE: '0' }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['@node-rs/crc32 (native kernels off (RINGSWARM_NATIVE=0))', 0xe3069283]);
  });

  it.skipIf(!nativeKernels)('rejects what is not a Uint8Array', () => {
    expect(() => nativeKernels!.crc32c(new Float32Array(4) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => (nativeKernels!.crc32c as (x?: unknown) => number)()).toThrow(TypeError);
  });
});
