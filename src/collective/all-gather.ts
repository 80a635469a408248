// Ring all-gather. On entry segment `rank` (segmentRange(length, size, rank)) of `buffer` holds this
// rank's contribution; on exit every segment holds its owner's contribution on every rank.
import { RingPipeline } from './ring-pipeline.js';
import type { Collective, CollectiveOptions } from './types.js';

export function ringAllGather(opts: CollectiveOptions): Collective {
  return new RingPipeline(opts, ['all-gather']);
}
