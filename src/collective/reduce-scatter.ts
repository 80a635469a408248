// Ring reduce-scatter. On entry `buffer` holds this rank's whole input; on exit segment `rank`
// (segmentRange(length, size, rank)) holds the reduction of that segment over all ranks. The rest
// of the buffer is left as it was.
import { RingPipeline } from './ring-pipeline.js';
import type { Collective, CollectiveOptions } from './types.js';

export function ringReduceScatter(opts: CollectiveOptions): Collective {
  return new RingPipeline(opts, ['reduce-scatter']);
}
