// Element types and reduction operators. Pure: no I/O, no clocks, no randomness.

import { arenaReduce } from './simd.js';

import type { DType, ReduceOp } from '../protocol/names.js';

export { DTYPES, REDUCE_OPS, type DType, type ReduceOp } from '../protocol/names.js';

export type Elements = Float32Array | Float64Array | Int32Array;

export function elementBytes(dtype: DType): number {
  return dtype === 'f64' ? 8 : 4;
}

export function allocElements(dtype: DType, count: number): Elements {
  switch (dtype) {
    case 'f32':
      return new Float32Array(count);
    case 'f64':
      return new Float64Array(count);
    case 'i32':
      return new Int32Array(count);
  }
}

/** A typed view over raw bytes; `bytes.byteOffset` must be aligned to the element size. */
export function viewElements(dtype: DType, bytes: Uint8Array): Elements {
  const n = bytes.byteLength / elementBytes(dtype);
  if (!Number.isInteger(n)) throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  if (bytes.byteOffset % elementBytes(dtype) !== 0) {
    // Unaligned views cannot be typed in place; copy. (Not bytes.slice(): on a Buffer that is a view.)
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    bytes = copy;
  }
  switch (dtype) {
    case 'f32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'f64':
      return new Float64Array(bytes.buffer, bytes.byteOffset, n);
    case 'i32':
      return new Int32Array(bytes.buffer, bytes.byteOffset, n);
  }
}

export function bytesOf(a: Elements): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The operator used while combining partial results: avg combines by sum and divides once at the end. */
export function combiningOp(op: ReduceOp): Exclude<ReduceOp, 'avg'> {
  return op === 'avg' ? 'sum' : op;
}

/**
 * dst[i] = a[i] (op) b[i] for i < dst.length. dst may alias a or b.
 * i32 arithmetic wraps like C's int32 (Math.imul for prod, `| 0` for sum).
 */
export function reduceInto(op: ReduceOp, dst: Elements, a: Elements, b: Elements): void {
  if (arenaReduce(op, dst, a, b)) return;
  const n = dst.length;
  const int = dst instanceof Int32Array;
  switch (combiningOp(op)) {
    case 'sum':
      if (int) for (let i = 0; i < n; i++) dst[i] = (a[i] + b[i]) | 0;
      else for (let i = 0; i < n; i++) dst[i] = a[i] + b[i];
      return;
    case 'prod':
      if (int) for (let i = 0; i < n; i++) dst[i] = Math.imul(a[i], b[i]);
      else for (let i = 0; i < n; i++) dst[i] = a[i] * b[i];
      return;
    case 'min':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        const y = b[i];
        dst[i] = y < x ? y : x;
      }
      return;
    case 'max':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        const y = b[i];
        dst[i] = y > x ? y : x;
      }
      return;
  }
}

/** The final step of avg: divide a sum of `contributors` inputs, in the element type (i32 truncates). */
export function divideInPlace(a: Elements, contributors: number): void {
  const n = a.length;
  if (a instanceof Int32Array) for (let i = 0; i < n; i++) a[i] = Math.trunc(a[i] / contributors);
  else for (let i = 0; i < n; i++) a[i] = a[i] / contributors;
}
