// Reference collectives for the property tests: whole buffers, reduced in rank order, no chunking,
// no pipelining, a fresh output buffer per rank. Slow and obviously right is the point. Pure.

import { divideInPlace, reduceInto, type Elements, type ReduceOp } from './dtypes.js';
import { segmentRange } from './ring.js';

/** Every rank gets the elementwise reduction over ranks 0, 1, …, n-1 (avg: the sum, divided once by n). */
export function naiveAllReduce(inputs: Elements[], op: ReduceOp): Elements[] {
  const total = reduceAll(inputs, op);
  return inputs.map(() => total.slice());
}

/** Rank r gets segment r (segmentRange(count, n, r)) of the all-reduce. */
export function naiveReduceScatter(inputs: Elements[], op: ReduceOp): Elements[] {
  const total = reduceAll(inputs, op);
  return inputs.map((_, r) => {
    const { offset, count } = segmentRange(total.length, inputs.length, r);
    return total.slice(offset, offset + count);
  });
}

/** Rank r contributes segments[r]; every rank gets the concatenation in rank order. */
export function naiveAllGather(segments: Elements[]): Elements[] {
  checkSameType(segments, 'naiveAllGather');
  const length = segments.reduce((n, s) => n + s.length, 0);
  const whole = emptyLike(segments[0], length);
  let offset = 0;
  for (const s of segments) {
    whole.set(s, offset);
    offset += s.length;
  }
  return segments.map(() => whole.slice());
}

/** Every rank gets a copy of inputs[root]; the other inputs only fix the buffers' type and length. */
export function naiveBroadcast(inputs: Elements[], root: number): Elements[] {
  checkSameShape(inputs, 'naiveBroadcast');
  if (!Number.isInteger(root) || root < 0 || root >= inputs.length) {
    throw new RangeError(`naiveBroadcast: root ${root} out of range 0..${inputs.length - 1}`);
  }
  return inputs.map(() => inputs[root].slice());
}

function reduceAll(inputs: Elements[], op: ReduceOp): Elements {
  checkSameShape(inputs, 'naive reduction');
  const acc = inputs[0].slice();
  for (let r = 1; r < inputs.length; r++) reduceInto(op, acc, acc, inputs[r]);
  if (op === 'avg') divideInPlace(acc, inputs.length);
  return acc;
}

function emptyLike(a: Elements, length: number): Elements {
  if (a instanceof Float32Array) return new Float32Array(length);
  if (a instanceof Float64Array) return new Float64Array(length);
  return new Int32Array(length);
}

function checkSameType(buffers: Elements[], what: string): void {
  if (buffers.length === 0) throw new RangeError(`${what}: needs at least one rank`);
  const type = buffers[0].constructor;
  buffers.forEach((b, r) => {
    if (b.constructor !== type) throw new TypeError(`${what}: rank ${r} holds a ${b.constructor.name}, rank 0 a ${type.name}`);
  });
}

function checkSameShape(buffers: Elements[], what: string): void {
  checkSameType(buffers, what);
  const length = buffers[0].length;
  buffers.forEach((b, r) => {
    if (b.length !== length) throw new RangeError(`${what}: rank ${r} has ${b.length} elements, rank 0 has ${length}`);
  });
}
