// Sizing and filling the worker's Arena (WebAssembly memory): the buffers that reductions read and
// write, and room for the frames in flight, so the ring's reductions run as SIMD.
import { allocElements, type DType, type Elements } from '../collective/dtypes.js';
import { Arena, SUM_SCRATCH_BYTES } from '../collective/simd.js';
import type { FramePool } from '../runtime/frame-pool.js';

const MAX_ARENA_BYTES = 3 * 2 ** 30;

/**
 * An arena for `buffers` buffers of `bytes` each plus frames in flight (about two buffers' worth,
 * capped), handed to `pool`. Null (and ordinary memory everywhere) if WebAssembly is unavailable.
 */
export function workerArena(pool: FramePool | undefined, buffers: number, bytes: number, chunkBytes: number): Arena | null {
  const frames = Math.min(512 << 20, 2 * bytes + 16 * (chunkBytes + 64));
  const total = buffers * (bytes + 16) + frames + SUM_SCRATCH_BYTES;
  const arena = total <= MAX_ARENA_BYTES ? Arena.create(total) : null;
  // Before the frames take the rest: the gradient fill's SIMD kernel reads its scratch from here.
  arena?.sumScratch();
  pool?.useArena(arena);
  return arena;
}

/** An allocator that takes from the arena while it has room, then from ordinary memory. */
export function arenaAlloc(arena: Arena | null): (dtype: DType, count: number) => Elements {
  return (dtype, count) => {
    if (arena) {
      try {
        return arena.alloc(dtype, count);
      } catch {
        // full: fall through
      }
    }
    return allocElements(dtype, count);
  };
}
