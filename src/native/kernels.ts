// The optional native kernels (src/native/kernels.c, built into dist/native/kernels.node by
// scripts/build-native.ts). Loaded once per process; without them, or with RINGSWARM_NATIVE=0,
// the data path keeps @node-rs/crc32 and nothing else changes: the wire format is the same. The
// pure frame codec (src/protocol/frame.ts) takes the function as a value from its callers.

import { crc32c as nodeRsCrc32c } from '@node-rs/crc32';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeKernels {
  /** CRC32C of `data`, continuing from the CRC `initial` of what came before (default 0). */
  crc32c(data: Uint8Array, initial?: number): number;
  /** The CPU has the crc32 instruction and the kernel uses it. */
  hardware: boolean;
}

/** What keeps card states in mapped checkpoint slots (with or without the crc32 instruction). */
export interface NativeMemory {
  /** `length` bytes of file `fd` from `offset` (a page multiple), mapped shared and prefaulted. */
  map(fd: number, offset: number, length: number): ArrayBuffer;
  /** Unmap an ArrayBuffer map() made, now; it is detached (its views read as empty). */
  unmap(buffer: ArrayBuffer): void;
  /** out[i] = x[i] + k * y[i] over typed arrays of one type and length (Int32Array: k = ±1, wrapping); out may be x. */
  axpy<T extends Float32Array | Float64Array | Int32Array>(out: T, x: T, y: T, k: number): void;
}

const FILE = 'kernels.node';

/** Where the addon may be: beside the worker bundle (dist/), or from dist/src/native/ or src/native/. */
function candidates(): string[] {
  const here = import.meta.url as string | undefined; // empty in the CommonJS worker bundle
  if (!here) return [join(__dirname, 'native', FILE)];
  return [fileURLToPath(new URL(`../../native/${FILE}`, here)), fileURLToPath(new URL(`../../dist/native/${FILE}`, here))];
}

function load(): { kernels?: NativeKernels & Partial<NativeMemory>; why: string } {
  if (process.env.RINGSWARM_NATIVE === '0') return { why: 'off (RINGSWARM_NATIVE=0)' };
  const path = candidates().find((p) => existsSync(p));
  if (!path) return { why: 'not built' };
  try {
    const mod = { exports: {} as NativeKernels & Partial<NativeMemory> };
    process.dlopen(mod, path);
    return { kernels: mod.exports, why: mod.exports.hardware ? 'sse4.2' : 'no crc32 instruction' };
  } catch (err) {
    return { why: `failed to load: ${(err as Error).message}` };
  }
}

const loaded = load();

/** The native kernels when they are built, loadable and use the hardware; else undefined. */
export const nativeKernels: NativeKernels | undefined = loaded.kernels?.hardware ? loaded.kernels : undefined;

/** The CRC32C function the data path passes to the frame codec: the native kernel, else @node-rs/crc32. */
export const crc32c: (data: Uint8Array) => number = nativeKernels ? nativeKernels.crc32c : nodeRsCrc32c;

/** Which CRC32C implementation this process uses, for benchmark headers. */
export const checksumKernel: string = nativeKernels ? 'native crc32 x3 (sse4.2)' : `@node-rs/crc32 (native kernels ${loaded.why})`;

/** Shared mappings and the update over them, when the addon is built and has them (an earlier build may not). */
export const nativeMemory: NativeMemory | undefined =
  loaded.kernels?.map && loaded.kernels.unmap && loaded.kernels.axpy ? (loaded.kernels as NativeKernels & NativeMemory) : undefined;
