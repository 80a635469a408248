// Ring math: neighbours, segment ranges (uneven sizes), chunking. Pure.

export interface Range {
  /** First element, as an index into the whole buffer. */
  offset: number;
  /** Number of elements. */
  count: number;
}

export function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

export function successor(rank: number, size: number): number {
  return mod(rank + 1, size);
}

export function predecessor(rank: number, size: number): number {
  return mod(rank - 1, size);
}

/**
 * Segment k of `count` elements split over `parts` ranks. The first `count % parts` segments get
 * one extra element, so sizes differ by at most one and any count (0 included) works.
 */
export function segmentRange(count: number, parts: number, k: number): Range {
  if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`parts must be an integer >= 1, got ${parts}`);
  if (!Number.isInteger(k) || k < 0 || k >= parts) throw new RangeError(`segment ${k} out of range 0..${parts - 1}`);
  const base = Math.floor(count / parts);
  const extra = count % parts;
  const offset = k * base + Math.min(k, extra);
  return { offset, count: base + (k < extra ? 1 : 0) };
}

/** Number of chunks of at most `chunkElems` elements that cover `count` elements (0 for 0). */
export function chunkCount(count: number, chunkElems: number): number {
  if (!Number.isInteger(chunkElems) || chunkElems < 1) throw new RangeError(`chunkElems must be an integer >= 1, got ${chunkElems}`);
  return Math.ceil(count / chunkElems);
}

/** Chunk j of a range, cut into pieces of at most `chunkElems` elements. */
export function chunkRange(range: Range, chunkElems: number, j: number): Range {
  const offset = range.offset + j * chunkElems;
  const count = Math.min(chunkElems, range.offset + range.count - offset);
  if (j < 0 || count <= 0) throw new RangeError(`chunk ${j} out of range for ${range.count} elements`);
  return { offset, count };
}
