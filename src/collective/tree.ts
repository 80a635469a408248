// Binomial-tree all-reduce: reduce up a binomial tree to one rank, then broadcast the result back
// down it (MPI's reduce + bcast, the shape of NCCL's tree for small messages). Pure.
//
// Recursive doubling sends p·log2(p) frames an op; the tree sends 2(p-1), over twice as many steps
// one after the other (2·log2(p)). Where every frame costs far more processor time than its bytes
// take on the wire (small messages, many processes sharing few cores) the frames are the cost: on
// 8 workers over 2 cores an 8 B op takes 14 frames instead of 24.
//
// The tree is recursive doubling's, on the same links: the ranks that sit out (n = p + q, q < p)
// fold their input into a host first and get the result back last (reduce-scatter and all-gather
// step 0); among the p others, virtual rank v ≠ 0 with lowest set bit b first takes the partials
// of its children v + 2^k, k < b (reduce-scatter step k + 1, in that order), then sends its own up
// to v - 2^b (reduce-scatter step b + 1); v = 0 ends with the whole reduction (divided once for
// avg, so every rank gets the same bits), and each rank then sends the result down to its children,
// largest subtree first (all-gather step k + 1 to v + 2^k). Each chunk moves on its own (pipelined).
import { RingswarmError } from '../protocol/errors.js';
import { divideInPlace, reduceInto } from './dtypes.js';
import { doublingPlan, FoldedCollective, lastPlanKept, type DoublingPlan } from './recursive-doubling.js';
import type { ChunkIn, ChunkSend, Collective, CollectiveOptions, Progress } from './types.js';

/** Rank `rank`'s place in the tree: its parent (-1 at the root or for a folded-in extra) and its children, by step. */
export interface TreePlan extends DoublingPlan {
  /** How many children it takes partials from: children are partners[0 .. up - 1]. */
  up: number;
  /** partners[up], or -1 at the root (and for an extra). */
  parent: number;
}

export function treePlan(rank: number, size: number): TreePlan {
  const d = doublingPlan(rank, size);
  if (d.role === 'extra') return { ...d, up: 0, parent: -1 };
  // partners[k] is v xor 2^k: the first k at which v has a 1 is the step it sends up at.
  const v = d.virtual;
  let up = 0;
  while (up < d.rounds && ((v >> up) & 1) === 0) up++;
  return { ...d, up, parent: up < d.rounds ? d.partners[up] : -1 };
}

/** Every rank `rank` sends to or receives from under the tree (the links it needs). */
export function treePeers(rank: number, size: number): number[] {
  const p = treePlan(rank, size);
  const peers = p.partners.slice(0, p.up);
  if (p.parent >= 0) peers.push(p.parent);
  if (p.buddy >= 0) peers.push(p.buddy);
  return [...new Set(peers)].sort((a, b) => a - b);
}

const cachedTreePlan = lastPlanKept(treePlan);

class TreeAllReduce extends FoldedCollective<TreePlan> {
  private readonly expected: number;

  constructor(o: CollectiveOptions) {
    super(o, cachedTreePlan(o.rank, o.size));
    const { role, up, parent } = this.plan;
    // Per chunk, an extra gets the result; others their extra's input (a host), each child's partial, and the result from the parent.
    this.expected = this.chunks.length * (role === 'extra' ? 1 : (role === 'host' ? 1 : 0) + up + (parent >= 0 ? 1 : 0));
  }

  protected begin(j: number, out: ChunkSend[]): void {
    this.climb(j, out);
  }

  /** Chunk j has its first `stage` children's partials: take those held, then send it up (or, at the root, finish it). */
  private climb(j: number, out: ChunkSend[]): void {
    const c = this.chunks[j];
    const mine = this.view(this.buffer, c.range);
    for (;;) {
      if (c.stage === this.plan.up) break;
      const early = this.takeHeld(c.stage + 1, j);
      if (!early) return;
      reduceInto(this.o.op, mine, mine, early);
      c.stage++;
    }
    // The partial goes as a view: the buffer's chunk changes next when the result comes back down,
    // which cannot be before the parent has read all of this.
    if (this.plan.parent >= 0) return this.emit(out, this.plan.parent, 'reduce-scatter', this.plan.up + 1, j, mine);
    if (this.o.op === 'avg') divideInPlace(mine, this.divisor);
    this.descend(j, out);
  }

  /** Chunk j holds the final result: send it down to the children (the largest subtree first) and to the extra. */
  private descend(j: number, out: ChunkSend[]): void {
    const c = this.chunks[j];
    const mine = this.view(this.buffer, c.range);
    c.done = true;
    this.finished++;
    for (let k = this.plan.up - 1; k >= 0; k--) this.emit(out, this.plan.partners[k], 'all-gather', k + 1, j, mine);
    if (this.plan.role === 'host') this.emit(out, this.plan.buddy, 'all-gather', 0, j, mine);
  }

  onChunk(c: ChunkIn): ChunkSend[] {
    const st = this.chunkOf(c);
    const { role, buddy, partners, up, parent } = this.plan;
    const fromChild = role !== 'extra' && c.phase === 'reduce-scatter' && Number.isInteger(c.step) && c.step >= 1 && c.step <= up;
    const expectFrom = fromChild
      ? partners[c.step - 1]
      : c.phase === 'all-gather' && role !== 'extra' && parent >= 0 && c.step === up + 1
        ? parent
        : c.step === 0 && ((c.phase === 'all-gather' && role === 'extra') || (c.phase === 'reduce-scatter' && role === 'host'))
          ? buddy
          : -1;
    if (expectFrom < 0) throw new RingswarmError('RS_ERR_PROTOCOL', `unexpected ${c.phase} step ${c.step} on rank ${this.o.rank} of the tree`);
    if (c.from !== expectFrom) throw new RingswarmError('RS_ERR_PROTOCOL', `${c.phase} step ${c.step} chunk ${c.chunk} from rank ${c.from}, expected rank ${expectFrom}`);
    this.received++;
    if (c.phase === 'all-gather') {
      if (st.done) throw new RingswarmError('RS_ERR_PROTOCOL', `all-gather chunk ${c.chunk} received twice`);
      const out: ChunkSend[] = [];
      this.view(this.buffer, st.range).set(c.data);
      if (role === 'extra') {
        st.done = true;
        this.finished++;
      } else this.descend(c.chunk, out);
      return out;
    }
    // A child's partial (or, early, a larger child's).
    return this.reduceIn(c, st);
  }

  progress(): Progress {
    const { role, buddy, partners, up, parent } = this.plan;
    let low = Infinity;
    for (const c of this.chunks) if (!c.done) low = Math.min(low, c.stage);
    // The rank this one waits for: its extra, the next child, or (its partial sent) the parent.
    const waitingFor = this.done ? null : role === 'extra' || low < 0 ? buddy : low < up ? partners[low] : parent;
    const reducing = this.started && !this.done && role !== 'extra' && low < up;
    // `step` orders the waits in time over the whole op (the stuck-rank locator compares them): up
    // the tree 1..rounds, the result reaching this rank at 2 rounds - up, the extra last of all.
    const { rounds } = this.plan;
    const step = this.done ? 0 : role === 'extra' ? 2 * rounds + 1 : low < 0 ? 0 : reducing ? low + 1 : 2 * rounds - up;
    return {
      waitingFor,
      phase: !this.started ? 'reduce-scatter' : this.done ? 'done' : reducing || low < 0 ? 'reduce-scatter' : 'all-gather',
      step,
      chunksReceived: this.received,
      chunksExpected: this.expected,
      chunksSent: this.sent,
    };
  }
}

export function treeAllReduce(opts: CollectiveOptions): Collective {
  return new TreeAllReduce(opts);
}
