import { ringAllGather } from './all-gather.js';
import { chainBroadcast } from './broadcast.js';
import { ringReduceScatter } from './reduce-scatter.js';
import { recursiveDoublingAllReduce } from './recursive-doubling.js';
import { ringAllReduce } from './ring-allreduce.js';
import { treeAllReduce } from './tree.js';
import type { Collective, CollectiveKind, CollectiveOptions } from './types.js';

export function createCollective(kind: CollectiveKind, opts: CollectiveOptions): Collective {
  switch (kind) {
    case 'allreduce':
      return opts.algo === 'rd' ? recursiveDoublingAllReduce(opts) : opts.algo === 'tree' ? treeAllReduce(opts) : ringAllReduce(opts);
    case 'reducescatter':
      return ringReduceScatter(opts);
    case 'allgather':
      return ringAllGather(opts);
    case 'broadcast':
      return chainBroadcast(opts);
  }
}

/** nccl-tests' bus-bandwidth factor: busbw = algbw * factor(n). */
export function busBandwidthFactor(kind: CollectiveKind, n: number): number {
  switch (kind) {
    case 'allreduce':
      return n > 1 ? (2 * (n - 1)) / n : 0;
    case 'reducescatter':
    case 'allgather':
      return n > 1 ? (n - 1) / n : 0;
    case 'broadcast':
      return 1;
  }
}
