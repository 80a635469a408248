// The contract between a collective's pure logic and the runtime that moves its chunks.
import type { Phase } from '../protocol/frame.js';
import type { AllreduceAlgo } from '../protocol/names.js';
import type { DType, Elements, ReduceOp } from './dtypes.js';

export type { Phase };

export { ALLREDUCE_ALGOS, COLLECTIVES, type AllreduceAlgo, type CollectiveKind } from '../protocol/names.js';

/** Where a chunk sits in a collective's schedule. Every frame on the wire carries these. */
export interface ChunkId {
  phase: Phase;
  /** Ring step within the phase (0-based). */
  step: number;
  /** Chunk index within the segment being moved at that step. */
  chunk: number;
  /** First element of the chunk, as an index into the whole buffer. */
  offset: number;
}

/** A chunk to send. `data` is only read; it is never changed after it is handed out. */
export interface ChunkSend extends ChunkId {
  to: number;
  data: Elements;
  /** Set when `data` is a received payload forwarded unchanged, so its checksum need not be recomputed. */
  checksum?: number;
}

export interface ChunkIn extends ChunkId {
  from: number;
  data: Elements;
  checksum?: number;
}

export interface Progress {
  phase: Phase | 'done';
  /** Lowest ring step not yet fully received in the current phase. */
  step: number;
  chunksReceived: number;
  chunksExpected: number;
  chunksSent: number;
  /** The rank whose frames this one waits for next, where the schedule is not a ring (recursive doubling); null when done. */
  waitingFor?: number | null;
}

export interface CollectiveOptions {
  rank: number;
  size: number;
  dtype: DType;
  op: ReduceOp;
  /** In/out buffer of the whole vector (see each collective for what is valid on entry and exit). */
  buffer: Elements;
  /**
   * Reduce-scatter and all-reduce: this rank's contribution, left unchanged, with the result going
   * to `buffer` (out of place, as nccl-tests times it). Defaults to `buffer` (in place).
   */
  input?: Elements;
  /** Largest chunk, in elements. */
  chunkElems: number;
  /** For avg: how many inputs the sum covers (defaults to `size`; the worker passes its total cards). */
  divisor?: number;
  /** Broadcast root. */
  root?: number;
  /** All-reduce: which algorithm (default ring). */
  algo?: AllreduceAlgo;
  /** Allocates a scratch array the collective fills and hands out in a ChunkSend (lets the runtime reserve header room). */
  alloc?: (count: number) => Elements;
}

/**
 * One collective op on one rank, as a state machine: `start()` and `onChunk()` return the chunks to
 * send; the caller delivers received chunks in any order that respects per-link FIFO.
 */
export interface Collective {
  start(): ChunkSend[];
  onChunk(c: ChunkIn): ChunkSend[];
  readonly done: boolean;
  progress(): Progress;
}
