// Ring all-reduce: reduce-scatter then all-gather, chunks pipelined across both phases.
// On entry `buffer` holds this rank's input; on exit every rank's buffer holds the reduction.
import { RingPipeline } from './ring-pipeline.js';
import type { Collective, CollectiveOptions } from './types.js';

export function ringAllReduce(opts: CollectiveOptions): Collective {
  return new RingPipeline(opts, ['reduce-scatter', 'all-gather']);
}
